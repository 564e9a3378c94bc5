// TextData: UTF-8 text files as byte-level documents split on blank lines.

import Foundation
import XCTest

@testable import Data

/// A file in a fresh temporary folder, removed at the end of the test.
func temporaryFile(_ test: XCTestCase, _ name: String, _ bytes: [UInt8]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("TrainingTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

final class TextDataTests: XCTestCase {
    private func documents(_ text: String) throws -> [String] {
        try TextData.documents(fromUTF8Data: Data(text.utf8)).map { String(decoding: $0.map { UInt8($0) }, as: UTF8.self) }
    }

    func testBlankLinesSeparateDocuments() throws {
        XCTAssertEqual(try documents("one\ntwo\n\nthree\n"), ["one\ntwo", "three"])
        XCTAssertEqual(try documents("\n\n  \na\n \t \n\n\nb"), ["a", "b"])
        XCTAssertEqual(try documents("single line, no newline"), ["single line, no newline"])
        XCTAssertEqual(try documents("  indented\nkept  \n"), ["  indented\nkept  "])
    }

    func testCRLFAndByteOrderMark() throws {
        XCTAssertEqual(try documents("\u{FEFF}a\r\nb\r\n\r\nc\r\n"), ["a\nb", "c"])
    }

    func testTokensAreUTF8Bytes() throws {
        let docs = try TextData.documents(fromUTF8Data: Data("é€😀".utf8))
        XCTAssertEqual(docs, [[0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80]])
        XCTAssert(docs[0].allSatisfy { $0 >= 0 && $0 < Int32(TextData.vocabularySize) })
    }

    func testFileRoundTrip() throws {
        let url = try temporaryFile(self, "input.txt", Array("First Citizen:\nBefore we proceed.\n\nAll:\nSpeak.\n".utf8))
        let docs = try TextData.documents(fromUTF8File: url)
        XCTAssertEqual(docs.count, 2)
        XCTAssertEqual(docs[1], Array("All:\nSpeak.".utf8).map { Int32($0) })
    }

    func testErrorsNameTheFileAndOffset() throws {
        let bad = try temporaryFile(self, "bad.txt", [0x61, 0x62, 0x0A, 0xC3, 0x28])
        assertThrows(try TextData.documents(fromUTF8File: bad), "bad.txt: invalid UTF-8 at byte offset 3 (byte 0xC3)")
        assertThrows(try TextData.documents(fromUTF8Data: Data([0x61, 0xED, 0xA0, 0x80])), "offset 1")  // a surrogate
        assertThrows(try TextData.documents(fromUTF8Data: Data([0xC0, 0x80])), "offset 0")              // overlong
        assertThrows(try TextData.documents(fromUTF8Data: Data([0x61, 0xF4, 0x90, 0x80, 0x80])), "offset 1")  // > U+10FFFF
        assertThrows(try TextData.documents(fromUTF8Data: Data([0x61, 0xE2, 0x82])), "offset 1")        // truncated
        let empty = try temporaryFile(self, "empty.txt", [])
        assertThrows(try TextData.documents(fromUTF8File: empty), "empty.txt: the file is empty")
        assertThrows(try TextData.documents(fromUTF8Data: Data(" \n\n\t\r\n".utf8)), "only blank lines")
        let missing = URL(fileURLWithPath: "/nonexistent/corpus.txt")
        XCTAssertThrowsError(try TextData.documents(fromUTF8File: missing)) { error in
            guard case DataError.unreadableFile(let m)? = error as? DataError else { return XCTFail("\(error)") }
            XCTAssert(m.contains("/nonexistent/corpus.txt"), m)
        }
    }
}
