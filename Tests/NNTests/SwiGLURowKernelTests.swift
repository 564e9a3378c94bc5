// SwiGLU in CRowKernels: the training forward `mtp_swiglu_forward` (behind `swiGLU(gate:up:)`
// and the MLP's packed gate) gives exactly the bits of decoding's `mtp_swiglu`; every
// instruction set this CPU runs gives the same bits, forward (σ included) and backward, for
// every length around the vector widths (tails of 1–15) and for strided rows; and the results
// agree with a Double reference within a few float roundings, over gates from −120 to 120
// (where e^(−a) overflows and vanishes) and ±0, ±inf, NaN.

import CRowKernels
import Foundation
import NN
import Tensors
import TestSupport
import XCTest

final class SwiGLURowKernelTests: XCTestCase {
    /// Gates over the whole range, the edges of the exp's clamp and the special values; up and
    /// the upstream gradient in [−2, 2).
    private func inputs() -> (gate: [Float], up: [Float], grad: [Float]) {
        var g = SplitMix64(seed: 5)
        var gate = (0..<997).map { _ in g.nextUniform() * 240 - 120 } + (0..<500).map { _ in g.nextUniform() * 8 - 4 }
        gate += [0, -0, .infinity, -.infinity, .nan, 88.7, 88.8, -87.5, -88.8, -103.9, -104.1, 1e-30, -1e-30]
        let up = gate.indices.map { _ in g.nextUniform() * 4 - 2 }
        let grad = gate.indices.map { _ in g.nextUniform() * 4 - 2 }
        return (gate, up, grad)
    }

    func testTrainingForwardIsTheDecodingKernelBitForBit() throws {
        let (gate, up, _) = inputs()
        let trained = try swiGLU(gate: Tensor(gate), up: Tensor(up)).floats
        var decoded = [Float](repeating: 0, count: gate.count)
        mtp_swiglu(gate, up, &decoded, gate.count)
        XCTAssertEqual(trained.map(\.bitPattern), decoded.map(\.bitPattern))
        for variant in Linear.KernelVariant.supported {
            var out = [Float](repeating: 0, count: gate.count), sigma = out, single = out
            mtp_swiglu_forward_variant(variant.rawValue, gate, up, 1, gate.count, gate.count, &out, &sigma)
            mtp_swiglu_variant(variant.rawValue, gate, up, &single, gate.count)
            XCTAssertEqual(out.map(\.bitPattern), single.map(\.bitPattern), "\(variant)")
        }
    }

