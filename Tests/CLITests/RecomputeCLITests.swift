// `--recompute` on the command line: `mtp train --recompute` records the same loss history
// as without it, and `mtp bench train --recompute` reports it and a lower peak of live bytes.

import Foundation
import XCTest

final class RecomputeCLITests: XCTestCase {
    private func lastJSONLine(_ result: MTPResult) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr)
        let last = try XCTUnwrap(result.stdout.split(separator: "\n").last, "no stdout: \(result.stderr)")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], String(last))
    }

    func testTrainRecordsTheSameHistory() throws {
        let root = try temporaryFolder("recompute")
        defer { try? FileManager.default.removeItem(at: root) }
        var histories: [String] = []
        for recompute in [false, true] {
            let out = root.appendingPathComponent(recompute ? "recomputed" : "kept")
            let json = try lastJSONLine(try runMTP(["train"] + tinyTrainFlags + ["--layers", "2", "--depths", "2", "--steps", "3",
                                                    "--grad-accum", "2", "--json", "--out", out.path]
                                                   + (recompute ? ["--recompute"] : [])))
            XCTAssertEqual(json["recompute"] as? Bool, recompute)
            let header = try JSONSerialization.jsonObject(with: safetensorsHeader(out.appendingPathComponent("checkpoint.safetensors")))
            let metadata = try XCTUnwrap((header as? [String: Any])?["__metadata__"] as? [String: String])
            histories.append(try XCTUnwrap(metadata["history"]))
            XCTAssertEqual(metadata["training_options"]?.contains("\"recompute\":true"), recompute)
        }
        XCTAssertEqual(histories[0], histories[1])
    }

    func testBenchTrainReportsRecomputingAndALowerPeak() throws {
        let sizes = ["bench", "train", "--hidden", "16", "--layers", "4", "--heads", "2", "--intermediate", "32", "--seq-len", "32",
                     "--batch-size", "2", "--vocab", "32", "--depths", "1", "--steps", "1", "--warmup", "1", "--json"]
        let kept = try lastJSONLine(try runMTP(sizes))
        let recomputed = try lastJSONLine(try runMTP(sizes + ["--recompute"]))
        XCTAssertEqual(kept["recompute"] as? Bool, false)
        XCTAssertEqual(recomputed["recompute"] as? Bool, true)
        let a = try XCTUnwrap(kept["peak_bytes"] as? Int), b = try XCTUnwrap(recomputed["peak_bytes"] as? Int)
        print("mtp bench train, 4 + 1 blocks: peak_bytes \(a) kept, \(b) recomputed")
        XCTAssertLessThan(b, a)
    }
}
