// The SwiGLU row kernel of decoding (CRowKernels' `mtp_swiglu`) is the training forward's
// operations bit for bit: on every instruction set this CPU runs, for every length around
// the vector widths, over gates from −120 to 120 (where e^(−a) overflows, underflows and
// turns subnormal) and for ±0, ±inf and NaN, its output has the bits of `swiGLU(gate:up:)`.

import CRowKernels
import NN
import Tensors
import TestSupport
import XCTest

final class SwiGLURowKernelTests: XCTestCase {
    func testEveryVariantEqualsTheTrainingForwardBitForBit() throws {
        var g = SplitMix64(seed: 5)
        var gate = (0..<997).map { _ in g.nextUniform() * 240 - 120 } + (0..<500).map { _ in g.nextUniform() * 8 - 4 }
        gate += [0, -0, .infinity, -.infinity, .nan, 88.7, 88.8, -87.5, -103.9, -104.1, 1e-30, -1e-30]
        let up = gate.indices.map { _ in g.nextUniform() * 4 - 2 }
        let trained = try swiGLU(gate: Tensor(gate), up: Tensor(up)).floats
        for variant in Linear.KernelVariant.supported {
            for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, gate.count] {
                var out = [Float](repeating: 7, count: gate.count)
                mtp_swiglu_variant(variant.rawValue, gate, up, &out, n)
                XCTAssertEqual(out[..<n].map(\.bitPattern), trained[..<n].map(\.bitPattern), "\(variant), \(n) elements")
                XCTAssertTrue(out[n...].allSatisfy { $0 == 7 }, "\(variant) wrote past \(n) elements")
            }
        }
    }
}
