// Packer: row layout, best-fit packing, splitting, determinism, agreement with the
// MTP loss's rolling (SPEC §3), and errors.

import MTP
import Tensors
import XCTest

@testable import Data

final class PackingTests: XCTestCase {
    private func rows(_ t: Tensor) -> [[Int64]] {
        let v = t.int64s, s = t.shape[1]
        return (0..<t.shape[0]).map { Array(v[$0 * s..<($0 + 1) * s]) }
    }

    func testRowLayoutMatchesTheDocumentedExample() throws {
        let packer = try Packer(sequenceLength: 7, batchSize: 1, vocabularySize: 10, padId: 9)
        let b = try packer.batch(rows: [PackedRow(documents: [[1, 2, 3], [4, 5]])])
        XCTAssertEqual(b.inputIds.shape, [1, 7])
        XCTAssertEqual(b.inputIds.dtype, .int64)
        XCTAssertEqual(b.labels.dtype, .int64)
        XCTAssertEqual(b.seqIdx.dtype, .int32)
        XCTAssertEqual(b.positions.dtype, .int64)
        XCTAssertEqual(rows(b.inputIds), [[1, 2, 3, 4, 5, 9, 9]])
        XCTAssertEqual(rows(b.labels), [[2, 3, -100, 5, -100, -100, -100]])
        XCTAssertEqual(rows(b.seqIdx), [[0, 0, 0, 1, 1, 2, 2]])
        XCTAssertEqual(rows(b.positions), [[0, 1, 2, 0, 1, 0, 1]])
        XCTAssertEqual([b.rowCount, b.tokenCount, b.targetCount], [1, 5, 3])
    }