    func testVariantsAgreeBitForBitForwardAndBackward() {
        let (gate, up, grad) = inputs()
        var first: [[Float]]? = nil
        for variant in Linear.KernelVariant.supported {
            for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, gate.count] {
                var out = [Float](repeating: 7, count: gate.count), sigma = out, decoded = out, da = out, du = out
                mtp_swiglu_variant(variant.rawValue, gate, up, &decoded, n)
                mtp_swiglu_forward_variant(variant.rawValue, gate, up, 1, n, n, &out, &sigma)
                mtp_swiglu_backward_variant(variant.rawValue, grad, gate, up, sigma, 1, n, n, &da, &du)
                for (name, a) in [("decoded", decoded), ("out", out), ("sigma", sigma), ("da", da), ("du", du)] {
                    XCTAssertTrue(a[n...].allSatisfy { $0 == 7 }, "\(variant) wrote \(name) past \(n) elements")
                }
                if n < gate.count { continue }
                let all = [decoded, out, sigma, da, du]
                if let first {
                    for (a, b) in zip(all, first) {
                        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(variant) against \(Linear.KernelVariant.supported[0])")
                    }
                } else {
                    first = all
                }
            }
        }
    }

    func testStridedRowsMatchOneRowAtATime() {
        // 5 rows of 21 (a tail on every width) packed as [gate | up | 3 spare] rows of 45.
        let rows = 5, n = 21, stride = 45
        var g = SplitMix64(seed: 11)
        let packed = (0..<(rows * stride)).map { _ in g.nextUniform() * 12 - 6 }
        let grad = (0..<(rows * n)).map { _ in g.nextUniform() * 2 - 1 }
        for variant in Linear.KernelVariant.supported {
            var out = [Float](repeating: 0, count: rows * n), sigma = out
            var dPacked = [Float](repeating: 7, count: rows * stride)
            packed.withUnsafeBufferPointer { p in
                mtp_swiglu_forward_variant(variant.rawValue, p.baseAddress!, p.baseAddress! + n, rows, n, stride, &out, &sigma)
                dPacked.withUnsafeMutableBufferPointer { d in
                    mtp_swiglu_backward_variant(variant.rawValue, grad, p.baseAddress!, p.baseAddress! + n, sigma, rows, n, stride,
                                                d.baseAddress!, d.baseAddress! + n)
                }
            }
            for r in 0..<rows {
                let a = Array(packed[(r * stride)..<(r * stride + n)]), u = Array(packed[(r * stride + n)..<(r * stride + 2 * n)])
                var o = [Float](repeating: 0, count: n), s = o, da = o, du = o
                mtp_swiglu_forward_variant(variant.rawValue, a, u, 1, n, n, &o, &s)
                mtp_swiglu_backward_variant(variant.rawValue, Array(grad[(r * n)..<(r * n + n)]), a, u, s, 1, n, n, &da, &du)
                XCTAssertEqual(Array(out[(r * n)..<(r * n + n)]).map(\.bitPattern), o.map(\.bitPattern), "\(variant) row \(r)")
                XCTAssertEqual(Array(dPacked[(r * stride)..<(r * stride + n)]).map(\.bitPattern), da.map(\.bitPattern))
                XCTAssertEqual(Array(dPacked[(r * stride + n)..<(r * stride + 2 * n)]).map(\.bitPattern), du.map(\.bitPattern))
                XCTAssertTrue(dPacked[(r * stride + 2 * n)..<(r * stride + stride)].allSatisfy { $0 == 7 }, "spare columns written")
            }
        }
    }

    func testAgreesWithADoubleReference() throws {
        let (gate, up, grad) = inputs()
        for variant in Linear.KernelVariant.supported {
            var out = [Float](repeating: 0, count: gate.count), sigma = out, da = out, du = out
            mtp_swiglu_forward_variant(variant.rawValue, gate, up, 1, gate.count, gate.count, &out, &sigma)
            mtp_swiglu_backward_variant(variant.rawValue, grad, gate, up, sigma, 1, gate.count, gate.count, &da, &du)
            for i in gate.indices {
                let a = Double(gate[i]), u = Double(up[i]), g = Double(grad[i])
                let s = 1 / (1 + Foundation.exp(-a))
                let expected = [a * s * u, s, g * a * s, g * u * s * (1 + a * (1 - s))]
                // The size of the terms each result sums (∂a's 1 + a·(1 − σ) cancels near a = −1.28).
                let scales = [abs(expected[0]), s, abs(expected[2]), abs(g * u * s) * (1 + abs(a))]
                for (name, (y, (t, scale))) in zip(["out", "sigma", "du", "da"], zip([out[i], sigma[i], du[i], da[i]], zip(expected, scales))) {
                    let context = "\(variant) \(name), gate \(gate[i]): \(y) against \(t)"
                    if a.isNaN {
                        // vector_exp.h takes a NaN for −87 (σ ≈ 1); the NaN carries on through a.
                        if name != "sigma" { XCTAssertTrue(y.isNaN, context) }
                    } else if t.isNaN {
                        XCTAssertTrue(y.isNaN, context)
                    } else if !t.isFinite {
                        XCTAssertEqual(Double(y), t, context)
                    } else if abs(t) < 1e-30 {
                        // σ of a gate below −87 and what it scales: the exp's clamp, far below any float gradient.
                        XCTAssertLessThan(abs(Double(y)), 1e-30 + 1e-36 * max(1, abs(a)), context)
                    } else {
                        XCTAssertLessThan(abs(Double(y) - t), 2e-6 * scale + 1e-37, context)
                    }
                }
            }
        }
    }
}
