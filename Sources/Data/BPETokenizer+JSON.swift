// Reading a Hugging Face `tokenizer.json` (the `tokenizers` library's serialisation)
// into a BPETokenizer. Only byte-level BPE is accepted; every other component is
// refused with an error that names the field and its value, never silently ignored.
//
// Accepted:
//   model          BPE (vocab: distinct integer ids in 0...Int32.max; merges as "a b"
//                  strings or [a, b] pairs whose parts and result are all in the vocab, as
//                  the library's BPE builder requires; ignore_merges);
//                  unk_token used for symbols outside the vocabulary; dropout,
//                  byte_fallback, continuing_subword_prefix, end_of_word_suffix unset
//   normalizer     null, NFC, NFD, NFKC, NFKD, or a Sequence of them
//   pre_tokenizer  ByteLevel (GPT-2's regex when use_regex), or a Sequence of one Split
//                  (Regex or String pattern, behavior Isolated, invert false) and a
//                  ByteLevel without regex (Llama 3, Qwen2)
//   post_processor null, ByteLevel, TemplateProcessing (single: special tokens around
//                  $A), or a Sequence of them
//   decoder        ByteLevel (or null)

import Foundation
import Tensors

extension BPETokenizer {
    /// GPT-2's pre-tokenizer pattern, used by a ByteLevel pre-tokenizer with `use_regex`.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// A tokenizer read from a `tokenizer.json` file.
    ///
    /// - Throws: ``DataError/unreadableFile(_:)`` when the file cannot be read;
    ///   ``DataError/malformedFile(_:)`` naming the field when it is not valid JSON, not a
    ///   byte-level BPE tokenizer, or uses a component this reader does not implement.
    public convenience init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DataError.unreadableFile("\(url.path): \(FileErrorReason.describe(error, path: url.path))")
        }
        try self.init(json: data, source: url.path)
    }

    /// A tokenizer from the bytes of a `tokenizer.json`; `source` names it in errors.
    public convenience init(json data: Data, source: String = "tokenizer.json") throws {
        func fail(_ message: String) -> DataError { .malformedFile("\(source): \(message)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw fail("no 'model' object") }
        guard (model["type"] as? String) == "BPE" else { throw fail("model.type '\(model["type"] ?? "missing")' is not BPE") }
        for key in ["dropout", "continuing_subword_prefix", "end_of_word_suffix"]
        where !(model[key] == nil || model[key] is NSNull) {
            throw fail("model.\(key) = \(model[key]!) is not supported (byte-level BPE needs none)")
        }
        if let fallback = model["byte_fallback"] as? Bool, fallback { throw fail("model.byte_fallback = true is not supported") }
        guard let rawVocabulary = model["vocab"] as? [String: Any] else { throw fail("model.vocab is not an object") }
        var vocabulary: [String: Int32] = [:]
        for (token, value) in rawVocabulary {
            guard let id = Self.tokenID(value) else {
                throw fail("model.vocab['\(token)'] = \(Self.written(value)) is not a token id (an integer in 0...\(Int32.max))")
            }
            vocabulary[token] = id
        }
        // The library keeps one of two tokens that share an id and decodes that id to either,
        // depending on its hash map's order; a file like that is damaged, so it is refused.
        var tokenOfID: [Int32: String] = [:]
        for (token, id) in vocabulary.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
            if let other = tokenOfID[id] { throw fail("model.vocab gives id \(id) to both '\(other)' and '\(token)'") }
            tokenOfID[id] = token
        }
        guard let rawMerges = model["merges"] as? [Any] else { throw fail("model.merges is not an array") }
        let merges: [Pair] = try rawMerges.enumerated().map { index, entry in
            let pair: Pair
            if let text = entry as? String {
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("model.merges[\(index)] '\(text)' is not two symbols") }
                pair = Pair(left: String(parts[0]), right: String(parts[1]))
            } else {
                guard let parts = entry as? [String], parts.count == 2 else { throw fail("model.merges[\(index)] is not a pair") }
                pair = Pair(left: parts[0], right: parts[1])
            }
            // As the library's BPE builder: both parts and their concatenation must be tokens.
            for symbol in [pair.left, pair.right, pair.left + pair.right] where vocabulary[symbol] == nil {
                throw fail("model.merges[\(index)] '\(pair.left) \(pair.right)': '\(symbol)' is not in model.vocab")
            }
            return pair
        }
        let added = try Self.addedTokens(root["added_tokens"], fail)
        let normalizations = try Self.normalizations(root["normalizer"], fail)
        let (pattern, prefixSpace) = try Self.preTokenizer(root["pre_tokenizer"], fail)
        let regex: NSRegularExpression
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw fail("pre_tokenizer pattern '\(pattern)' does not compile as an ICU regular expression")
        }
        var knownIDs = vocabulary
        for t in added { knownIDs[t.content] = t.id }
        let (prefix, suffix) = try Self.template(root["post_processor"], ids: knownIDs, fail)
        if let decoder = root["decoder"], !(decoder is NSNull) {
            guard let d = decoder as? [String: Any], d["type"] as? String == "ByteLevel" else {
                throw fail("decoder \((decoder as? [String: Any])?["type"] ?? decoder) is not ByteLevel")
            }
        }
        var unknown: Int32? = nil
        if let name = model["unk_token"] as? String {
            guard let id = knownIDs[name] else { throw fail("model.unk_token '\(name)' is not in the vocabulary") }
            unknown = id
        }
        self.init(vocabulary: vocabulary, merges: merges, addedTokens: added, unknownID: unknown,
                  ignoreMerges: model["ignore_merges"] as? Bool ?? false, normalizations: normalizations,
                  splitPattern: regex, source: source, addPrefixSpace: prefixSpace, prefixIds: prefix, suffixIds: suffix)
    }

    /// The id of a JSON number that is an integer in 0...Int32.max; nil for anything else
    /// (a fraction or exponent, as the library's `u32` fields refuse; true and false; a string).
    static func tokenID(_ value: Any?) -> Int32? {
        guard let number = value as? NSNumber, !(number is NSDecimalNumber) else { return nil }
        // JSONSerialization gives booleans objCType "c" and numbers written with a fraction or an exponent "d".
        let type = String(cString: number.objCType)
        guard !["c", "d", "f"].contains(type), let id = Int32(exactly: number.int64Value), id >= 0,
              number.doubleValue == Double(id) else { return nil }
        return id
    }

    /// A JSON value as an error message shows it: strings quoted, so "7" is not read as 7.
    static func written(_ value: Any) -> String {
        if let text = value as? String { return text.debugDescription }
        return "\(value)"
    }

    private static func addedTokens(_ value: Any?, _ fail: (String) -> DataError) throws -> [AddedToken] {
        guard let list = value, !(list is NSNull) else { return [] }
        guard let entries = list as? [[String: Any]] else { throw fail("added_tokens is not an array of objects") }
        return try entries.enumerated().map { index, entry in
            guard let rawID = entry["id"] else { throw fail("added_tokens[\(index)] has no id") }
            guard let id = tokenID(rawID) else {
                throw fail("added_tokens[\(index)] id \(written(rawID)) is not a token id (an integer in 0...\(Int32.max))")
            }
            guard let content = entry["content"] as? String else { throw fail("added_tokens[\(index)] (id \(id)) has no content") }
            return AddedToken(id: id, content: content, special: entry["special"] as? Bool ?? false)
        }
    }

    private static func normalizations(_ value: Any?, _ fail: (String) -> DataError) throws -> [Normalization] {
        guard let v = value, !(v is NSNull) else { return [] }
        guard let object = v as? [String: Any], let type = object["type"] as? String else { throw fail("normalizer has no type") }
        switch type {
        case "NFC": return [.nfc]
        case "NFD": return [.nfd]
        case "NFKC": return [.nfkc]
        case "NFKD": return [.nfkd]
        case "Sequence":
            guard let parts = object["normalizers"] as? [[String: Any]] else {
                throw fail("normalizer Sequence has no normalizers (an array of objects)")
            }
            return try parts.flatMap { try normalizations($0, fail) }
        default: throw fail("normalizer type '\(type)' is not supported (byte-level BPE uses none or a Unicode normal form)")
        }
    }

    /// The split pattern and add_prefix_space of a supported pre-tokenizer.
    private static func preTokenizer(_ value: Any?, _ fail: (String) -> DataError) throws -> (String, Bool) {
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw fail("pre_tokenizer is missing: a byte-level BPE tokenizer needs a ByteLevel pre-tokenizer")
        }
        switch type {
        case "ByteLevel":
            guard object["use_regex"] as? Bool ?? true else {
                throw fail("a lone ByteLevel pre-tokenizer with use_regex false (no split) is not supported")
            }
            return (gpt2Pattern, object["add_prefix_space"] as? Bool ?? false)
        case "Sequence":
            guard let parts = object["pretokenizers"] as? [[String: Any]], parts.count == 2,
                  parts[0]["type"] as? String == "Split", parts[1]["type"] as? String == "ByteLevel" else {
                throw fail("pre_tokenizer Sequence must be [Split, ByteLevel]")
            }
            let split = parts[0], byteLevel = parts[1]
            guard split["behavior"] as? String == "Isolated", !(split["invert"] as? Bool ?? false) else {
                throw fail("Split behavior '\(split["behavior"] ?? "missing")' (invert \(split["invert"] ?? false)) is not supported; Isolated is")
            }
            guard !(byteLevel["use_regex"] as? Bool ?? true) else {
                throw fail("a ByteLevel after a Split must have use_regex false")
            }
            let pattern = split["pattern"] as? [String: Any]
            if let regex = pattern?["Regex"] as? String { return (regex, byteLevel["add_prefix_space"] as? Bool ?? false) }
            if let literal = pattern?["String"] as? String {
                return (NSRegularExpression.escapedPattern(for: literal), byteLevel["add_prefix_space"] as? Bool ?? false)
            }
            throw fail("Split pattern is neither Regex nor String")
        default: throw fail("pre_tokenizer type '\(type)' is not supported (ByteLevel or Sequence [Split, ByteLevel])")
        }
    }

    /// The ids a post-processor puts around a single sequence.
    private static func template(_ value: Any?, ids: [String: Int32], _ fail: (String) -> DataError) throws -> ([Int32], [Int32]) {
        guard let v = value, !(v is NSNull) else { return ([], []) }
        guard let object = v as? [String: Any], let type = object["type"] as? String else { throw fail("post_processor has no type") }
        switch type {
        case "ByteLevel": return ([], [])
        case "Sequence":
            guard let parts = object["processors"] as? [Any] else { throw fail("post_processor Sequence has no processors") }
            var prefix: [Int32] = [], suffix: [Int32] = []
            for p in parts {
                let (a, b) = try template(p, ids: ids, fail)
                prefix += a
                suffix = b + suffix
            }
            return (prefix, suffix)
        case "TemplateProcessing":
            guard let single = object["single"] as? [[String: Any]] else { throw fail("TemplateProcessing has no single template") }
            var prefix: [Int32] = [], suffix: [Int32] = [], seenSequence = false
            for piece in single {
                if piece["Sequence"] != nil {
                    guard !seenSequence else { throw fail("TemplateProcessing single template has two sequences") }
                    seenSequence = true
                } else if let special = piece["SpecialToken"] as? [String: Any], let name = special["id"] as? String {
                    let tokenIDs: [Int32]
                    if let entry = (object["special_tokens"] as? [String: Any])?[name] as? [String: Any],
                       let list = entry["ids"] as? [Any] {
                        tokenIDs = try list.map { value in
                            guard let id = tokenID(value) else {
                                throw fail("TemplateProcessing special token '\(name)' id \(written(value)) is not a token id (an integer in 0...\(Int32.max))")
                            }
                            return id
                        }
                    } else if let id = ids[name] {
                        tokenIDs = [id]
                    } else {
                        throw fail("TemplateProcessing names special token '\(name)', which has no id")
                    }
                    if seenSequence { suffix += tokenIDs } else { prefix += tokenIDs }
                } else {
                    throw fail("TemplateProcessing piece \(piece) is neither SpecialToken nor Sequence")
                }
            }
            return (prefix, suffix)
        default: throw fail("post_processor type '\(type)' is not supported (ByteLevel, TemplateProcessing or a Sequence of them)")
        }
    }
}
