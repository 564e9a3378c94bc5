import Foundation

/// The `Tests/Fixtures` folder of this checkout (found from this file's path,
/// so tests need no bundle resources).
public func fixturesDirectory() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
}

/// A file under `Tests/Fixtures`.
public func fixtureURL(_ relativePath: String) -> URL {
    fixturesDirectory().appendingPathComponent(relativePath)
}
