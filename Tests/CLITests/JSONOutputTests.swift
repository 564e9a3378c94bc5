// The `--json` lines are valid JSON whatever the values: paths are escaped and
// non-finite numbers are null. Runs the built `mtp` binary as a user would.

import Foundation
import XCTest
@testable import mtp

final class JSONOutputTests: XCTestCase {
    /// Runs `mtp arguments`; returns stdout's last line parsed as a JSON object.
    private func lastJSONLine(_ arguments: [String]) throws -> [String: Any] {
        let process = Process()
        process.executableURL = try mtpBinary()
        process.arguments = arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "mtp \(arguments.joined(separator: " "))")
        let last = try XCTUnwrap(String(decoding: data, as: UTF8.self).split(separator: "\n").last, "no stdout")
        let object = try JSONSerialization.jsonObject(with: Data(last.utf8))
        return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(last)")
    }

    private func tinyTrain(out: URL, extra: [String] = []) -> [String] {
        ["train", "--steps", "2", "--eval-every", "1", "--layers", "1", "--hidden", "16", "--heads", "2",
         "--intermediate", "32", "--documents", "200", "--json", "--out", out.path] + extra
    }

    private func temporaryFolder(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("mtp-json-\(UUID().uuidString)").appendingPathComponent(name)
    }

    func testTrainJSONEscapesTheCheckpointPath() throws {
        let out = temporaryFolder("run \"quoted\" \\ folder")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let json = try lastJSONLine(tinyTrain(out: out))
        XCTAssertEqual(json["checkpoint"] as? String, out.appendingPathComponent("checkpoint.safetensors").path)
        XCTAssertEqual(json["plot"] as? String, out.appendingPathComponent("losses.svg").path)
        XCTAssertEqual(json["steps"] as? Int, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.safetensors").path))
    }

    func testDivergedTrainingPrintsValidJSONAndSkipsTheNonFiniteStep() throws {
        // A learning rate of 1e30 makes the weights overflow after the first update, so the
        // second step's loss is not finite: that step is skipped (NonFiniteSteps), the weights
        // keep their last finite values, the run completes and its JSON line still parses.
        let out = temporaryFolder("diverged")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let json = try lastJSONLine(tinyTrain(out: out, extra: ["--lr", "1e30", "--warmup", "0"]))
        XCTAssertEqual(json["steps"] as? Int, 2)
        XCTAssertEqual((json["mtp_losses"] as? [Any])?.count, 2)
        let main = json["main_loss"]
        XCTAssertTrue(main is NSNull || (main as? Double)?.isFinite == true, "main_loss \(String(describing: main))")
        let header = try JSONSerialization.jsonObject(with: safetensorsHeader(out.appendingPathComponent("checkpoint.safetensors")))
        let metadata = try XCTUnwrap((header as? [String: Any])?["__metadata__"] as? [String: String])
        XCTAssertEqual(metadata["skipped_steps"], "[2]")
    }

    func testNonFiniteNumbersAreNullAndFloatsRoundTrip() throws {
        let floats: [Float] = [0.1, 3.2589149, .ulpOfOne, .greatestFiniteMagnitude, 0]
        let line = try JSONOutput.line(["nan": JSONOutput.number(Double.nan), "inf": JSONOutput.numbers([Float.infinity, -.infinity]),
                                        "rows": JSONOutput.numbers(floats), "path": "a\"b\\c/d"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertTrue(object["nan"] is NSNull)
        XCTAssertEqual((object["inf"] as? [Any])?.filter { $0 is NSNull }.count, 2)
        XCTAssertEqual(object["path"] as? String, "a\"b\\c/d")
        let rows = try XCTUnwrap(object["rows"] as? [NSNumber]).map { Float($0.doubleValue) }
        XCTAssertEqual(rows, floats)
    }
}
