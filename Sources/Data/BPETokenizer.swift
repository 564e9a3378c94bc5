// Byte-level BPE tokenization as the Hugging Face `tokenizers` library does it for
// GPT-2, Llama 3 and Qwen2 models, natively (no Python at run time).
//
// encode(text):
//   1. split the text on added tokens (special tokens match literally, longest first);
//   2. each remaining segment: normalise (NFC, … or nothing), pre-tokenise (a regex
//      split, pieces = the matches and the gaps between them), map every piece's UTF-8
//      bytes to the byte-level alphabet (ByteLevel.swift); the regex runs under a work
//      budget proportional to the text's length (see `regexBudget`), so a pattern that
//      backtracks exponentially throws instead of running for hours;
//   3. BPE each piece: start from its characters and repeatedly merge the adjacent pair
//      of lowest merge rank (every occurrence, left to right) until no pair has a rank;
//      with `ignoreMerges`, a piece that is itself in the vocabulary is one token;
//   4. with special tokens, the post-processor's template adds e.g. a BOS token.
// decode(ids): tokens → bytes (ByteLevel, added tokens as their text) → UTF-8, invalid
// sequences replaced by U+FFFD (Rust's from_utf8_lossy, which the library uses).

import Foundation

/// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json`.
///
/// ```swift
/// let tokenizer = try BPETokenizer(contentsOf: URL(fileURLWithPath: "tokenizer.json"))
/// let ids = try tokenizer.encode("Hello, world!")
/// let text = tokenizer.decode(ids)          // "Hello, world!"
/// ```
public final class BPETokenizer: @unchecked Sendable {
    // Immutable after init except the piece cache, which `lock` guards.

    /// A token the vocabulary holds outside BPE (`added_tokens`): matched literally in text.
    public struct AddedToken: Sendable, Equatable {
        /// Its id.
        public var id: Int32
        /// Its text.
        public var content: String
        /// Whether decoding with `skipSpecialTokens` drops it.
        public var special: Bool
    }

    /// Unicode normal forms a normaliser may apply.
    enum Normalization: Sendable { case nfc, nfd, nfkc, nfkd }

    /// The number of token ids (the largest id + 1).
    public let vocabularySize: Int
    /// The added tokens, by id order.
    public let addedTokens: [AddedToken]
    let vocabulary: [String: Int32]
    let tokens: [Int32: String]
    let mergeRanks: [Pair: Int]
    let ignoreMerges: Bool
    /// The id of the unknown token, for symbols outside the vocabulary (nil: such a symbol throws).
    let unknownID: Int32?
    let normalizations: [Normalization]
    let splitPattern: NSRegularExpression
    /// What names the tokenizer in errors (its file's path).
    let source: String
    let addPrefixSpace: Bool
    /// Ids the post-processor puts before and after a sequence when special tokens are added.
    let prefixIds: [Int32]
    let suffixIds: [Int32]
    private let addedByLength: [AddedToken]
    private let addedFirstCharacters: Set<Character>
    private var cache: [String: [Int32]] = [:]
    private let lock = NSLock()

    struct Pair: Hashable, Sendable {
        let left: String
        let right: String
    }

    init(vocabulary: [String: Int32], merges: [Pair], addedTokens: [AddedToken], unknownID: Int32?, ignoreMerges: Bool,
         normalizations: [Normalization], splitPattern: NSRegularExpression, source: String = "tokenizer.json",
         addPrefixSpace: Bool, prefixIds: [Int32], suffixIds: [Int32]) {
        self.vocabulary = vocabulary
        var ranks: [Pair: Int] = [:]
        for (rank, pair) in merges.enumerated() where ranks[pair] == nil { ranks[pair] = rank }
        mergeRanks = ranks
        self.addedTokens = addedTokens.sorted { $0.id < $1.id }
        var byID: [Int32: String] = [:]
        for (text, id) in vocabulary { byID[id] = text }
        for t in addedTokens { byID[t.id] = t.content }
        tokens = byID
        vocabularySize = Int(byID.keys.max() ?? -1) + 1
        self.ignoreMerges = ignoreMerges
        self.unknownID = unknownID
        self.normalizations = normalizations
        self.splitPattern = splitPattern
        self.source = source
        self.addPrefixSpace = addPrefixSpace
        self.prefixIds = prefixIds
        self.suffixIds = suffixIds
        addedByLength = addedTokens.filter { !$0.content.isEmpty }.sorted { $0.content.utf8.count > $1.content.utf8.count }
        addedFirstCharacters = Set(addedByLength.compactMap(\.content.first))
    }

