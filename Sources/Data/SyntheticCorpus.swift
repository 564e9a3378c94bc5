// The built-in corpus: documents drawn from a seeded first-order Markov chain
// whose entropy floors are known exactly (see Corpus+Floors.swift).
//
// Letters: V vocabulary size, n opening tokens (8), K successors of a body
// token (8), m = V − 2n body tokens, L document length, p position in a
// document (0-based; position p ≥ 1 is a next-token target).

import Tensors

/// A seeded hidden process that generates documents of token ids, with exactly
/// computable entropy floors for next-token and MTP prediction.
///
/// ## The process
/// A first-order, time-homogeneous Markov chain over `V` tokens, laid out as
/// - **openings** `0 ..< n` (n = ``openingCount`` = 8): every document starts
///   with one, uniformly at random;
/// - **countdown** tokens `n ..< 2n`, written c₁ … cₙ (cⱼ = token `n + j − 1`):
///   opening `i` goes to c₍ᵢ₊₁₎ and cⱼ goes to cⱼ₋₁, each with probability
///   1 − δ (δ = ``countdownLeak`` = 0.02; the leak is spread evenly over the
///   body tokens). A document therefore opens with 1 … n nearly deterministic
///   steps, as many as its opening's index plus one;
/// - **body** tokens `2n ..< V`: c₁ and every body token have a "body row": K
///   (= ``bodySuccessorCount`` = 8) distinct random body successors with
///   Zipf-like weights `(0.5 + u) / (i + 1)` (u uniform, i = 0 … K − 1),
///   mixed with ε (= ``bodyLeak`` = 0.05) spread evenly over all body tokens.
///
/// A document's length is uniform in ``documentLengths``, independent of its
/// tokens. So early positions are easy and later ones hard: the average
/// conditional entropy rises with position for the first n + 1 targets, which
/// makes each MTP depth (whose targets start one position later than the
/// previous depth's) face a higher floor than the one before.
///
/// Because the chain is first order and time-homogeneous, the Bayes-optimal
/// prediction of any token needs only the token before it. This also holds
/// for a piece of a document that was split (``Packer``), so the floors on a
/// packed held-out set are exact whatever the row length.
///
/// ## Parameters from the seed
/// Only c₁ and the body rows are random. Rows are built in token order from a
/// ``SplitMix64`` seeded with `seed`; each body row draws K successor slots by
/// a partial Fisher–Yates shuffle of `0 ..< m` (slot i swaps with
/// `i + next() % (m − i)`), then K uniforms `Double(next() >> 11) · 2⁻⁵³`.
/// Entry = `ε / m + (1 − ε) · wᵢ / Σw` (Σw summed in slot order). The same
/// recipe is re-implemented in `scripts/reference/corpus_floors.py`, which
/// reproduces the matrix bit for bit.
///
/// ```swift
/// let corpus = try SyntheticCorpus(vocabularySize: 64, seed: 1)
/// let documents = try corpus.documents(count: 1000, seed: 2)
/// let floors = try corpus.floors(depths: 2)   // main ≈ 1.79 nats for these defaults
/// ```
public struct SyntheticCorpus: Sendable {
    // MARK: Fixed shape of the process

    /// Number of opening tokens, and the longest countdown.
    public static let openingCount = 8
    /// Probability that an opening or countdown token leaves its countdown for the body.
    public static let countdownLeak = 0.02
    /// Number of favoured successors in a body row.
    public static let bodySuccessorCount = 8
    /// Probability mass of a body row spread evenly over all body tokens.
    public static let bodyLeak = 0.05
    /// The vocabulary sizes accepted: room for openings, countdown and K body tokens,
    /// and small enough that the O(V² · maxLength) floor computation stays quick.
    public static let vocabularySizes = (2 * openingCount + bodySuccessorCount)...1024
    /// The document lengths accepted (a document needs two tokens to have a target).
    public static let lengthLimits = 2...4096

    // MARK: Parameters

    /// Number of token ids, `V`.
    public let vocabularySize: Int
    /// The range a document's length is drawn from, uniformly.
    public let documentLengths: ClosedRange<Int>
    /// The seed the transition rows were built from.
    public let seed: UInt64
    /// The distribution of a document's first token, `[V]`.
    public let startProbabilities: [Double]
    /// The transition matrix, row-major `[V × V]`: entry `x · V + y` is P(next = y | current = x).
    public let transitionProbabilities: [Double]

    /// Row-wise running sums of ``transitionProbabilities`` (for sampling).
    let cumulativeTransitions: [Double]
    /// Running sums of ``startProbabilities``.
    let cumulativeStart: [Double]
    /// Position profile of the exact floors, computed once (Corpus+Floors.swift).
    let profile: PositionProfile

    /// Builds the process.
    ///
    /// - Parameters:
    ///   - vocabularySize: `V`, in ``vocabularySizes`` (default 64).
    ///   - documentLengths: lengths to draw uniformly from, inside ``lengthLimits`` (default 16...48).
    ///   - seed: seeds the transition rows (not the documents).
    /// - Throws: ``DataError/invalidArgument(_:)`` naming the value when `V` or a length is out of range.
    /// - Complexity: O(V² · maxLength) for the floor profile.
    public init(vocabularySize: Int = 64, documentLengths: ClosedRange<Int> = 16...48, seed: UInt64 = 0) throws {
        guard Self.vocabularySizes.contains(vocabularySize) else {
            throw DataError.invalidArgument(
                "SyntheticCorpus: vocabularySize \(vocabularySize) is outside \(Self.vocabularySizes)")
        }
        guard Self.lengthLimits.contains(documentLengths.lowerBound),
              Self.lengthLimits.contains(documentLengths.upperBound) else {
            throw DataError.invalidArgument(
                "SyntheticCorpus: documentLengths \(documentLengths) is not inside \(Self.lengthLimits)")
        }
        self.vocabularySize = vocabularySize
        self.documentLengths = documentLengths
        self.seed = seed
        (startProbabilities, transitionProbabilities) = Self.parameters(vocabularySize: vocabularySize, seed: seed)
        cumulativeStart = Self.runningSums(startProbabilities, rowLength: vocabularySize)
        cumulativeTransitions = Self.runningSums(transitionProbabilities, rowLength: vocabularySize)
        profile = PositionProfile(start: startProbabilities, transitions: transitionProbabilities,
                                  vocabularySize: vocabularySize, lengths: documentLengths)
    }

