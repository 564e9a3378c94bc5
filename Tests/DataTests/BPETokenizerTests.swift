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

    /// Asserts that the edited file is refused with a one-line message holding every fragment.
    private func assertRefused(_ edit: (inout [String: Any]) -> Void, mentions fragments: [String], line: UInt = #line) {
        XCTAssertThrowsError(try tokenizer(edit), line: line) { error in
            for f in fragments { XCTAssertTrue("\(error)".contains(f), "\(error) lacks \(f)", line: line) }
            XCTAssertFalse("\(error)".contains("\n"), "one line: \(error)", line: line)
        }
    }

    private func editModel(_ json: inout [String: Any], _ key: String, _ edit: (inout Any) -> Void) {
        var model = json["model"] as! [String: Any]
        var value = model[key]!
        edit(&value)
        model[key] = value
        json["model"] = model
    }

    private func editVocabulary(_ json: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        editModel(&json, "vocab") { v in var d = v as! [String: Any]; edit(&d); v = d }
    }

    private func editMerges(_ json: inout [String: Any], _ edit: (inout [Any]) -> Void) {
        editModel(&json, "merges") { v in var a = v as! [Any]; edit(&a); v = a }
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

    func testNonIntegerVocabularyIdsAreRefusedNamingTheToken() {
        for bad: Any in [1.5, true, "7", -1, 1 << 40] {
            assertRefused({ editVocabulary(&$0) { $0["Ġt"] = bad } }, mentions: ["model.vocab['Ġt']", "is not a token id"])
        }
        // Written with a fraction or an exponent, the library's u32 refuses even a whole number.
        let text = try! String(contentsOf: fixtureURL("tokenizers/gpt2_style.tokenizer.json"), encoding: .utf8)
        XCTAssertNoThrow(try BPETokenizer(json: Data(text.utf8)))
        for written in ["259.0", "2.59e2"] {
            let edited = text.replacingOccurrences(of: #""Ġt": 259"#, with: #""Ġt": "# + written)
            XCTAssertNotEqual(edited, text)
            XCTAssertThrowsError(try BPETokenizer(json: Data(edited.utf8))) { XCTAssertTrue("\($0)".contains("model.vocab['Ġt']"), "\($0)") }
        }
    }

    func testDuplicateVocabularyIdsAreRefusedNamingBothTokens() {
        assertRefused({ editVocabulary(&$0) { $0["Ġt"] = 257 } }, mentions: ["id 257", "'he'", "'Ġt'"])
    }

    func testMergesOutsideTheVocabularyAreRefusedNamingTheMerge() {
        // A part missing, then the result missing (the library's BPE builder refuses both).
        assertRefused({ editMerges(&$0) { $0[1] = ["ð", "Q"] } }, mentions: ["model.merges[1] 'ð Q'", "'ðQ' is not in model.vocab"])
        assertRefused({ editVocabulary(&$0) { $0["he"] = nil } }, mentions: ["model.merges[0] 'h e'", "'he' is not in model.vocab"])
        assertRefused({ editMerges(&$0) { $0.append("Ġ h") } }, mentions: ["'Ġ h'", "'Ġh' is not in model.vocab"])
        assertRefused({ editMerges(&$0) { $0.append("Ġ ☃") } }, mentions: ["'Ġ ☃'", "'☃' is not in model.vocab"])
    }

    func testAddedTokenIdsOutOfRangeAreNamed() {
        for bad: Any in [1 << 40, -5, 2.5] {
            assertRefused({ $0["added_tokens"] = [["id": 0, "content": "<|endoftext|>", "special": true],
                                                  ["id": bad, "content": "<x>", "special": true]] },
                          mentions: ["added_tokens[1] id \(bad)", "is not a token id"])
        }
        assertRefused({ $0["added_tokens"] = [["content": "<x>"]] }, mentions: ["added_tokens[0] has no id"])
        assertRefused({ $0["added_tokens"] = [["id": 600]] }, mentions: ["added_tokens[0] (id 600) has no content"])
    }

    func testUnicodeNormalizersAreApplied() throws {
        // NFKC folds the ligature, the circled digit and the full-width letter; NFC does not.
        let nfkc = try tokenizer { $0["normalizer"] = ["type": "NFKC"] }
        let sequence = try tokenizer { $0["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFD"], ["type": "NFKC"]]] }
        let nfc = try tokenizer { $0["normalizer"] = ["type": "NFC"] }
        let plain = try tokenizer { $0["normalizer"] = NSNull() }
        XCTAssertEqual(try nfkc.encode("ﬁ ① Ｓ"), try plain.encode("fi 1 S"))
        XCTAssertEqual(try sequence.encode("ﬁ ① Ｓ"), try plain.encode("fi 1 S"))
        XCTAssertEqual(try nfc.encode("ﬁ ① e\u{301}"), try plain.encode("ﬁ ① é"))
        XCTAssertNotEqual(try plain.encode("ﬁ"), try plain.encode("fi"))
    }
}
