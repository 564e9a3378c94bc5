// `mtp train --data FILE --preset NAME` and `--write-held-out FILE`, run as a user would.

import Foundation
import XCTest

final class TextPresetTests: XCTestCase {
    func testHeldOutTextIsExactlyTheHeldOutDocumentsAndPresetFlagsYieldToGivenOnes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mtp-preset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let documents = (0..<20).map { "document \($0): " + String(repeating: "abc ", count: 3 + $0) }
        let text = folder.appendingPathComponent("text.txt")
        try Data(documents.joined(separator: "\n\n").utf8).write(to: text)
        let heldOut = folder.appendingPathComponent("held-out.txt")
        // The preset's sizes would take minutes: every size flag given here wins over it.
        let r = try runMTP(["train", "--data", text.path, "--preset", "bytes-2min", "--layers", "1", "--hidden", "8",
                            "--heads", "2", "--intermediate", "16", "--seq-len", "16", "--batch-size", "2", "--steps", "2",
                            "--eval-every", "2", "--write-held-out", heldOut.path, "--out", folder.appendingPathComponent("run").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("1 layers, H=8, D=2"), r.stderr)   // depths from the preset
        XCTAssertTrue(r.stderr.contains("18/2 train/held-out documents"), r.stderr)
        // Two of the documents, whole, joined by a blank line, in their original order.
        let written = try String(contentsOf: heldOut, encoding: .utf8).components(separatedBy: "\n\n")
        XCTAssertEqual(written.count, 2)
        XCTAssertTrue(written.allSatisfy(documents.contains), "\(written)")
        XCTAssertLessThan(try XCTUnwrap(documents.firstIndex(of: written[0])), try XCTUnwrap(documents.firstIndex(of: written[1])))
    }
}
