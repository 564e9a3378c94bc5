// TokenFileData: flat little-endian token files, raw (nanoGPT) or with an llm.c header.

import Foundation
import XCTest

@testable import Data

final class TokenFileDataTests: XCTestCase {
    private func uint16Bytes(_ ids: [Int]) -> [UInt8] { ids.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
    private func uint32Bytes(_ ids: [Int]) -> [UInt8] { ids.flatMap { id in (0..<4).map { UInt8((id >> (8 * $0)) & 0xFF) } } }

    /// llm.c's `write_datafile`: 256 int32 (magic, version, count, zeros), then the ids.
    private func llmcFile(magic: Int, version: Int, count: Int, payload: [UInt8]) -> [UInt8] {
        var header = [Int](repeating: 0, count: 256)
        header[0] = magic; header[1] = version; header[2] = count
        return uint32Bytes(header) + payload
    }

    func testRawUInt16WithSeparator() throws {
        let url = try temporaryFile(self, "train.bin", uint16Bytes([50256, 10, 300, 50256, 7, 50256, 50256, 65, 66]))
        let docs = try TokenFileData.documents(fromUInt16File: url, vocabularySize: 50257, separator: 50256)
        XCTAssertEqual(docs, [[10, 300], [7], [65, 66]])
    }

    func testRawUInt16InFixedChunks() throws {
        let url = try temporaryFile(self, "train.bin", uint16Bytes(Array(0..<10)))
        XCTAssertEqual(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 10, chunkLength: 4),
                       [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        XCTAssertEqual(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 10).count, 1, "default chunk 1024")
    }

    func testLargestIdsAndLittleEndianness() throws {
        let url = try temporaryFile(self, "big.bin", [0xFF, 0xFF, 0x01, 0x02])
        XCTAssertEqual(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 65536), [[65535, 0x0201]])
    }

    func testLLMCHeaderIsSkipped() throws {
        let ids = [50256, 1, 2, 3, 50256, 4, 5]
        let url = try temporaryFile(self, "tiny_shakespeare_val.bin",
                                    llmcFile(magic: 20_240_520, version: 1, count: ids.count, payload: uint16Bytes(ids)))
        XCTAssertEqual(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 50257, separator: 50256), [[1, 2, 3], [4, 5]])
        let llama = try temporaryFile(self, "llama.bin",
                                      llmcFile(magic: 20_240_801, version: 7, count: 3, payload: uint32Bytes([128_000, 9, 100_000])))
        XCTAssertEqual(try TokenFileData.documents(fromUInt32File: llama, vocabularySize: 128_256, separator: 128_000), [[9, 100_000]])
    }

    func testRawUInt32() throws {
        let url = try temporaryFile(self, "ids.bin", uint32Bytes([70_000, 1, 2]))
        XCTAssertEqual(try TokenFileData.documents(fromUInt32File: url, vocabularySize: 70_001, chunkLength: 2), [[70_000, 1], [2]])
    }

    func testFileErrorsNameTheValues() throws {
        let odd = try temporaryFile(self, "odd.bin", [1, 0, 2])
        assertThrows(try TokenFileData.documents(fromUInt16File: odd, vocabularySize: 10), "odd.bin: 3 bytes of ids is not a multiple of 2")
        let empty = try temporaryFile(self, "empty.bin", [])
        assertThrows(try TokenFileData.documents(fromUInt16File: empty, vocabularySize: 10), "empty.bin: the file is empty")
        let big = try temporaryFile(self, "big.bin", uint16Bytes([1, 2, 300, 4]))
        assertThrows(try TokenFileData.documents(fromUInt16File: big, vocabularySize: 256),
                     "token id 300 at index 2 (byte offset 4) is outside the vocabulary 0..<256")
        let headerBig = try temporaryFile(self, "h.bin", llmcFile(magic: 20_240_520, version: 1, count: 2, payload: uint16Bytes([5, 999])))
        assertThrows(try TokenFileData.documents(fromUInt16File: headerBig, vocabularySize: 100), "token id 999 at index 1 (byte offset 1026)")
        let seps = try temporaryFile(self, "seps.bin", uint16Bytes([3, 3, 3]))
        assertThrows(try TokenFileData.documents(fromUInt16File: seps, vocabularySize: 10, separator: 3), "only separator ids (3)")
        let missing = URL(fileURLWithPath: "/nonexistent/train.bin")
        assertThrows(try TokenFileData.documents(fromUInt16File: missing, vocabularySize: 10), "/nonexistent/train.bin")
    }

    func testAHeaderWithABadMagicIsNotReadAsTokens() throws {
        // One digit off llm.c's magic: version and count fit, so it is a damaged header, not ids.
        let bad = try temporaryFile(self, "m.bin", llmcFile(magic: 20_240_521, version: 1, count: 3, payload: uint16Bytes([1, 2, 3])))
        assertThrows(try TokenFileData.documents(fromUInt16File: bad, vocabularySize: 65_536), "magic 20240521 is neither")
    }

    func testHeaderErrors() throws {
        let count = try temporaryFile(self, "c.bin", llmcFile(magic: 20_240_520, version: 1, count: 5, payload: uint16Bytes([1, 2])))
        assertThrows(try TokenFileData.documents(fromUInt16File: count, vocabularySize: 10), "declares 5 tokens but 4 bytes follow")
        let version = try temporaryFile(self, "v.bin", llmcFile(magic: 20_240_520, version: 3, count: 1, payload: uint16Bytes([1])))
        assertThrows(try TokenFileData.documents(fromUInt16File: version, vocabularySize: 10), "version 3")
        let width = try temporaryFile(self, "w.bin", llmcFile(magic: 20_240_801, version: 7, count: 1, payload: uint32Bytes([1])))
        assertThrows(try TokenFileData.documents(fromUInt16File: width, vocabularySize: 10), "magic 20240801 marks uint32 ids")
        let noTokens = try temporaryFile(self, "n.bin", llmcFile(magic: 20_240_520, version: 1, count: 0, payload: []))
        assertThrows(try TokenFileData.documents(fromUInt16File: noTokens, vocabularySize: 10), "holds no tokens")
    }

    func testArgumentErrors() throws {
        let url = try temporaryFile(self, "a.bin", uint16Bytes([1]))
        assertThrows(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 70_000), "70000")
        assertThrows(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 0), "vocabulary size 0")
        assertThrows(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 10, separator: 10), "separator id 10")
        assertThrows(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 10, chunkLength: 0), "chunk length 0")
    }

    func testSyntheticDocumentsRoundTripThroughAFile() throws {
        let corpus = try SyntheticCorpus()
        let docs = try corpus.documents(count: 30, seed: 6)
        let sep = 64
        let flat = docs.flatMap { [sep] + $0.map(Int.init) }
        let url = try temporaryFile(self, "synthetic.bin", uint16Bytes(flat))
        XCTAssertEqual(try TokenFileData.documents(fromUInt16File: url, vocabularySize: 65, separator: Int32(sep)), docs)
    }
}