    /// The start distribution and transition matrix for `V` and `seed` (recipe in the type's documentation).
    static func parameters(vocabularySize v: Int, seed: UInt64) -> (start: [Double], transitions: [Double]) {
        let n = openingCount, k = bodySuccessorCount, m = v - 2 * n
        var generator = SplitMix64(seed: seed)
        var start = [Double](repeating: 0, count: v)
        for x in 0..<n { start[x] = 1 / Double(n) }
        var p = [Double](repeating: 0, count: v * v)
        for x in 0..<v {
            let row = x * v
            if x < n || (x > n && x < 2 * n) {
                // Opening i → c_(i+1) = token n + i; countdown c_j (token x) → c_(j−1) = token x − 1.
                for y in 2 * n..<v { p[row + y] = countdownLeak / Double(m) }
                p[row + (x < n ? x + n : x - 1)] += 1 - countdownLeak
                continue
            }
            var slots = Array(0..<m)
            for i in 0..<k {
                let j = i + Int(generator.next() % UInt64(m - i))
                slots.swapAt(i, j)
            }
            var weights = [Double](repeating: 0, count: k)
            for i in 0..<k { weights[i] = (0.5 + unitDouble(&generator)) / Double(i + 1) }
            var total = 0.0
            for w in weights { total += w }
            for y in 2 * n..<v { p[row + y] = bodyLeak / Double(m) }
            for i in 0..<k { p[row + 2 * n + slots[i]] = bodyLeak / Double(m) + (1 - bodyLeak) * weights[i] / total }
        }
        return (start, p)
    }

    /// A uniform Double in [0, 1) on the 2⁻⁵³ grid.
    static func unitDouble(_ generator: inout SplitMix64) -> Double {
        Double(generator.next() >> 11) * 0x1p-53
    }

    static func runningSums(_ values: [Double], rowLength: Int) -> [Double] {
        var out = values
        for start in stride(from: 0, to: values.count, by: rowLength) {
            var s = 0.0
            for i in start..<start + rowLength { s += values[i]; out[i] = s }
        }
        return out
    }

    // MARK: Sampling

    /// Draws documents from the process.
    ///
    /// Each document draws its length (`lower + next() % count`), then its first
    /// token from ``startProbabilities``, then each next token from the row of
    /// the previous one (inverse CDF on a 53-bit uniform).
    ///
    /// - Parameters:
    ///   - count: number of documents (≥ 0).
    ///   - generator: advanced by the draws; the same state gives the same documents.
    /// - Returns: `count` documents of ids in `0 ..< V`, lengths in ``documentLengths``.
    /// - Throws: ``DataError/invalidArgument(_:)`` when `count` is negative.
    public func documents(count: Int, generator: inout SplitMix64) throws -> [[Int32]] {
        guard count >= 0 else { throw DataError.invalidArgument("SyntheticCorpus: document count \(count) is negative") }
        let lower = documentLengths.lowerBound, span = UInt64(documentLengths.count)
        var out: [[Int32]] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let length = lower + Int(generator.next() % span)
            var doc = [Int32](repeating: 0, count: length)
            var x = Self.sample(cumulativeStart, offset: 0, length: vocabularySize, &generator)
            doc[0] = Int32(x)
            for p in 1..<length {
                x = Self.sample(cumulativeTransitions, offset: x * vocabularySize, length: vocabularySize, &generator)
                doc[p] = Int32(x)
            }
            out.append(doc)
        }
        return out
    }

    /// Draws documents from a generator seeded with `seed`.
    ///
    /// - Throws: ``DataError/invalidArgument(_:)`` when `count` is negative.
    public func documents(count: Int, seed: UInt64) throws -> [[Int32]] {
        var generator = SplitMix64(seed: seed)
        return try documents(count: count, generator: &generator)
    }

    /// The first index whose running sum exceeds a uniform draw; an index with
    /// probability zero is never returned.
    static func sample(_ cumulative: [Double], offset: Int, length: Int, _ generator: inout SplitMix64) -> Int {
        let u = unitDouble(&generator)
        var lo = offset, hi = offset + length - 1
        // Rounding can leave the row's total just below 1: fall back to its last positive entry.
        if u >= cumulative[hi] {
            while hi > offset && cumulative[hi] == cumulative[hi - 1] { hi -= 1 }
            return hi - offset
        }
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
        }
        return lo - offset
    }

    // MARK: Probabilities

    /// P(next = `token` | current = `previous`).
    ///
    /// - Throws: ``DataError/tokenOutOfRange(_:)`` when either id is outside `0 ..< V`.
    public func probability(of token: Int32, after previous: Int32) throws -> Double {
        try checkToken(previous, "previous token"); try checkToken(token, "token")
        return transitionProbabilities[Int(previous) * vocabularySize + Int(token)]
    }

    func checkToken(_ t: Int32, _ what: @autoclosure () -> String) throws {
        guard t >= 0 && Int(t) < vocabularySize else {
            throw DataError.tokenOutOfRange("SyntheticCorpus: \(what()) \(t) is outside 0..<\(vocabularySize)")
        }
    }
}
