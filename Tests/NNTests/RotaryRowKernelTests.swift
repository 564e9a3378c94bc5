// The rotation kernel of decoding (CRowKernels' `mtp_rotate_rows`) turns rows as the
// training forward does, bit for bit, on every instruction set this CPU runs: head
// dimensions around the vector widths (half of d from 1 to 20), several heads and rows.

import CRowKernels
import NN
import Tensors
import TestSupport
import XCTest

final class RotaryRowKernelTests: XCTestCase {
    func testEveryVariantTurnsRowsAsTheTrainingForward() throws {
        for d in [2, 4, 8, 10, 16, 24, 34, 40] {
            let (heads, rows, first) = (3, 5, 7)
            let rope = try RotaryEmbedding(headDimension: d, base: 10_000)
            let x = randomTensor([1, rows, heads, d], -3, 3, seed: UInt64(d))
            let positions = try Tensor((first..<(first + rows)).map { Int64($0) }, shape: [1, rows])
            let trained = try rope(x.transposed(1, 2), positions: positions).transposed(1, 2).floats
            // The table's angles, as decoding reads them (rows of d/2 from position `first`).
            let table = RotaryEmbedding.PositionTable(rope)
            let cosSin = try angles(table, rope, first: first, rows: rows, d: d)
            for variant in Linear.KernelVariant.supported {
                var rotated = x.floats
                mtp_rotate_rows_variant(variant.rawValue, &rotated, rows, heads, d, cosSin.cos, cosSin.sin)
                XCTAssertEqual(rotated.map(\.bitPattern), trained.map(\.bitPattern), "\(variant), d = \(d)")
            }
        }
    }

    /// cos and sin of positions `first ..< first + rows` recovered from the table by rotating unit rows.
    private func angles(_ table: RotaryEmbedding.PositionTable, _ rope: RotaryEmbedding, first: Int, rows: Int,
                        d: Int) throws -> (cos: [Float], sin: [Float]) {
        let half = d / 2
        var cos = [Float](), sin = [Float]()
        for r in 0..<rows {
            var unit = [Float](repeating: 0, count: d)
            for i in 0..<half { unit[i] = 1 }
            unit.withUnsafeMutableBufferPointer { table.rotate($0.baseAddress!, rows: 1, heads: 1, firstPosition: first + r) }
            cos += unit[0..<half]
            sin += unit[half..<d]
        }
        return (cos, sin)
    }
}
