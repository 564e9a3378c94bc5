// Microbatches are consecutive rows of the batch; target counts add up over them;
// the balanced partition gives the documented splits.

import Data
import Model
import MTP
import Pipeline
import Tensors
import Training
import XCTest

final class MicrobatchTests: XCTestCase {
    func testMicrobatchesAreConsecutiveRows() throws {
        let batch = try packedBatch(rows: 4)
        let mbs = try batch.microbatches(2)
        XCTAssertEqual(mbs.map(\.rows), [2, 2])
        XCTAssertEqual(mbs[0].inputIds.int64s + mbs[1].inputIds.int64s, batch.inputIds.int64s)
        XCTAssertEqual(mbs[0].labels.int64s + mbs[1].labels.int64s, batch.labels.int64s)
        XCTAssertEqual(mbs[0].seqIdx.int64s + mbs[1].seqIdx.int64s, batch.seqIdx.int64s)
        XCTAssertEqual(mbs[0].positions.int64s + mbs[1].positions.int64s, batch.positions.int64s)
        // Each microbatch counts its own rows, tokens and targets; together they are the batch's.
        XCTAssertEqual(mbs.map(\.rowTokenCounts), [Array(batch.rowTokenCounts[0..<2]), Array(batch.rowTokenCounts[2..<4])])
        XCTAssertEqual(mbs.map(\.tokenCount).reduce(0, +), batch.tokenCount)
        XCTAssertEqual(mbs.map(\.rowCount).reduce(0, +), batch.rowCount)
        XCTAssertEqual(mbs.map(\.targetCount).reduce(0, +), batch.targetCount)
        XCTAssertEqual(mbs[1].targetCount, mbs[1].labels.int64s.filter { $0 != batch.ignoreIndex }.count)
        XCTAssertThrowsError(try batch.microbatches(3))
        XCTAssertThrowsError(try batch.microbatches(0))
    }

    func testTargetCountsAddUpOverMicrobatches() throws {
        let batch = try packedBatch(rows: 4)
        let whole = try TargetCounts(labels: batch.labels, seqIdx: batch.seqIdx, depths: 2)
        XCTAssertEqual(whole.main, batch.targetCount)
        let parts = try batch.microbatches(4).map { try TargetCounts(labels: $0.labels, seqIdx: $0.seqIdx, depths: 2) }
        XCTAssertEqual(parts.reduce(TargetCounts(main: 0, depths: [0, 0]), +), whole)
        // Depth k loses each document's last k+1 targets, so the counts fall with depth,
        // and not in proportion across microbatches (why one factor per microbatch cannot work).
        XCTAssertGreaterThan(whole.main, whole.depths[0])
        XCTAssertGreaterThan(whole.depths[0], whole.depths[1])
        let ratios = parts.map { Double($0.depths[1]) / Double($0.main) }
        XCTAssertGreaterThan(ratios.max()! - ratios.min()!, 0.01, "\(parts)")
    }

    func testBalancedPartitionCountsMTPDepthsOnTheLastStage() throws {
        XCTAssertEqual(try PipelinePartition.balanced(layers: 2, stages: 2, mtpDepths: 2).layerCounts, [2, 0])
        XCTAssertEqual(try PipelinePartition.balanced(layers: 4, stages: 2, mtpDepths: 2).layerCounts, [3, 1])
        XCTAssertEqual(try PipelinePartition.balanced(layers: 3, stages: 3, mtpDepths: 1).layerCounts, [1, 1, 1])
        XCTAssertEqual(try PipelinePartition.balanced(layers: 4, stages: 2, mtpDepths: 0).layerCounts, [2, 2])
        XCTAssertEqual(try PipelinePartition.balanced(layers: 5, stages: 1, mtpDepths: 3).layerCounts, [5])
        let p = try PipelinePartition(layerCounts: [2, 0, 3], layers: 5)
        XCTAssertEqual((0..<3).map(p.layers(ofStage:)), [0..<2, 2..<2, 2..<5])
        XCTAssertEqual(p.description, "2+0+3")
    }
}
