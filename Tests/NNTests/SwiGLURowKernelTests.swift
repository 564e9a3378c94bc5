// The SwiGLU row kernel of decoding (CRowKernels' `mtp_swiglu`): every instruction set this
// CPU runs gives the same bits, for every length around the vector widths, and they agree
// with the training forward `swiGLU(gate:up:)` within rounding (its exp has no fused
// multiply-adds): relatively within 1e-6, and exactly where the result is 0, ±inf or NaN,
// over gates from −120 to 120 (where e^(−a) overflows and vanishes) and ±0, ±inf, NaN.

import CRowKernels
import NN
import Tensors
import TestSupport
import XCTest

final class SwiGLURowKernelTests: XCTestCase {
    func testVariantsAgreeBitForBitAndWithTheTrainingForward() throws {
        var g = SplitMix64(seed: 5)
        var gate = (0..<997).map { _ in g.nextUniform() * 240 - 120 } + (0..<500).map { _ in g.nextUniform() * 8 - 4 }
        gate += [0, -0, .infinity, -.infinity, .nan, 88.7, 88.8, -87.5, -88.8, -103.9, -104.1, 1e-30, -1e-30]
        let up = gate.indices.map { _ in g.nextUniform() * 4 - 2 }
        let trained = try swiGLU(gate: Tensor(gate), up: Tensor(up)).floats
        var first: [Float]? = nil
        for variant in Linear.KernelVariant.supported {
            for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, gate.count] {
                var out = [Float](repeating: 7, count: gate.count)
                mtp_swiglu_variant(variant.rawValue, gate, up, &out, n)
                XCTAssertTrue(out[n...].allSatisfy { $0 == 7 }, "\(variant) wrote past \(n) elements")
                if n < gate.count { continue }
                if let first {
                    XCTAssertEqual(out.map(\.bitPattern), first.map(\.bitPattern), "\(variant) against \(Linear.KernelVariant.supported[0])")
                } else {
                    first = out
                }
                for (i, (y, t)) in zip(out, trained).enumerated() {
                    if t.isNaN || !t.isFinite || t == 0 || abs(t) < 1e-30 {
                        XCTAssertTrue(y.isNaN ? t.isNaN : (y == t || abs(y - t) < 1e-30), "\(variant), gate \(gate[i]): \(y) against \(t)")
                    } else {
                        XCTAssertLessThan(abs(y - t), 1e-6 * abs(t), "\(variant), gate \(gate[i]): \(y) against \(t)")
                    }
                }
            }
        }
    }
}
