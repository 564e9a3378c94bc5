// Where their contracts overlap the three losses agree: the fused loss equals
// MaskedCrossEntropy of the materialised logits h·Wᵀ (softcapped with tensor ops),
// and ChunkedCrossEntropy equals MaskedCrossEntropy for any chunk length.

import Losses
import Tensors
import TestSupport
import XCTest

final class CrossEntropyAgreementTests: XCTestCase {
    /// h·Wᵀ, softcapped as `c·tanh(z/c)` when `c > 0`, built from differentiable tensor ops.
    private func materialisedLogits(_ hidden: Tensor, _ weight: Tensor, softcap: Float) throws -> Tensor {
        let z = try Tensor.matmul(hidden, weight, transposeB: true)
        return softcap > 0 ? Double(softcap) * (z / Double(softcap)).tanh() : z
    }

    func testFusedEqualsMaskedOfMaterialisedLogitsInValueAndGradients() throws {
        let h = 6, v = 13
        let labelsArray = makeLabels([3, 5], v: v, ignoreEvery: 4, ignoreOffset: 1)
        let labels = labelTensor(labelsArray, [3, 5])
        let hidden = randomTensor([3, 5, h], -1, 1, seed: 51)
        let weight = randomTensor([v, h], -1, 1, seed: 52)
        for softcap in [Float(0), 30, 2] {
            for reduction in LossReduction.allCases {
                for numLabelTokens in reduction == .sum ? [nil, 0, 7] : [nil] {
                    let upstream = upstreamValues(reduction, n: 15)
                    let fh = hidden.requiringGrad(), fw = weight.requiringGrad()
                    let fused = try FusedLinearCrossEntropy(logitSoftcapping: softcap, reduction: reduction)(
                        hiddenStates: fh, labels: labels, lmWeight: fw, numLabelTokens: numLabelTokens)
                    try backpropagate(fused, upstream: upstream)

                    let mh = hidden.requiringGrad(), mw = weight.requiringGrad()
                    let masked = try MaskedCrossEntropy(reduction: reduction)(
                        logits: materialisedLogits(mh, mw, softcap: softcap), labels: labels, numLabelTokens: numLabelTokens)
                    try backpropagate(masked, upstream: upstream)

                    let what = "softcap \(softcap) \(reduction) numLabelTokens \(String(describing: numLabelTokens))"
                    XCTAssertEqual(fused.shape, masked.shape, what)
                    assertClose(fused, doubles(masked), rtol: 1e-5, atol: 1e-6, "loss " + what)
                    assertClose(fh.grad, doubles(mh.grad!), rtol: 1e-4, atol: 1e-6, "dh " + what)
                    assertClose(fw.grad, doubles(mw.grad!), rtol: 1e-4, atol: 1e-6, "dW " + what)
                }
            }
        }
    }

    func testFusedWithOnlyOneInputRequiringGradient() throws {
        let hidden = randomTensor([4, 3], seed: 53), weight = randomTensor([5, 3], seed: 54)
        let labels = labelTensor([0, -100, 4, 2], [4])
        let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: 4, h: 3, v: 5, labels: [0, -100, 4, 2])
        let h1 = hidden.requiringGrad()
        try FusedLinearCrossEntropy()(hiddenStates: h1, labels: labels, lmWeight: weight).backward()
        assertClose(h1.grad, ref.dHidden, rtol: 1e-4, atol: 1e-6, "dh alone")
        let w1 = weight.requiringGrad()
        try FusedLinearCrossEntropy()(hiddenStates: hidden, labels: labels, lmWeight: w1).backward()
        assertClose(w1.grad, ref.dWeight, rtol: 1e-4, atol: 1e-6, "dW alone")
    }

    func testChunkedEqualsMaskedForEveryChunkLength() throws {
        let v = 10
        let labelsArray = makeLabels([3, 7], v: v, ignoreEvery: 5, ignoreOffset: 2)
        let labels = labelTensor(labelsArray, [3, 7])
        for dtype in [DType.float32, .bfloat16] {
            let logits = randomTensor([3, 7, v], -4, 4, seed: 55).cast(to: dtype)
            for reduction in LossReduction.allCases {
                let upstream = upstreamValues(reduction, n: 21)
                let mx = logits.requiringGrad()
                let masked = try MaskedCrossEntropy(reduction: reduction)(logits: mx, labels: labels)
                try backpropagate(masked, upstream: upstream)
                for chunkLen in [1, 2, 3, 5, 8, 20, 21, 22, 64] {
                    let cx = logits.requiringGrad()
                    let chunked = try ChunkedCrossEntropy(chunkLen: chunkLen, reduction: reduction)(logits: cx, labels: labels)
                    try backpropagate(chunked, upstream: upstream)
                    // The same row kernel in the same order: bit-identical.
                    XCTAssertEqual(chunked.floats, masked.floats, "chunkLen \(chunkLen) \(dtype) \(reduction)")
                    XCTAssertEqual(cx.grad?.floats, mx.grad?.floats, "grad chunkLen \(chunkLen) \(dtype) \(reduction)")
                }
            }
        }
    }
}
