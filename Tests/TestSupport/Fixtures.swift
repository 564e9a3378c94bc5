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

/// The bytes of every regular file under `folder`, by relative path: a snapshot to compare
/// before and after a command that must change nothing there.
public func fileContents(under folder: URL) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for name in try FileManager.default.subpathsOfDirectory(atPath: folder.path) {
        let url = folder.appendingPathComponent(name)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            out[name] = try Data(contentsOf: url)
        }
    }
    return out
}
