// A Batch is validated once, at its initialiser, and a slice of rows is a Batch with
// the counts of those rows.

import Data
import Tensors
import XCTest

final class BatchTests: XCTestCase {
    private func ints(_ values: [Int64], _ shape: [Int]) -> Tensor { try! Tensor(values, shape: shape) }

    func testTheInitialiserRejectsWhatIsNotFourIntegerTensorsOfOneShape() {
        let ok = ints([1, 2, 3, 4, 5, 6], [2, 3])
        let cases: [(String, () throws -> Batch)] = [
            ("labels", { try Batch(inputIds: ok, labels: self.ints([1, 2, 3], [3]), seqIdx: ok, positions: ok) }),
            ("positions", { try Batch(inputIds: ok, labels: ok, seqIdx: ok, positions: Tensor.zeros([2, 3])) }),
            ("input ids", { try Batch(inputIds: self.ints([1, 2, 3], [3]), labels: ok, seqIdx: ok, positions: ok) }),
            ("row token counts", { try Batch(inputIds: ok, labels: ok, seqIdx: ok, positions: ok, rowTokenCounts: [3]) }),
            ("row token counts", { try Batch(inputIds: ok, labels: ok, seqIdx: ok, positions: ok, rowTokenCounts: [3, 4]) }),
        ]
        for (fragment, make) in cases {
            XCTAssertThrowsError(try make(), fragment) { error in
                guard case DataError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains(fragment), message)
            }
        }
    }

    func testCountsOfABatchAndOfASliceOfRows() throws {
        let packer = try Packer(sequenceLength: 4, batchSize: 3, vocabularySize: 10)
        let batch = try packer.batch(rows: [PackedRow(documents: [[1, 2, 3]]), PackedRow(documents: [[4, 5], [6, 7]])])
        XCTAssertEqual(batch.rowTokenCounts, [3, 4, 0])
        XCTAssertEqual([batch.rows, batch.rowCount, batch.tokenCount, batch.targetCount], [3, 2, 7, 4])
        let tail = try batch.sliced(rows: 1..<3)
        XCTAssertEqual(tail.inputIds.int64s, [4, 5, 6, 7, 0, 0, 0, 0])
        XCTAssertEqual([tail.rows, tail.rowCount, tail.tokenCount, tail.targetCount], [2, 1, 4, 2])
        XCTAssertEqual(tail.ignoreIndex, -100)
        XCTAssertThrowsError(try batch.sliced(rows: 2..<4))
        // Without row token counts every position is a token.
        let plain = try Batch(inputIds: batch.inputIds, labels: batch.labels, seqIdx: batch.seqIdx, positions: batch.positions)
        XCTAssertEqual([plain.rowCount, plain.tokenCount, plain.targetCount], [3, 12, 4])
    }
}
