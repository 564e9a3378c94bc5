// Gradients of the three losses: against the analytic (softmax − onehot)·w formula,
// against central finite differences of the Float64 reference, and against finite
// differences of the Swift forward itself.

import Losses
import Tensors
import TestSupport
import XCTest

final class CrossEntropyGradientTests: XCTestCase {
    /// Central differences of a Float64 function (step 1e-5: truncation ~1e-10, rounding ~1e-11).
    private func finiteDifferences(_ x: [Double], step: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
        (0..<x.count).map { i in
            var plus = x, minus = x
            plus[i] += step
            minus[i] -= step
            return (f(plus) - f(minus)) / (2 * step)
        }
    }

    /// Σ upstream · value of a reference result.
    private func projected(_ value: [Double], _ upstream: [Double]) -> Double {
        zip(value, upstream).reduce(0) { $0 + $1.0 * $1.1 }
    }

    func testLogitsLossGradientsMatchTheAnalyticFormula() throws {
        let n = 8, v = 11
        let logits = randomTensor([2, 4, v], -3, 3, seed: 31)
        let labels = makeLabels([2, 4], v: v, ignoreEvery: 3)
        for reduction in LossReduction.allCases {
            let upstream = upstreamValues(reduction, n: n)
            // (softmax − onehot) · w, w = upstream scaled by the reduction (1/count for mean).
            let ref = ReferenceCE.logits(doubles(logits), n: n, v: v, labels: labels, reduction: reduction, upstream: upstream)
            for (name, run) in logitsLosses(reduction) {
                let x = logits.requiringGrad()
                try backpropagate(try run(x, labelTensor(labels, [2, 4]), nil, nil), upstream: upstream)
                XCTAssertEqual(x.grad?.shape, [2, 4, v])
                assertClose(x.grad, ref.dz, rtol: 1e-4, atol: 1e-7, "\(name) \(reduction)")
            }
        }
    }

    func testLogitsLossGradientsMatchFiniteDifferencesOfTheReference() throws {
        let n = 5, v = 7
        let logits = randomTensor([n, v], -3, 3, seed: 32)
        let labels = makeLabels([n], v: v, ignoreEvery: 4, ignoreOffset: 1)
        for reduction in LossReduction.allCases {
            let upstream = upstreamValues(reduction, n: n)
            let numeric = finiteDifferences(doubles(logits)) { z in
                projected(ReferenceCE.logits(z, n: n, v: v, labels: labels, reduction: reduction).value, upstream)
            }
            for (name, run) in logitsLosses(reduction) {
                let x = logits.requiringGrad()
                try backpropagate(try run(x, labelTensor(labels, [n]), nil, nil), upstream: upstream)
                assertClose(x.grad, numeric, rtol: 1e-4, atol: 1e-6, "\(name) \(reduction)")
            }
        }
    }

