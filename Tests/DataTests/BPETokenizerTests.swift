import Data
import Foundation
import TestSupport
import XCTest

/// The Swift tokenizer against the Hugging Face `tokenizers` library's own ids and decodes
/// (fixtures from scripts/reference/make_tokenizer_fixtures.py).
final class BPETokenizerTests: XCTestCase {
    private struct Case: Decodable {
        var text: String
        var ids: [Int32]
        var ids_with_special_tokens: [Int32]
        var decoded: String
        var decoded_skipping_special: String
    }

    private struct Cases: Decodable { var cases: [Case] }

    private func check(style: String) throws {
        let tokenizer = try BPETokenizer(contentsOf: fixtureURL("tokenizers/\(style).tokenizer.json"))
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: fixtureURL("tokenizers/\(style).cases.json"))).cases
        XCTAssertGreaterThan(cases.count, 10)
        for c in cases {
            XCTAssertEqual(try tokenizer.encode(c.text), c.ids, "\(style): \(c.text.debugDescription)")
            XCTAssertEqual(try tokenizer.encode(c.text, addSpecialTokens: true), c.ids_with_special_tokens, "\(style): \(c.text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(c.ids), c.decoded, "\(style): \(c.text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(c.ids, skipSpecialTokens: true), c.decoded_skipping_special, style)
        }
        XCTAssertEqual(tokenizer.vocabularySize, 600)
    }

    func testGPT2StyleMatchesTheLibrary() throws { try check(style: "gpt2_style") }

    func testLlama3StyleMatchesTheLibrary() throws { try check(style: "llama3_style") }

    func testRoundTripsArbitraryText() throws {
        let tokenizer = try BPETokenizer(contentsOf: fixtureURL("tokenizers/gpt2_style.tokenizer.json"))
        for text in ["ẞ𝔘 \u{0} \u{7F}\u{AD}\u{A0} tab\tend", String(repeating: "🚀", count: 9), "x\r\ny  \n\n z"] {
            XCTAssertEqual(tokenizer.decode(try tokenizer.encode(text)), text)
        }
    }

    func testByteAlphabetCoversEveryByteOnce() {
        XCTAssertEqual(Set(ByteLevel.characters).count, 256)
        XCTAssertEqual(ByteLevel.characters[32], "Ġ")
        XCTAssertEqual(ByteLevel.characters[10], "Ċ")
        XCTAssertEqual(ByteLevel.characters[65], "A")
    }

    func testUnsupportedComponentsAreRefusedByName() throws {
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL("tokenizers/gpt2_style.tokenizer.json"))) as! [String: Any]
        func refused(_ edit: (inout [String: Any]) -> Void, mentions fragment: String) {
            var json = base
            edit(&json)
            let data = try! JSONSerialization.data(withJSONObject: json)
            XCTAssertThrowsError(try BPETokenizer(json: data)) { XCTAssertTrue("\($0)".contains(fragment), "\($0)") }
        }
        refused({ $0["model"] = ["type": "WordPiece"] }, mentions: "WordPiece")
        refused({ $0["normalizer"] = ["type": "Lowercase"] }, mentions: "Lowercase")
        refused({ $0["pre_tokenizer"] = ["type": "Whitespace"] }, mentions: "Whitespace")
        refused({ $0["decoder"] = ["type": "Metaspace"] }, mentions: "Metaspace")
        refused({ var m = $0["model"] as! [String: Any]; m["byte_fallback"] = true; $0["model"] = m }, mentions: "byte_fallback")
        refused({ var m = $0["model"] as! [String: Any]; m["merges"] = ["a b c"]; $0["model"] = m }, mentions: "merges[0]")
        XCTAssertThrowsError(try BPETokenizer(json: Data("[1, 2]".utf8))) { XCTAssertTrue("\($0)".contains("not a JSON object")) }
    }
}