    // MARK: Encoding

    /// The ids of `text`.
    ///
    /// - Parameters:
    ///   - text: any string.
    ///   - addSpecialTokens: apply the post-processor's template (e.g. a BOS token), as
    ///     the library's `encode` does by default.
    /// - Returns: the token ids.
    /// - Throws: ``DataError/tokenOutOfRange(_:)`` when a piece cannot be expressed in the
    ///   vocabulary (a vocabulary without the full byte alphabet and no unknown token);
    ///   ``DataError/malformedFile(_:)`` naming the pattern when the pre-tokenizer's regex
    ///   needs more work than ``regexBudget(utf16Count:)`` allows (catastrophic backtracking).
    public func encode(_ text: String, addSpecialTokens: Bool = false) throws -> [Int32] {
        var ids: [Int32] = addSpecialTokens ? prefixIds : []
        for segment in splitOnAddedTokens(text) {
            switch segment {
            case .added(let id): ids.append(id)
            case .text(let t):
                for piece in try preTokenize(normalize(t)) { ids += try bpe(piece) }
            }
        }
        if addSpecialTokens { ids += suffixIds }
        return ids
    }

    /// The text of `ids`.
    ///
    /// - Parameters:
    ///   - ids: token ids; ids outside the vocabulary are skipped.
    ///   - skipSpecialTokens: leave out added tokens marked special.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        let special = Set(addedTokens.filter(\.special).map(\.id))
        var bytes: [UInt8] = []
        for id in ids {
            if skipSpecialTokens && special.contains(id) { continue }
            guard let token = tokens[id] else { continue }
            bytes += ByteLevel.decode(token: token)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The token text of `id` (nil outside the vocabulary).
    public func token(_ id: Int32) -> String? { tokens[id] }

    /// The id of a token's text (nil when the vocabulary has no such token).
    public func id(_ token: String) -> Int32? { vocabulary[token] ?? addedTokens.first { $0.content == token }?.id }

    enum Segment: Equatable {
        case text(Substring)
        case added(Int32)
    }

    /// `text` cut at every added token (the longest one wins where several start at one place).
    func splitOnAddedTokens(_ text: String) -> [Segment] {
        guard !addedByLength.isEmpty else { return text.isEmpty ? [] : [.text(text[...])] }
        var out: [Segment] = []
        var start = text.startIndex, i = text.startIndex
        while i < text.endIndex {
            if addedFirstCharacters.contains(text[i]), let token = addedByLength.first(where: { text[i...].hasPrefix($0.content) }) {
                if start < i { out.append(.text(text[start..<i])) }
                out.append(.added(token.id))
                i = text.index(i, offsetBy: token.content.count)
                start = i
            } else {
                i = text.index(after: i)
            }
        }
        if start < text.endIndex { out.append(.text(text[start...])) }
        return out
    }

    func normalize(_ text: Substring) -> String {
        var s = String(text)
        for n in normalizations {
            switch n {
            case .nfc: s = s.precomposedStringWithCanonicalMapping
            case .nfd: s = s.decomposedStringWithCanonicalMapping
            case .nfkc: s = s.precomposedStringWithCompatibilityMapping
            case .nfkd: s = s.decomposedStringWithCompatibilityMapping
            }
        }
        return s
    }

    /// The most progress reports ICU may make while the split pattern scans a text of
    /// `utf16Count` UTF-16 units: a few for any text, plus one per 16 units.
    ///
    /// ICU reports progress about every 10 000 backtracking steps. The GPT-2 and Llama 3
    /// patterns need about one report per 1 000 units even on random mixes of spaces, line
    /// breaks, digits, letters and punctuation (and none on plain prose), so the budget leaves
    /// them a margin of 60×; a pattern such as `(a|a)*b` on a run of `a`s (2ⁿ steps) exceeds it
    /// within milliseconds. The work of one `encode` is thereby at most linear in its text.
    static func regexBudget(utf16Count: Int) -> Int { 4 + utf16Count / 16 }

    /// The pieces of `text`: the pattern's matches and the non-empty gaps between them, in
    /// order (the library's "isolated" split), each in the byte-level alphabet.
    ///
    /// - Throws: ``DataError/malformedFile(_:)`` naming the pattern when it exceeds ``regexBudget(utf16Count:)``.
    func preTokenize(_ text: String) throws -> [String] {
        var s = text
        if addPrefixSpace && !s.hasPrefix(" ") && !s.isEmpty { s = " " + s }
        let ns = s as NSString
        let budget = Self.regexBudget(utf16Count: ns.length)
        var reports = 0
        var ranges: [NSRange] = []
        splitPattern.enumerateMatches(in: s, options: .reportProgress, range: NSRange(location: 0, length: ns.length)) { match, _, stop in
            guard let match else {
                // A progress report: ICU is still working on one match.
                reports += 1
                if reports > budget { stop.pointee = true }
                return
            }
            if match.range.length > 0 { ranges.append(match.range) }
        }
        guard reports <= budget else {
            throw DataError.malformedFile("\(source): the pre_tokenizer pattern '\(splitPattern.pattern)' needs more than about "
                + "\(budget * 10_000) regex steps on a text of \(ns.length) UTF-16 units (it backtracks catastrophically); "
                + "use a pattern without nested or ambiguous repetition")
        }
        var pieces: [String] = []
        var last = 0
        for range in ranges {
            if range.location > last {
                pieces.append(ns.substring(with: NSRange(location: last, length: range.location - last)))
            }
            pieces.append(ns.substring(with: range))
            last = range.location + range.length
        }
        if last < ns.length { pieces.append(ns.substring(from: last)) }
        return pieces.map { ByteLevel.encode($0[...]) }
    }

    /// The ids of one byte-level piece (cached: text repeats its words).
    func bpe(_ piece: String) throws -> [Int32] {
        lock.lock()
        if let hit = cache[piece] { lock.unlock(); return hit }
        lock.unlock()
        let ids: [Int32]
        if ignoreMerges, let id = vocabulary[piece] {
            ids = [id]
        } else {
            ids = try merged(piece).map { symbol in
                guard let id = vocabulary[symbol] ?? unknownID else {
                    throw DataError.tokenOutOfRange("BPE symbol '\(symbol)' of '\(piece)' is not in the vocabulary")
                }
                return id
            }
        }
        lock.lock()
        if cache.count > 100_000 { cache.removeAll() }
        cache[piece] = ids
        lock.unlock()
        return ids
    }

    /// The symbols of `piece` after every merge that applies, lowest rank first.
    func merged(_ piece: String) -> [String] {
        var symbols = piece.map { String($0) }
        while symbols.count > 1 {
            var best: (rank: Int, pair: Pair)? = nil
            for i in 0..<(symbols.count - 1) {
                let pair = Pair(left: symbols[i], right: symbols[i + 1])
                if let rank = mergeRanks[pair], rank < (best?.rank ?? .max) { best = (rank, pair) }
            }
            guard let (_, pair) = best else { break }
            var next: [String] = []
            next.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == pair.left && symbols[i + 1] == pair.right {
                    next.append(pair.left + pair.right)
                    i += 2
                } else {
                    next.append(symbols[i])
                    i += 1
                }
            }
            symbols = next
        }
        return symbols
    }
}
