// Exact entropy floors of the synthetic corpus.
//
// With μₚ the distribution of the token at position p (μ₀ = start,
// μₚ = μₚ₋₁ P), Hₓ the entropy of row x and Gₓ its largest entry:
//   hₚ = Σₓ μₚ₋₁(x) Hₓ = H(Xₚ | X<ₚ)   (first order: the prefix acts through Xₚ₋₁)
//   gₚ = Σₓ μₚ₋₁(x) Gₓ = E[maxᵧ P(Xₚ = y | X<ₚ)]
// Position p is a target only when the document is longer than p, which has
// probability S(p) = P(L > p), independent of the tokens. The floor of a set of
// targets is the expected summed entropy over the expected number of targets
// (what a mean over a large held-out set converges to):
//   main floor    = Σ_{p ≥ 1}     S(p) hₚ / Σ_{p ≥ 1}     S(p)
//   depth-k floor = Σ_{p ≥ k + 2} S(p) hₚ / Σ_{p ≥ k + 2} S(p)
// (depth k at position t predicts token t + k + 2 from the tokens up to t + k + 1).

import Foundation

/// A mean over the main next-token targets and over each MTP depth's targets.
public struct TargetMeans: Sendable, Equatable, CustomStringConvertible {
    /// The mean over main targets: positions p ≥ 1 of each document.
    public var main: Double
    /// `depths[k]`: the mean over depth-k targets, positions p ≥ k + 2 (NaN when there are none).
    public var depths: [Double]

    /// A value holding `main` and `depths`.
    public init(main: Double, depths: [Double]) {
        self.main = main
        self.depths = depths
    }

    /// `main 1.7856, depth 0 1.8392, …` (4 decimals).
    public var description: String {
        "main \(format(main))" + depths.enumerated().map { ", depth \($0.offset) \(format($0.element))" }.joined()
    }

    private func format(_ x: Double) -> String { String(format: "%.4f", x) }
}

/// The per-position quantities of a corpus, computed once at construction.
struct PositionProfile: Sendable {
    /// `entropy[p]` = hₚ for p in 1 ..< maxLength (index 0 unused).
    var entropy: [Double]
    /// `greedy[p]` = gₚ.
    var greedy: [Double]
    /// `survival[p]` = P(L > p) for p in 0 ..< maxLength.
    var survival: [Double]
    /// Hₓ for each token.
    var rowEntropy: [Double]
    /// Gₓ for each token.
    var rowMaximum: [Double]
    /// The expected token frequencies over whole documents.
    var unigram: [Double]

    init(start: [Double], transitions p: [Double], vocabularySize v: Int, lengths: ClosedRange<Int>) {
        let a = lengths.lowerBound, b = lengths.upperBound, n = Double(lengths.count)
        rowEntropy = (0..<v).map { x in entropyOf(p[x * v..<(x + 1) * v]) }
        rowMaximum = (0..<v).map { x in p[x * v..<(x + 1) * v].max()! }
        survival = (0..<b).map { pos in Double(b - max(a - 1, pos)) / n }
        entropy = [Double](repeating: 0, count: b)
        greedy = [Double](repeating: 0, count: b)
        var mu = start
        var frequency = start  // S(0) = 1
        var next = [Double](repeating: 0, count: v)
        for pos in 1..<b {
            var h = 0.0, g = 0.0
            for x in 0..<v { h += mu[x] * rowEntropy[x]; g += mu[x] * rowMaximum[x] }
            entropy[pos] = h
            greedy[pos] = g
            for y in 0..<v { next[y] = 0 }
            for x in 0..<v where mu[x] != 0 {
                let w = mu[x], row = x * v
                for y in 0..<v { next[y] += w * p[row + y] }
            }
            swap(&mu, &next)
            for y in 0..<v { frequency[y] += survival[pos] * mu[y] }
        }
        let total = frequency.reduce(0, +)
        unigram = frequency.map { $0 / total }
    }

    /// Σ S(p) values[p] / Σ S(p) over p in `first ..< maxLength` (NaN when empty).
    func targetMean(_ values: [Double], from first: Int) -> Double {
        var num = 0.0, den = 0.0
        for pos in max(first, 1)..<max(survival.count, max(first, 1)) {
            num += survival[pos] * values[pos]
            den += survival[pos]
        }
        return den > 0 ? num / den : .nan
    }
}

/// −Σ pᵢ log pᵢ in nats (0 log 0 = 0).
func entropyOf<C: Collection<Double>>(_ probabilities: C) -> Double {
    var h = 0.0
    for q in probabilities where q > 0 { h -= q * Foundation.log(q) }
    return h
}

extension SyntheticCorpus {
    // MARK: Exact expectations over the process

    /// The exact best achievable expected cross-entropy (nats) of the next token
    /// and of each MTP depth: the mean of H(Xₚ | X<ₚ) over main targets (p ≥ 1)
    /// and over depth-k targets (p ≥ k + 2), weighted by how often each position
    /// is a target (ratio of expectations, see the file header).
    ///
    /// - Parameter depths: the number of MTP depths D (≥ 0).
    /// - Returns: `main` and `depths[0 ..< D]`. For these defaults the depth
    ///   floors rise strictly with k for k < ``openingCount``.
    /// - Throws: ``DataError/invalidArgument(_:)`` when `depths` is negative.
    ///
    /// Edge cases: a depth with no targets (k + 2 ≥ the longest document) has floor NaN.
    public func floors(depths: Int) throws -> TargetMeans {
        try checkDepths(depths)
        return TargetMeans(main: profile.targetMean(profile.entropy, from: 1),
                           depths: (0..<depths).map { profile.targetMean(profile.entropy, from: $0 + 2) })
    }

