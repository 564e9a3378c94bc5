// The RMSNorm kernel of decoding (CRowKernels' `mtp_rmsnorm_rows`) normalises as the
// training forward does, bit for bit, on every instruction set this CPU runs: widths around
// the 8-lane blocks of the sum (1 … 17, 96, 100), several rows, rows written into half of a
// wider row (the MTP depths' concatenation), and an all-zero row. The training backward
// (`mtp_rmsnorm_backward`) gives the same bits on every instruction set too, and those of
// the Swift loop it replaced (written out below with Tensors' `VectorMath.dot`).

import CRowKernels
import NN
@_spi(Kernels) import Tensors
import TestSupport
import XCTest

final class RMSNormRowKernelTests: XCTestCase {
    func testEveryVariantNormalisesAsTheTrainingForward() throws {
        for d in Array(1...17) + [96, 100] {
            let rows = 4
            let norm = RMSNorm(dimension: d, epsilon: 1e-6)
            norm.weight.value = randomTensor([d], 0.5, 1.5, seed: UInt64(d))
            var x = randomTensor([rows, d], -4, 4, seed: UInt64(100 + d)).floats
            for j in 0..<d { x[2 * d + j] = 0 }
            let trained = try norm(Tensor(x, shape: [rows, d])).floats
            let weight = norm.weight.value.floats
            for variant in Linear.KernelVariant.supported {
                var y = [Float](repeating: 7, count: rows * 2 * d)
                mtp_rmsnorm_rows_variant(variant.rawValue, x, rows, d, weight, 1e-6, &y, 2 * d)
                for r in 0..<rows {
                    XCTAssertEqual(y[(2 * r * d)..<((2 * r + 1) * d)].map(\.bitPattern),
                                   trained[(r * d)..<((r + 1) * d)].map(\.bitPattern), "\(variant), d = \(d), row \(r)")
                    XCTAssertTrue(y[((2 * r + 1) * d)..<((2 * r + 2) * d)].allSatisfy { $0 == 7 }, "\(variant) wrote past row \(r)")
                }
            }
        }
    }

    /// The Swift backward this kernel replaced, row by row: a = g·w, c = r·r·(a·x)/d,
    /// dx = r·(a − x·c), dw += g·x·r.
    private func referenceBackward(x: [Float], g: [Float], w: [Float], rstd: [Float], rows: Int, d: Int) -> (dx: [Float], dw: [Float]) {
        var dx = [Float](repeating: 0, count: rows * d), dw = [Float](repeating: 0, count: d)
        for row in 0..<rows {
            let r = rstd[row]
            for j in 0..<d { dx[row * d + j] = g[row * d + j] * w[j] }
            let t = dx.withUnsafeBufferPointer { a in
                x.withUnsafeBufferPointer { VectorMath.dot(a.baseAddress! + row * d, $0.baseAddress! + row * d, count: d) }
            }
            let c = r * r * t / Float(d)
            for j in 0..<d {
                dw[j] += g[row * d + j] * x[row * d + j] * r
                dx[row * d + j] = r * (dx[row * d + j] - x[row * d + j] * c)
            }
        }
        return (dx, dw)
    }

    func testTrainingKernelsAgreeBitForBitWithTheSwiftLoopsOnEveryVariant() {
        for d in Array(1...17) + [31, 96, 100] {
            let rows = 5
            let x = randomTensor([rows, d], -4, 4, seed: UInt64(300 + d)).floats
            let g = randomTensor([rows, d], -1, 1, seed: UInt64(400 + d)).floats
            let w = randomTensor([d], 0.5, 1.5, seed: UInt64(500 + d)).floats
            let rstd = (0..<rows).map { row in
                x.withUnsafeBufferPointer { p in
                    1 / (VectorMath.dot(p.baseAddress! + row * d, p.baseAddress! + row * d, count: d) / Float(d) + 1e-6).squareRoot()
                }
            }
            let expected = referenceBackward(x: x, g: g, w: w, rstd: rstd, rows: rows, d: d)
            for variant in Linear.KernelVariant.supported {
                var y = [Float](repeating: 0, count: rows * d), r = [Float](repeating: 0, count: rows)
                mtp_rmsnorm_forward_variant(variant.rawValue, x, rows, d, w, 1e-6, &y, &r)
                XCTAssertEqual(r.map(\.bitPattern), rstd.map(\.bitPattern), "\(variant), d = \(d)")
                var dx = [Float](repeating: 7, count: rows * d), dw = [Float](repeating: 0, count: d)
                mtp_rmsnorm_backward_variant(variant.rawValue, x, g, w, r, rows, d, &dx, &dw)
                XCTAssertEqual(dx.map(\.bitPattern), expected.dx.map(\.bitPattern), "\(variant), d = \(d)")
                XCTAssertEqual(dw.map(\.bitPattern), expected.dw.map(\.bitPattern), "\(variant), d = \(d)")
            }
        }
    }
}