    func testFullRowHasNoPaddingIndexAndFillerRowsArePadding() throws {
        let packer = try Packer(sequenceLength: 4, batchSize: 3, vocabularySize: 10, ignoreIndex: -1)
        let b = try packer.batch(rows: [PackedRow(documents: [[1, 2, 3, 4]])])
        XCTAssertEqual(rows(b.labels), [[2, 3, 4, -1], [-1, -1, -1, -1], [-1, -1, -1, -1]])
        XCTAssertEqual(rows(b.seqIdx), [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
        XCTAssertEqual(rows(b.positions), [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]])
        XCTAssertEqual(rows(b.inputIds)[1], [0, 0, 0, 0])
        XCTAssertEqual([b.rowCount, b.tokenCount, b.targetCount], [1, 4, 3])
    }

    func testLongDocumentsAreSplitIntoSizedPiecesAndEmptyOnesSkipped() throws {
        let packer = try Packer(sequenceLength: 4, batchSize: 2, vocabularySize: 100)
        XCTAssertEqual(try packer.pieces(of: [Array(1...10), [], [7]]), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10], [7]])
        XCTAssertEqual(try packer.rows(from: [Array(1...10), [], [7]]).map(\.documents),
                       [[[1, 2, 3, 4]], [[5, 6, 7, 8]], [[9, 10], [7]]])
        XCTAssertEqual(try packer.batches(from: [[], []]).count, 0)
    }

    func testBestFitPutsEachDocumentInTheTightestRow() throws {
        let packer = try Packer(sequenceLength: 10, batchSize: 4, vocabularySize: 100)
        let docs: [[Int32]] = [Array(repeating: 1, count: 6), Array(repeating: 2, count: 7),
                               Array(repeating: 3, count: 3), Array(repeating: 4, count: 4), Array(repeating: 5, count: 2)]
        // 6 → row 0 (room 4); 7 → row 1 (room 3); 3 → row 1 (tightest: room 3); 4 → row 0; 2 → new row 2.
        XCTAssertEqual(try packer.rows(from: docs).map { $0.documents.map { Int($0[0]) } }, [[1, 4], [2, 3], [5]])
    }

    func testPackingKeepsEveryTokenExactlyOnceAndIsDeterministic() throws {
        let corpus = try SyntheticCorpus()
        let docs = try corpus.documents(count: 300, seed: 3)
        for s in [16, 37, 64, 128] {
            let packer = try Packer(sequenceLength: s, batchSize: 5, vocabularySize: 64)
            let packed = try packer.rows(from: docs, seed: 11)
            XCTAssert(packed.allSatisfy { $0.tokenCount <= s && !$0.documents.isEmpty })
            XCTAssertEqual(packed.flatMap(\.documents).sorted { $0.lexicographicallyPrecedes($1) },
                           try packer.pieces(of: docs).sorted { $0.lexicographicallyPrecedes($1) })
            XCTAssertEqual(try packer.rows(from: docs, seed: 11), packed)
            XCTAssertNotEqual(try packer.rows(from: docs, seed: 12), packed)
            let batches = try packer.batches(from: docs, seed: 11)
            XCTAssertEqual(batches.count, (packed.count + 4) / 5)
            XCTAssertEqual(batches.reduce(0) { $0 + $1.tokenCount }, docs.reduce(0) { $0 + $1.count })
            XCTAssertEqual(batches.reduce(0) { $0 + $1.rowCount }, packed.count)
            let again = try packer.batches(from: docs, seed: 11)
            for (a, b) in zip(batches, again) {
                XCTAssertEqual(a.inputIds.int64s, b.inputIds.int64s)
                XCTAssertEqual(a.labels.int64s, b.labels.int64s)
            }
            let pieces = try packer.pieces(of: docs).count
            XCTAssertEqual(batches.reduce(0) { $0 + $1.targetCount }, docs.reduce(0) { $0 + $1.count } - pieces)
        }
    }

    func testBestFitFillsRowsWell() throws {
        let docs = try SyntheticCorpus().documents(count: 2000, seed: 8)
        let packer = try Packer(sequenceLength: 64, batchSize: 8, vocabularySize: 64)
        let packed = try packer.rows(from: docs, seed: 1)
        let fill = Double(docs.reduce(0) { $0 + $1.count }) / Double(packed.count * 64)
        print("best-fit fill at S = 64, lengths 16...48: \(fill)")
        XCTAssertGreaterThan(fill, 0.9)
    }

    func testDropLastAndUnshuffledOrder() throws {
        let packer = try Packer(sequenceLength: 3, batchSize: 2, vocabularySize: 10)
        let docs: [[Int32]] = [[1, 1, 1], [2, 2, 2], [3, 3, 3]]
        XCTAssertEqual(try packer.batches(from: docs).count, 2)
        let kept = try packer.batches(from: docs, dropLast: true)
        XCTAssertEqual(kept.count, 1)
        XCTAssertEqual(rows(kept[0].inputIds), [[1, 1, 1], [2, 2, 2]])
    }

    /// SPEC §3 step 5 on a packed batch: depth k's labels (labels rolled left k + 1
    /// times, masked where seqIdx changes) are exactly token p + k + 2 of the same
    /// piece, and there are as many as the corpus's depth-k targets on the pieces.
    func testPackedLabelsGiveEachDepthTheTokensTheFloorsCount() throws {
        let corpus = try SyntheticCorpus()
        let docs = try corpus.documents(count: 40, seed: 21)
        let packer = try Packer(sequenceLength: 40, batchSize: 4, vocabularySize: 64)
        let pieces = try packer.pieces(of: docs)
        let depthCount = 3
        var entropySums = [Double](repeating: 0, count: depthCount + 1), counts = [Int](repeating: 0, count: depthCount + 1)
        for batch in try packer.batches(from: docs, seed: 5) {
            let ids = batch.inputIds.int64s, pos = batch.positions.int64s, seq = batch.seqIdx.int64s
            var current = batch.labels
            for level in 0...depthCount {
                var labels = current.int64s
                if level > 0 {
                    current = try rollTensor(current, shifts: -1, dim: -1)
                    labels = current.int64s
                    let rolledSeq = try rollTensor(batch.seqIdx, shifts: -level, dim: -1).int64s
                    for t in labels.indices {
                        if t % 40 >= 40 - level || rolledSeq[t] != seq[t] { labels[t] = -100 }
                    }
                }
                for t in labels.indices where labels[t] != -100 {
                    // The target at t is the token `level + 1` places later, in the same piece.
                    XCTAssertEqual(labels[t], ids[t + level + 1])
                    XCTAssertEqual(seq[t + level + 1], seq[t])
                    XCTAssertEqual(pos[t + level + 1], pos[t] + Int64(level) + 1)
                    entropySums[level] += try corpus.conditionalEntropy(after: Int32(ids[t + level]))
                    counts[level] += 1
                }
            }
        }
        let f = try corpus.floors(on: pieces, depths: depthCount)
        for (level, want) in ([f.main] + f.depths).enumerated() {
            XCTAssertEqual(entropySums[level] / Double(counts[level]), want, accuracy: 1e-12, "level \(level)")
        }
    }

    func testInputsAreNotModified() throws {
        let docs: [[Int32]] = [[1, 2, 3, 4, 5], [6]]
        let copy = docs
        let packer = try Packer(sequenceLength: 2, batchSize: 2, vocabularySize: 10)
        _ = try packer.batches(from: docs, seed: 3)
        XCTAssertEqual(docs, copy)
    }

    func testErrorsNameTheValue() throws {
        assertThrows(try Packer(sequenceLength: 0, batchSize: 1, vocabularySize: 4), "sequence length 0")
        assertThrows(try Packer(sequenceLength: 4, batchSize: -2, vocabularySize: 4), "batch size -2")
        assertThrows(try Packer(sequenceLength: 4, batchSize: 1, vocabularySize: 0), "vocabulary size 0")
        assertThrows(try Packer(sequenceLength: 4, batchSize: 1, vocabularySize: 4, padId: 4), "pad id 4")
        assertThrows(try Packer(sequenceLength: 4, batchSize: 1, vocabularySize: 4, ignoreIndex: 2), "ignore index 2")
        let packer = try Packer(sequenceLength: 4, batchSize: 1, vocabularySize: 8)
        assertThrows(try packer.batches(from: [[1, 2], [3, 8]]), "document 1 position 1 holds token 8")
        assertThrows(try packer.rows(from: [[-1]]), "token -1")
        assertThrows(try packer.batch(rows: [PackedRow(documents: [[1]]), PackedRow(documents: [[2]])]), "2 rows")
        assertThrows(try packer.batch(rows: [PackedRow(documents: [[1, 2, 3], [4, 5]])]), "5 tokens")
    }
}
