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
        XCTAssertTrue(r.stderr.contains("19/1 train/held-out documents"), r.stderr)   // 5 % held out
        // One of the documents, whole.
        let written = try String(contentsOf: heldOut, encoding: .utf8)
        XCTAssertTrue(documents.contains(written), written)
        // Without the preset 10 % are held out: two documents, joined by a blank line, in order.
        let heldOut2 = folder.appendingPathComponent("held-out-2.txt")
        let r2 = try runMTP(["train", "--data", text.path, "--layers", "1", "--hidden", "8", "--heads", "2",
                             "--intermediate", "16", "--seq-len", "16", "--batch-size", "2", "--steps", "1",
                             "--write-held-out", heldOut2.path, "--out", folder.appendingPathComponent("run2").path])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let two = try String(contentsOf: heldOut2, encoding: .utf8).components(separatedBy: "\n\n")
        XCTAssertEqual(two.count, 2)
        XCTAssertTrue(two.allSatisfy(documents.contains), "\(two)")
        XCTAssertLessThan(try XCTUnwrap(documents.firstIndex(of: two[0])), try XCTUnwrap(documents.firstIndex(of: two[1])))
    }
}
