// The rotation kernel of decoding (CRowKernels' `mtp_rotate_rows`) turns rows as the
// training forward does, bit for bit, on every instruction set this CPU runs: head
// dimensions around the vector widths (half of d from 1 to 20), several heads and rows. The
// training rotation (`mtp_rotate_heads`, strided heads, forward and inverse, values copied
// alongside) gives on every variant the bits of the Swift loop it replaced (written out below:
// sin times a sign of ±1), so the backward's inverse turn is unchanged too.

import CRowKernels
import Foundation
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

    /// The Swift `rotateHalf` the kernel replaced: sin scaled by `sign`, then the forward's operations.
    private func referenceTurn(_ x: [Float], _ y: inout [Float], at o: Int, cos c: ArraySlice<Float>, sin sn: ArraySlice<Float>,
                               half h: Int, sign: Float) {
        for i in 0..<h {
            let x1 = x[o + i], x2 = x[o + i + h], cs = c[c.startIndex + i], s = sign * sn[sn.startIndex + i]
            y[o + i] = x1 * cs - x2 * s
            y[o + i + h] = x2 * cs + x1 * s
        }
    }

    func testTrainingRotationIsTheSwiftLoopBitForBitOnEveryVariant() {
        for d in [2, 4, 8, 10, 16, 24, 34, 40] {
            // Packed rows: 3 rotated heads, then 5 floats copied, then 2 spare floats never written.
            let (rows, heads, copy, half) = (4, 3, 5, d / 2)
            let rowStride = heads * d + copy + 2
            var g = SplitMix64(seed: UInt64(d))
            let x = (0..<(rows * rowStride)).map { _ in g.nextUniform() * 6 - 3 }
            let angle = (0..<(rows * half)).map { _ in g.nextUniform() * 200 - 100 }
            let cos = angle.map { Foundation.cos($0) }, sin = angle.map { Foundation.sin($0) }
            for inverse in [false, true] {
                var expected = [Float](repeating: 7, count: rows * rowStride)
                for r in 0..<rows {
                    let c = cos[(r * half)..<(r * half + half)], s = sin[(r * half)..<(r * half + half)]
                    for h in 0..<heads {
                        referenceTurn(x, &expected, at: r * rowStride + h * d, cos: c, sin: s, half: half, sign: inverse ? -1 : 1)
                    }
                    for j in 0..<copy { expected[r * rowStride + heads * d + j] = x[r * rowStride + heads * d + j] }
                }
                for variant in Linear.KernelVariant.supported {
                    var y = [Float](repeating: 7, count: rows * rowStride)
                    mtp_rotate_heads_variant(variant.rawValue, x, &y, rows, rowStride, heads, d, d, cos, sin, inverse ? 1 : 0, copy)
                    XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), "\(variant), d = \(d), inverse: \(inverse)")
                    // In place, heads further apart than d (the padding untouched).
                    var z = x
                    z.withUnsafeMutableBufferPointer { p in
                        mtp_rotate_heads_variant(variant.rawValue, p.baseAddress!, p.baseAddress!, rows, rowStride, 2, d + 1, d, cos, sin,
                                                 inverse ? 1 : 0, 0)
                    }
                    for r in 0..<rows {
                        var w = x
                        let c = cos[(r * half)..<(r * half + half)], s = sin[(r * half)..<(r * half + half)]
                        for h in 0..<2 { referenceTurn(x, &w, at: r * rowStride + h * (d + 1), cos: c, sin: s, half: half, sign: inverse ? -1 : 1) }
                        XCTAssertEqual(z[(r * rowStride)..<((r + 1) * rowStride)].map(\.bitPattern),
                                       w[(r * rowStride)..<((r + 1) * rowStride)].map(\.bitPattern), "\(variant) in place, d = \(d)")
                    }
                }
            }
        }
    }
}
