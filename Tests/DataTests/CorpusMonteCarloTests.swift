// SyntheticCorpus: sampled documents agree with the exact floors within a few standard errors.
//
// Targets within a document are dependent, documents are not, so each check uses
// the ratio estimator r = Σ_d s_d / Σ_d c_d over documents d (s_d a document's
// summed value, c_d its number of targets) with the delta-method standard error
// sqrt(Σ_d (s_d − r c_d)² / (n (n − 1))) / mean(c_d).

import XCTest

@testable import Data

final class CorpusMonteCarloTests: XCTestCase {
    private let depths = 3
    private let tolerance = 4.5  // standard errors; every check here passes at far fewer for these seeds

    /// Per-document sums and counts over main targets (index 0) and depth-k targets (index k + 1).
    private func perDocument(_ docs: [[Int32]], _ value: (Int32, Int32) -> Double) -> [(sums: [Double], counts: [Double])] {
        docs.map { doc in
            var s = [Double](repeating: 0, count: depths + 1), c = s
            for p in 1..<doc.count {
                let x = value(doc[p - 1], doc[p])
                for j in 0...min(depths, p - 1) { s[j] += x; c[j] += 1 }
            }
            return (s, c)
        }
    }

    private func ratio(_ rows: [(sums: [Double], counts: [Double])], _ j: Int) -> (mean: Double, standardError: Double) {
        let n = Double(rows.count)
        let s = rows.reduce(0) { $0 + $1.sums[j] }, c = rows.reduce(0) { $0 + $1.counts[j] }
        let r = s / c
        let v = rows.reduce(0) { $0 + ($1.sums[j] - r * $1.counts[j]) * ($1.sums[j] - r * $1.counts[j]) } / (n * (n - 1))
        return (r, v.squareRoot() / (c / n))
    }

    private func assertAgrees(_ rows: [(sums: [Double], counts: [Double])], _ exact: TargetMeans, _ what: String) {
        for (j, want) in ([exact.main] + exact.depths).enumerated() {
            let (mean, se) = ratio(rows, j)
            let z = (mean - want) / se
            print("\(what) [\(j == 0 ? "main" : "depth \(j - 1)")]: sampled \(mean) ± \(se), exact \(want), z = \(z)")
            XCTAssertLessThanOrEqual(abs(z), tolerance, "\(what) level \(j)")
        }
    }

    func testSampledCrossEntropyOfTheTrueProcessMatchesTheFloors() throws {
        for (v, lengths, seed) in [(64, 16...48, UInt64(0)), (32, 4...12, 7)] {
            let c = try SyntheticCorpus(vocabularySize: v, documentLengths: lengths, seed: seed)
            let docs = try c.documents(count: 3000, seed: 100 + seed)
            let rows = perDocument(docs) { x, y in -log(c.transitionProbabilities[Int(x) * v + Int(y)]) }
            assertAgrees(rows, try c.floors(depths: depths), "−log P, V \(v)")
            // The exact floors on the sample are the same estimator with entropies in place of −log P.
            let onSample = try c.floors(on: docs, depths: depths)
            for j in 0...depths {
                XCTAssertEqual(ratio(perDocument(docs) { x, _ in try! c.conditionalEntropy(after: x) }, j).mean,
                               ([onSample.main] + onSample.depths)[j], accuracy: 1e-12)
            }
            assertAgrees(perDocument(docs) { x, _ in try! c.conditionalEntropy(after: x) }, try c.floors(depths: depths),
                         "H on sample, V \(v)")
        }
    }

    func testSampledGreedyHitRateMatchesTheGreedyAccuracy() throws {
        let c = try SyntheticCorpus()
        let v = c.vocabularySize
        let argmax = (0..<v).map { x in (0..<v).max { c.transitionProbabilities[x * v + $0] < c.transitionProbabilities[x * v + $1] }! }
        let docs = try c.documents(count: 3000, seed: 55)
        assertAgrees(perDocument(docs) { x, y in argmax[Int(x)] == Int(y) ? 1 : 0 }, try c.greedyAccuracy(depths: depths),
                     "greedy hits")
    }

    func testSampledTokenFrequenciesMatchTheUnigram() throws {
        let c = try SyntheticCorpus()
        let docs = try c.documents(count: 3000, seed: 77)
        let n = Double(docs.count)
        let lengths = docs.map { Double($0.count) }, meanLength = lengths.reduce(0, +) / n
        var worst = 0.0
        for x in 0..<Int32(c.vocabularySize) {
            let counts = docs.map { Double($0.lazy.filter { $0 == x }.count) }
            let r = counts.reduce(0, +) / lengths.reduce(0, +)
            let v = zip(counts, lengths).reduce(0) { $0 + ($1.0 - r * $1.1) * ($1.0 - r * $1.1) } / (n * (n - 1))
            let want = c.unigramProbabilities[Int(x)]
            let z = v > 0 ? (r - want) / (v.squareRoot() / meanLength) : (r == want ? 0 : .infinity)
            worst = max(worst, abs(z))
        }
        print("unigram frequencies: worst |z| over 64 tokens = \(worst)")
        XCTAssertLessThanOrEqual(worst, tolerance)
    }
}
