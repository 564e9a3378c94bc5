// The fused loss forms only the gradients its inputs want: a frozen head gets none
// and costs no weight GEMM; frozen hidden states get none. The wanted gradient is
// unchanged.

import Losses
import Tensors
import TestSupport
import XCTest

final class FusedFrozenInputTests: XCTestCase {
    private let n = 6, h = 4, v = 11

    func testFrozenWeightOrFrozenHiddenStates() throws {
        let hidden = randomTensor([n, h], -1, 1, seed: 21)
        let weight = randomTensor([v, h], -1, 1, seed: 22)
        let labels = makeLabels([n], v: v, ignoreEvery: 4, seed: 23)
        let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                    labels: labels, reduction: .mean)
        for reduction in [LossReduction.mean] {
            let x = hidden.requiringGrad()
            try FusedLinearCrossEntropy(reduction: reduction)(hiddenStates: x, labels: labelTensor(labels, [n]), lmWeight: weight).backward()
            assertClose(x.grad, ref.dHidden, rtol: 1e-4, atol: 1e-6, "dh with a frozen head")
            XCTAssertNil(weight.grad)

            let w = weight.requiringGrad()
            try FusedLinearCrossEntropy(reduction: reduction)(hiddenStates: hidden, labels: labelTensor(labels, [n]), lmWeight: w).backward()
            assertClose(w.grad, ref.dWeight, rtol: 1e-4, atol: 1e-6, "dW with frozen hidden states")
            XCTAssertNil(hidden.grad)
        }
    }
}