    func testFusedGradientsMatchFiniteDifferencesOfTheReference() throws {
        let n = 6, h = 3, v = 9
        let hidden = randomTensor([2, 3, h], -1.5, 1.5, seed: 33)
        let weight = randomTensor([v, h], -1.5, 1.5, seed: 34)
        let labels = makeLabels([2, 3], v: v, ignoreEvery: 4, ignoreOffset: 2)
        for softcap in [Float(0), 30, 2] {
            for reduction in LossReduction.allCases {
                let upstream = upstreamValues(reduction, n: n)
                let loss = { (hd: [Double], wd: [Double]) -> Double in
                    self.projected(ReferenceCE.fused(hidden: hd, weight: wd, n: n, h: h, v: v, labels: labels,
                                                     reduction: reduction, softcap: Double(softcap)).value, upstream)
                }
                let dh = finiteDifferences(doubles(hidden)) { loss($0, doubles(weight)) }
                let dw = finiteDifferences(doubles(weight)) { loss(doubles(hidden), $0) }
                let analytic = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                                 labels: labels, reduction: reduction, softcap: Double(softcap),
                                                 upstream: upstream)
                // The reference's own analytic gradient agrees with its finite differences.
                XCTAssertNil(closeness(analytic.dHidden.map { Float($0) }, dh, rtol: 1e-5, atol: 1e-7))

                let x = hidden.requiringGrad(), w = weight.requiringGrad()
                let out = try FusedLinearCrossEntropy(logitSoftcapping: softcap, reduction: reduction)(
                    hiddenStates: x, labels: labelTensor(labels, [2, 3]), lmWeight: w)
                try backpropagate(out, upstream: upstream)
                XCTAssertEqual(x.grad?.shape, [2, 3, h])
                XCTAssertEqual(w.grad?.shape, [v, h])
                assertClose(x.grad, dh, rtol: 1e-4, atol: 1e-6, "dh softcap \(softcap) \(reduction)")
                assertClose(w.grad, dw, rtol: 1e-4, atol: 1e-6, "dW softcap \(softcap) \(reduction)")
            }
        }
    }

    /// Self-consistency in Float32: the pullbacks agree with finite differences of the
    /// Swift forward (a random projection for `.none`, see ``gradientCheck``).
    func testGradientCheckOfEveryLossAndReduction() throws {
        let labels = labelTensor(makeLabels([2, 3], v: 5, ignoreEvery: 4), [2, 3])
        for reduction in LossReduction.allCases {
            for (name, run) in logitsLosses(reduction) {
                let failure = try gradientCheck([randomTensor([2, 3, 5], -2, 2, seed: 35)]) { xs in
                    try run(xs[0], labels, nil, nil)
                }
                XCTAssertNil(failure, "\(name) \(reduction)")
            }
            for softcap in [Float(0), 30, 2] {
                let fused = FusedLinearCrossEntropy(logitSoftcapping: softcap, reduction: reduction)
                let failure = try gradientCheck([randomTensor([2, 3, 4], -1, 1, seed: 36),
                                                 randomTensor([5, 4], -1, 1, seed: 37)]) { xs in
                    try fused(hiddenStates: xs[0], labels: labels, lmWeight: xs[1])
                }
                XCTAssertNil(failure, "fused softcap \(softcap) \(reduction)")
            }
        }
        let failure = try gradientCheck([randomTensor([6, 5], -2, 2, seed: 38)]) { xs in
            try MaskedCrossEntropy()(logits: xs[0], labels: labels.reshaped([6]), numLabelTokens: 4)
        }
        XCTAssertNil(failure, "numLabelTokens 4")
    }

    func testHalfPrecisionGradientsHaveTheInputDTypeAndMatchReference() throws {
        for (dtype, ulp) in [(DType.float16, 0x1p-10), (.bfloat16, 0x1p-7)] {
            let logits = randomTensor([4, 9], -3, 3, seed: 39).cast(to: dtype)
            let labels = makeLabels([4], v: 9)
            let ref = ReferenceCE.logits(doubles(logits), n: 4, v: 9, labels: labels)
            for (name, run) in logitsLosses(.sum) {
                let x = logits.requiringGrad()
                try run(x, labelTensor(labels, [4]), nil, nil).backward()
                XCTAssertEqual(x.grad?.dtype, dtype, name)
                // The Float32 gradient is rounded once to the leaf's dtype.
                assertClose(x.grad, ref.dz, rtol: ulp, atol: 1e-6, "\(name) \(dtype)")
            }
            let hidden = randomTensor([4, 3], seed: 40).cast(to: dtype).requiringGrad()
            let weight = randomTensor([9, 3], seed: 41).cast(to: dtype).requiringGrad()
            let fref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: 4, h: 3, v: 9, labels: labels)
            try FusedLinearCrossEntropy()(hiddenStates: hidden, labels: labelTensor(labels, [4]), lmWeight: weight).backward()
            XCTAssertEqual(hidden.grad?.dtype, dtype)
            XCTAssertEqual(weight.grad?.dtype, dtype)
            assertClose(hidden.grad, fref.dHidden, rtol: 2 * ulp, atol: 1e-5, "fused dh \(dtype)")
            assertClose(weight.grad, fref.dWeight, rtol: 2 * ulp, atol: 1e-5, "fused dW \(dtype)")
        }
    }

    func testNoGradientWorkWhenNothingRequiresOne() throws {
        let hidden = randomTensor([3, 2], seed: 42), weight = randomTensor([4, 2], seed: 43)
        let labels = labelTensor([0, 1, 3], [3])
        let out = try FusedLinearCrossEntropy()(hiddenStates: hidden, labels: labels, lmWeight: weight)
        XCTAssertFalse(out.requiresGrad)
        let inScope = try withoutGrad {
            try FusedLinearCrossEntropy()(hiddenStates: hidden.requiringGrad(), labels: labels, lmWeight: weight.requiringGrad())
        }
        XCTAssertFalse(inScope.requiresGrad)
        XCTAssertEqual(out.floats, inScope.floats)
        XCTAssertFalse(try MaskedCrossEntropy()(logits: randomTensor([3, 4]), labels: labels).requiresGrad)
    }
}
