// The RMSNorm kernel of decoding (CRowKernels' `mtp_rmsnorm_rows`) normalises as the
// training forward does, bit for bit, on every instruction set this CPU runs: widths around
// the 8-lane blocks of the sum (1 … 17, 96, 100), several rows, rows written into half of a
// wider row (the MTP depths' concatenation), and an all-zero row.

import CRowKernels
import NN
import Tensors
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
}
