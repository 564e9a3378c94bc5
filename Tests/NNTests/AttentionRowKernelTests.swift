// The attention row kernel of decoding (CRowKernels' `mtp_attend_row`): every instruction
// set this CPU runs gives the same bits (keys and columns are vector lanes, the lane sums
// have one fixed order), the result is softmax(c·q·Kᵀ)·V up to rounding (a float64
// reference computed here), and nothing past the visible positions reaches the output (those slots
// hold NaN). Shapes: the default model's heads (4 × 24), grouped-query heads, odd head
// dimensions and visible lengths around every vector boundary.

import CRowKernels
import NN
import Tensors
import TestSupport
import XCTest

final class AttentionRowKernelTests: XCTestCase {
    /// (query heads, key/value heads, head dimension)
    static let heads = [(4, 4, 24), (4, 2, 24), (2, 2, 8), (3, 1, 5), (1, 1, 1), (8, 8, 12), (2, 2, 40), (6, 3, 17)]
    static let visible = [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 48, 64, 70]

    private func random(_ count: Int, _ g: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (g.nextUniform() * 2 - 1) * scale }
    }

    func testVariantsAgreeBitForBitAndMatchAFloat64Reference() {
        let variants = Linear.KernelVariant.supported
        var g = SplitMix64(seed: 11)
        for (n, kv, d) in Self.heads {
            for visible in Self.visible {
                let capacity = (visible + 7) / 8 * 8 + 8, width = kv * d, group = n / kv
                let q = random(n * d, &g, scale: 2)
                var keys = [Float](repeating: .nan, count: kv * d * capacity)
                var values = [Float](repeating: .nan, count: capacity * width)
                for j in 0..<visible {
                    for h in 0..<kv {
                        for c in 0..<d {
                            keys[(h * d + c) * capacity + j] = g.nextUniform() * 4 - 2
                            values[j * width + h * d + c] = g.nextUniform() * 2 - 1
                        }
                    }
                }
                let scale = 1 / Float(d).squareRoot()
                var outputs: [[Float]] = []
                for variant in variants {
                    var scores = [Float](repeating: .nan, count: mtp_attend_scores_capacity(n, visible))
                    var out = [Float](repeating: .nan, count: n * d)
                    mtp_attend_row_variant(variant.rawValue, q, n, kv, d, keys, capacity, values, visible, scale, &scores, &out)
                    outputs.append(out)
                }
                for (variant, out) in zip(variants, outputs) {
                    XCTAssertEqual(out.map(\.bitPattern), outputs[0].map(\.bitPattern),
                                   "\(variant) against \(variants[0]): \(n)/\(kv) heads of \(d), \(visible) visible")
                }
                // softmax(c · q·Kᵀ) · V in float64.
                var reference = [Double](repeating: 0, count: n * d)
                for h in 0..<n {
                    let k = h / group
                    let s = (0..<visible).map { j in
                        (0..<d).reduce(0.0) { $0 + Double(q[h * d + $1]) * Double(keys[(k * d + $1) * capacity + j]) } * Double(scale)
                    }
                    let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, total = e.reduce(0, +)
                    for c in 0..<d {
                        reference[h * d + c] = (0..<visible).reduce(0.0) { $0 + e[$1] * Double(values[$1 * width + k * d + c]) } / total
                    }
                }
                XCTAssertNil(closeness(outputs[0], reference, rtol: 1e-5, atol: 1e-6), "\(n)/\(kv) heads of \(d), \(visible) visible")
            }
        }
    }
}
