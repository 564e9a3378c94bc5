// Running the built `mtp` binary as a user would, with a deadline, for the CLI tests, and the
// check every refusal must pass.

import Foundation
import XCTest

/// What one `mtp` invocation printed and how it ended.
struct MTPResult {
    var status: Int32
    var stdout: String
    var stderr: String
    /// Whether it ended by an uncaught signal (a trap, SIGKILL) rather than exiting.
    var signaled: Bool
    var seconds: Double
}

/// The `mtp` executable built beside this test bundle.
func mtpBinary() throws -> URL {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("mtp"),
        Bundle.main.bundleURL.appendingPathComponent("mtp"),
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/mtp"),
    ]
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw XCTSkip("no built mtp binary at \(candidates.map(\.path))")
    }
    return found
}

/// Starts `mtp arguments` with stdout and stderr going to files (no pipe can fill up).
final class MTPProcess {
    let process = Process()
    private let out: URL, err: URL
    private let start = Date()

    /// - Parameter environment: variables set on top of this process's environment.
    init(_ arguments: [String], in folder: URL? = nil, environment: [String: String] = [:]) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("mtp-cli-\(UUID().uuidString)")
        out = scratch.appendingPathExtension("out")
        err = scratch.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.executableURL = try mtpBinary()
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        if let folder { process.currentDirectoryURL = folder }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
    }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits (killing it after `timeout` seconds) and returns what it printed.
    func finish(timeout: Double = 120) -> MTPResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { send(SIGKILL) }
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        let text = { (u: URL) in (try? String(contentsOf: u, encoding: .utf8)) ?? "" }
        return MTPResult(status: process.terminationStatus, stdout: text(out), stderr: text(err),
                         signaled: process.terminationReason == .uncaughtSignal, seconds: Date().timeIntervalSince(start))
    }
}

/// Runs `mtp arguments` to the end.
func runMTP(_ arguments: [String], in folder: URL? = nil, environment: [String: String] = [:],
            timeout: Double = 120) throws -> MTPResult {
    try MTPProcess(arguments, in: folder, environment: environment).finish(timeout: timeout)
}

/// A fresh temporary folder (created).
func temporaryFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("mtp-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The options of a tiny, fast training run.
let tinyTrainFlags = ["--layers", "1", "--hidden", "8", "--heads", "2", "--intermediate", "16", "--depths", "1",
                      "--documents", "40", "--batch-size", "2", "--seq-len", "8", "--eval-every", "1000"]

extension XCTestCase {
    /// Runs `mtp arguments` (in `folder`, when given) and checks the CLI contract for a refusal: not killed (no trap, no
    /// hang past `seconds`), status 1, nothing on stdout, one `error: …` line mentioning `text`,
    /// and no raw Foundation error text.
    func assertError(_ arguments: [String], mentions text: String, within seconds: Double = 60, in folder: URL? = nil,
                     environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runMTP(arguments, in: folder, environment: environment, timeout: seconds)
        let what = "mtp \(arguments.joined(separator: " "))"
        XCTAssertFalse(r.signaled, "\(what) was killed (a trap or past \(seconds) s)\n\(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", "\(what) printed on stdout", file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
        XCTAssertEqual(lines.count, 1, "\(what): one error line expected in\n\(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "\(what): '\(r.stderr)' does not mention '\(text)'", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("NSCocoaErrorDomain") || r.stderr.contains("UserInfo="), what, file: file, line: line)
    }
}
