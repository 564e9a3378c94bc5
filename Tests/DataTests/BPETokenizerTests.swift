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
    // MARK: Hostile files

    private func gpt2JSON() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL("tokenizers/gpt2_style.tokenizer.json"))) as! [String: Any]
    }

    private func tokenizer(_ edit: (inout [String: Any]) -> Void) throws -> BPETokenizer {
        var json = try gpt2JSON()
        edit(&json)
        return try BPETokenizer(json: JSONSerialization.data(withJSONObject: json))
    }

    func testCatastrophicSplitPatternThrowsNamingItInsteadOfRunningForever() throws {
        let pattern = "(a|a)*b|(x+x+)+y"
        let t = try tokenizer {
            $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false]]]
        }
        XCTAssertEqual(try t.encode("ab xxy"), try t.encode("ab") + t.encode(" xxy"))
        // 2^26 backtracking steps without a budget (seconds); 2^64 for the longer one (forever).
        for count in [26, 64] {
            let start = Date()
            XCTAssertThrowsError(try t.encode(String(repeating: "a", count: count))) { error in
                XCTAssertTrue("\(error)".contains("'\(pattern)'"), "\(error)")
                XCTAssertTrue("\(error)".contains("backtracks"), "\(error)")
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        }
    }

    func testRealPatternsStayWithinTheRegexBudgetOnHostileText() throws {
        // Random mixes of the classes the GPT-2 and Llama 3 patterns backtrack over most.
        let alphabet: [Character] = [" ", "\t", "\r", "\n", "a", "Z", "1", ".", "'", "é", "\u{A0}", "😀"]
        var state: UInt64 = 7
        let text = String((0..<20_000).map { _ -> Character in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return alphabet[Int(state >> 33) % alphabet.count]
        })
        let hostile = [text, String(repeating: " ", count: 20_000) + "x", String(repeating: "  \n", count: 5_000),
                       String(repeating: "1", count: 20_000), String(repeating: "'''' ", count: 4_000)]
        for style in ["gpt2_style", "llama3_style"] {
            let t = try BPETokenizer(contentsOf: fixtureURL("tokenizers/\(style).tokenizer.json"))
            for h in hostile { XCTAssertEqual(t.decode(try t.encode(h)), h, style) }
        }
    }
}
