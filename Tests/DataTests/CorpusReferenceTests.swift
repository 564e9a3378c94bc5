// SyntheticCorpus against the independent NumPy reference (scripts/reference/corpus_floors.py,
// values in CorpusReferenceValues.swift).

import XCTest

@testable import Data

final class CorpusReferenceTests: XCTestCase {
    private func corpus(_ r: CorpusReference) throws -> SyntheticCorpus {
        try SyntheticCorpus(vocabularySize: r.vocabularySize, documentLengths: r.documentLengths, seed: r.seed)
    }

    /// Prints the largest difference, llm.c style, and checks it.
    private func assertMatches(_ got: [Double], _ want: [Double], _ what: String, tolerance: Double = 1e-12,
                               line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, line: line)
        var worst = 0.0
        for (g, w) in zip(got, want) {
            if w.isNaN { XCTAssert(g.isNaN, "\(what): \(g) vs NaN", line: line); continue }
            worst = max(worst, abs(g - w))
        }
        print("\(what): max |swift − numpy| = \(worst)")
        XCTAssertLessThanOrEqual(worst, tolerance, what, line: line)
    }

    func testTheMatrixIsReproducedFromTheSeed() throws {
        for r in corpusReferences {
            let c = try corpus(r), v = r.vocabularySize
            var checksum = 0.0
            for x in 0..<v { for y in 0..<v { checksum += c.transitionProbabilities[x * v + y] * Double((x * v + y) % 97 + 1) } }
            assertMatches([checksum], [r.transitionChecksum], "checksum V \(v)", tolerance: 1e-9)
            // Only + − × ÷ on doubles in the same order: the rows agree bit for bit.
            for (x, row) in r.rows { XCTAssertEqual(Array(c.transitionProbabilities[x * v..<(x + 1) * v]), row, "row \(x)") }
        }
    }

    func testExactFloorsGreedyAccuracyAndUnigramEntropy() throws {
        for r in corpusReferences {
            let c = try corpus(r)
            let f = try c.floors(depths: r.depths), g = try c.greedyAccuracy(depths: r.depths)
            assertMatches([f.main] + f.depths, r.floors, "floors V \(r.vocabularySize)")
            assertMatches([g.main] + g.depths, r.greedyAccuracy, "greedy V \(r.vocabularySize)")
            assertMatches([c.unigramEntropy], [r.unigramEntropy], "unigram V \(r.vocabularySize)")
        }
    }

    func testValuesOnAGivenSetOfDocuments() throws {
        for r in corpusReferences {
            let c = try corpus(r)
            let f = try c.floors(on: r.documents, depths: r.depths)
            let g = try c.greedyAccuracy(on: r.documents, depths: r.depths)
            let ce = try c.trueCrossEntropy(on: r.documents, depths: r.depths)
            assertMatches([f.main] + f.depths, r.documentFloors, "set floors V \(r.vocabularySize)")
            assertMatches([g.main] + g.depths, r.documentGreedyAccuracy, "set greedy V \(r.vocabularySize)")
            assertMatches([ce.main] + ce.depths, r.documentTrueCrossEntropy, "set cross-entropy V \(r.vocabularySize)")
        }
    }
}
