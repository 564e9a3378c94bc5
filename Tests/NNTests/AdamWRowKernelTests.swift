// The AdamW update of training (CRowKernels' `mtp_adamw_update`, behind Training's `AdamW`)
// gives, on every instruction set this CPU runs, the bits of the Swift loop it replaced
// (written out below), with and without a gradient, for lengths around the vector widths.

import CRowKernels
import NN
import Tensors
import TestSupport
import XCTest

final class AdamWRowKernelTests: XCTestCase {
    private struct Constants {
        let b1: Float = 0.9, b2: Float = 0.95, c1: Float = 0.271, c2: Float = 0.1426, lr: Float = 3e-3, eps: Float = 1e-8
        let decay: Float = 0.1, scale: Float = 0.73
    }

    /// The Swift update this kernel replaced.
    private func reference(theta: [Float], grad: [Float]?, m: inout [Float], v: inout [Float], _ k: Constants) -> [Float] {
        var out = theta
        for j in theta.indices {
            let g = grad.map { $0[j] * k.scale } ?? 0 * k.scale
            m[j] = k.b1 * m[j] + (1 - k.b1) * g
            v[j] = k.b2 * v[j] + (1 - k.b2) * g * g
            let mh = m[j] / k.c1, vh = v[j] / k.c2
            out[j] = theta[j] - k.lr * (mh / (vh.squareRoot() + k.eps) + k.decay * theta[j])
        }
        return out
    }

    func testEveryVariantIsTheSwiftLoopBitForBit() {
        let k = Constants()
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, 1000] {
            var g = SplitMix64(seed: UInt64(n))
            let theta = (0..<n).map { _ in g.nextUniform() * 2 - 1 }
            let grad = (0..<n).map { _ in (g.nextUniform() * 2 - 1) * 1e-2 }
            let m0 = (0..<n).map { _ in (g.nextUniform() * 2 - 1) * 1e-2 }
            let v0 = (0..<n).map { _ in g.nextUniform() * 1e-4 }
            for withGradient in [true, false] {
                var m = m0, v = v0
                let expected = reference(theta: theta, grad: withGradient ? grad : nil, m: &m, v: &v, k)
                for variant in Linear.KernelVariant.supported {
                    var mk = m0, vk = v0, out = [Float](repeating: 7, count: n)
                    grad.withUnsafeBufferPointer { gp in
                        mtp_adamw_update_variant(variant.rawValue, theta, withGradient ? gp.baseAddress : nil, k.scale, &mk, &vk, &out, n,
                                                 k.b1, k.b2, k.c1, k.c2, k.lr, k.eps, k.decay)
                    }
                    let context = "\(variant), n = \(n), gradient: \(withGradient)"
                    XCTAssertEqual(out.map(\.bitPattern), expected.map(\.bitPattern), context)
                    XCTAssertEqual(mk.map(\.bitPattern), m.map(\.bitPattern), context)
                    XCTAssertEqual(vk.map(\.bitPattern), v.map(\.bitPattern), context)
                }
            }
        }
    }
}