    /// The best possible greedy accuracy: the mean over targets of
    /// maxᵧ P(Xₚ = y | X<ₚ), the probability that the Bayes-greedy prediction
    /// is right — for speculative decoding, the acceptance rate of a perfect
    /// depth-k draft under greedy verification.
    ///
    /// - Parameter depths: the number of MTP depths D (≥ 0).
    /// - Returns: `main` and `depths[0 ..< D]` (NaN for a depth with no targets).
    /// - Throws: ``DataError/invalidArgument(_:)`` when `depths` is negative.
    public func greedyAccuracy(depths: Int) throws -> TargetMeans {
        try checkDepths(depths)
        return TargetMeans(main: profile.targetMean(profile.greedy, from: 1),
                           depths: (0..<depths).map { profile.targetMean(profile.greedy, from: $0 + 2) })
    }

    /// The entropy (nats) of the expected token frequencies over whole documents
    /// (every position, the first included): the loss of the best context-free
    /// predictor, so the gap to the main floor measures what context is worth.
    public var unigramEntropy: Double { entropyOf(profile.unigram) }

    /// The expected frequency of each token over whole documents, `[V]`, summing to 1.
    public var unigramProbabilities: [Double] { profile.unigram }

    /// The exact expected conditional entropy H(Xₚ | X<ₚ) at position `p` of a
    /// document that reaches it.
    ///
    /// - Throws: ``DataError/invalidArgument(_:)`` unless `1 ≤ p < maxLength`.
    public func expectedEntropy(atPosition p: Int) throws -> Double {
        guard p >= 1 && p < documentLengths.upperBound else {
            throw DataError.invalidArgument(
                "SyntheticCorpus: position \(p) is outside 1..<\(documentLengths.upperBound)")
        }
        return profile.entropy[p]
    }

    /// The entropy (nats) of the row of `token`: H(next | current = token).
    ///
    /// - Throws: ``DataError/tokenOutOfRange(_:)`` when `token` is outside `0 ..< V`.
    public func conditionalEntropy(after token: Int32) throws -> Double {
        try checkToken(token, "token")
        return profile.rowEntropy[Int(token)]
    }

    // MARK: Exact values on given documents

    /// The exact floors on a given set of documents: the mean, over its actual
    /// targets, of the true conditional entropy H(Xₚ | X<ₚ = the actual prefix).
    ///
    /// Each document counts from its own position 0, so the pieces a ``Packer``
    /// makes of long documents can be passed as they are (the process is first
    /// order: a piece's prefix predicts as well as the whole document's).
    ///
    /// - Parameters:
    ///   - documents: token ids in `0 ..< V`; not modified.
    ///   - depths: the number of MTP depths D (≥ 0).
    /// - Returns: means over main targets and each depth's targets (NaN where there are none).
    /// - Throws: ``DataError/tokenOutOfRange(_:)`` naming the document, position and id;
    ///   ``DataError/invalidArgument(_:)`` when `depths` is negative.
    public func floors(on documents: [[Int32]], depths: Int) throws -> TargetMeans {
        try targetMeans(on: documents, depths: depths) { prev, _ in profile.rowEntropy[prev] }
    }

    /// The exact best greedy accuracy on given documents: the mean over targets of
    /// maxᵧ P(Xₚ = y | actual prefix).
    ///
    /// - Throws: as ``floors(on:depths:)``.
    public func greedyAccuracy(on documents: [[Int32]], depths: Int) throws -> TargetMeans {
        try targetMeans(on: documents, depths: depths) { prev, _ in profile.rowMaximum[prev] }
    }

    /// The cross-entropy the true process itself scores on given documents: the
    /// mean over targets of −log P(actual token | actual prefix). Its expectation
    /// over sampled documents is the floor.
    ///
    /// Edge cases: a transition the process never makes gives +infinity.
    ///
    /// - Throws: as ``floors(on:depths:)``.
    public func trueCrossEntropy(on documents: [[Int32]], depths: Int) throws -> TargetMeans {
        let v = vocabularySize
        return try targetMeans(on: documents, depths: depths) { prev, token in
            -Foundation.log(transitionProbabilities[prev * v + token])
        }
    }

    /// Means of `value(previous, token)` over main targets and each depth's targets.
    func targetMeans(on documents: [[Int32]], depths: Int, _ value: (Int, Int) -> Double) throws -> TargetMeans {
        try checkDepths(depths)
        for (d, doc) in documents.enumerated() {
            for (p, t) in doc.enumerated() where t < 0 || Int(t) >= vocabularySize {
                throw DataError.tokenOutOfRange(
                    "SyntheticCorpus: document \(d) position \(p) holds token \(t), outside 0..<\(vocabularySize)")
            }
        }
        // sums[j], counts[j] over targets at position p ≥ j + 1 (j = 0: main, j = k + 1: depth k).
        var sums = [Double](repeating: 0, count: depths + 1), counts = [Int](repeating: 0, count: depths + 1)
        for doc in documents where doc.count >= 2 {
            for p in 1..<doc.count {
                let x = value(Int(doc[p - 1]), Int(doc[p]))
                for j in 0...min(depths, p - 1) { sums[j] += x; counts[j] += 1 }
            }
        }
        let means = (0...depths).map { counts[$0] > 0 ? sums[$0] / Double(counts[$0]) : .nan }
        return TargetMeans(main: means[0], depths: Array(means.dropFirst()))
    }

    func checkDepths(_ depths: Int) throws {
        guard depths >= 0 else { throw DataError.invalidArgument("SyntheticCorpus: depths \(depths) is negative") }
    }
}
