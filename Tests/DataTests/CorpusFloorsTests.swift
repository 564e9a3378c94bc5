// SyntheticCorpus floors: the design properties, edge cases, and the floors on a given set.

import XCTest

@testable import Data

final class CorpusFloorsTests: XCTestCase {
    private let corpus = try! SyntheticCorpus()

    func testDefaultProcessIsNotTrivial() throws {
        let floors = try corpus.floors(depths: 3)
        XCTAssertGreaterThanOrEqual(corpus.unigramEntropy - floors.main, 1, "context must be worth ≥ 1 nat")
        XCTAssertEqual(corpus.unigramProbabilities.reduce(0, +), 1, accuracy: 1e-12)
    }

    func testDepthFloorsRiseAboveTheMainFloor() throws {
        for (v, lengths, seed) in [(64, 16...48, UInt64(0)), (64, 16...48, 1), (96, 16...48, 2), (128, 16...48, 3),
                                   (32, 4...12, 7), (64, 8...64, 4)] {
            let c = try SyntheticCorpus(vocabularySize: v, documentLengths: lengths, seed: seed)
            let f = try c.floors(depths: 6), g = try c.greedyAccuracy(depths: 6)
            let chain = [f.main] + f.depths.filter { !$0.isNaN }
            XCTAssertEqual(chain, chain.sorted(), "V \(v) \(lengths): \(f)")
            XCTAssertEqual(Set(chain).count, chain.count, "strictly: \(f)")
            let accuracies = [g.main] + g.depths.filter { !$0.isNaN }
            XCTAssertEqual(accuracies, accuracies.sorted(by: >), "greedy accuracy falls with depth: \(g)")
            XCTAssertGreaterThanOrEqual(c.unigramEntropy - f.main, 1, "V \(v) \(lengths)")
        }
    }

    func testPositionProfileRisesThroughTheCountdown() throws {
        let h = try (1...SyntheticCorpus.openingCount + 1).map { try corpus.expectedEntropy(atPosition: $0) }
        XCTAssertEqual(h, h.sorted())
        XCTAssertEqual(h[0], try corpus.conditionalEntropy(after: 0), accuracy: 1e-12, "p = 1 follows an opening")
    }

    func testFloorsAreBoundedByTheEntropyOfTheRows() throws {
        let f = try corpus.floors(depths: 2)
        let rows = try (0..<64).map { try corpus.conditionalEntropy(after: Int32($0)) }
        for x in [f.main] + f.depths { XCTAssert(x > rows.min()! && x < rows.max()!) }
        XCTAssertLessThan(rows.max()!, log(64.0))
    }

    func testDepthWithoutTargetsIsNaN() throws {
        let c = try SyntheticCorpus(vocabularySize: 24, documentLengths: 2...4, seed: 1)
        let f = try c.floors(depths: 3)
        XCTAssertFalse(f.main.isNaN)
        XCTAssertFalse(f.depths[0].isNaN || f.depths[1].isNaN)
        XCTAssert(f.depths[2].isNaN, "depth 2 needs position 4, past the longest document")
        XCTAssertEqual(try c.floors(depths: 0).depths, [])
        let twoTokens = try SyntheticCorpus(documentLengths: 2...2)
        XCTAssertEqual(try twoTokens.floors(depths: 1).main, try twoTokens.conditionalEntropy(after: 0), accuracy: 1e-12)
        XCTAssert(try twoTokens.floors(depths: 1).depths[0].isNaN)
    }

    func testFloorsOnAGivenSetCountEachTargetOnce() throws {
        let docs: [[Int32]] = [[0, 8, 40], [3, 11], [20], []]
        let h = { (t: Int32) in try! self.corpus.conditionalEntropy(after: t) }
        let f = try corpus.floors(on: docs, depths: 2)
        XCTAssertEqual(f.main, (h(0) + h(8) + h(3)) / 3, accuracy: 1e-15)
        XCTAssertEqual(f.depths[0], h(8), accuracy: 1e-15, "only position 2 of the first document")
        XCTAssert(f.depths[1].isNaN)
        let ce = try corpus.trueCrossEntropy(on: docs, depths: 0)
        let logs = try [(Int32(0), Int32(8)), (8, 40), (3, 11)].map { -log(try corpus.probability(of: $0.1, after: $0.0)) }
        XCTAssertEqual(ce.main, logs.reduce(0, +) / 3, accuracy: 1e-15)
        XCTAssert(try corpus.floors(on: [], depths: 1).main.isNaN)
    }

    func testImpossibleTransitionHasInfiniteTrueCrossEntropy() throws {
        XCTAssertEqual(try corpus.trueCrossEntropy(on: [[0, 1]], depths: 0).main, .infinity)
    }

    func testFloorsOnSplitPiecesUseOnlyThePieceContext() throws {
        let doc = try corpus.documents(count: 1, seed: 4)[0]
        let packer = try Packer(sequenceLength: 10, batchSize: 1, vocabularySize: 64)
        let pieces = try packer.pieces(of: [doc])
        let f = try corpus.floors(on: pieces, depths: 1)
        var sum = 0.0, count = 0
        for piece in pieces where piece.count > 1 {
            for p in 1..<piece.count { sum += try corpus.conditionalEntropy(after: piece[p - 1]); count += 1 }
        }
        XCTAssertEqual(f.main, sum / Double(count), accuracy: 1e-12)
    }

    func testOnDocumentsErrorsNameDocumentPositionAndToken() {
        assertThrows(try corpus.floors(on: [[1, 2], [3, 70]], depths: 1), "document 1 position 1 holds token 70")
        assertThrows(try corpus.greedyAccuracy(on: [[-5]], depths: 0), "-5")
        assertThrows(try corpus.trueCrossEntropy(on: [[1]], depths: -2), "-2")
    }

    func testDescriptionListsEveryValue() throws {
        XCTAssertEqual(TargetMeans(main: 1.5, depths: [2, 2.25]).description, "main 1.5000, depth 0 2.0000, depth 1 2.2500")
    }
}
