// One LM-head weight gradient shared by a main loss and two MTP depth losses
// (FusedLinearCrossEntropy.sharingWeightGradient + expectingUpstream): whatever is
// back-propagated, and whatever upstream each call expected, W.grad is exactly the
// sum of the separately computed gradients.

import Losses
import Tensors
import TestSupport
import XCTest

final class SharedWeightGradientTests: XCTestCase {
    private let n = 5, h = 4, v = 9
    private let scaling: Float = 0.05  // total = main + 0.05·(d0 + d1)
    private lazy var weight = randomTensor([v, h], -1.5, 1.5, seed: 90)
    private lazy var hiddens = (0..<3).map { randomTensor([n, h], -1.5, 1.5, seed: 91 + UInt64($0)) }
    private lazy var labelSets = (0..<3).map { makeLabels([n], v: v, ignoreEvery: 4, ignoreOffset: $0, seed: 95 + UInt64($0)) }

    /// Σ_k coefficients[k] · ∂loss_k/∂W (each `.none` loss summed), every loss on its own weight leaf.
    private func separateWeightGradient(_ reductions: [LossReduction], _ coefficients: [Float]) throws -> [Double] {
        var total = [Double](repeating: 0, count: v * h)
        for k in 0..<3 where coefficients[k] != 0 {
            let w = weight.requiringGrad()
            let loss = try FusedLinearCrossEntropy(reduction: reductions[k])(
                hiddenStates: hiddens[k], labels: labelTensor(labelSets[k], [n]), lmWeight: w)
            try (reductions[k] == .none ? loss.sum() : loss).backward(Tensor(scalar: coefficients[k]))
            for (i, g) in w.grad!.floats.enumerated() { total[i] += Double(g) }
            // The Float64 reference agrees with each separate gradient.
            let upstream = [Double](repeating: Double(coefficients[k]), count: reductions[k] == .none ? n : 1)
            let ref = ReferenceCE.fused(hidden: doubles(hiddens[k]), weight: doubles(weight), n: n, h: h, v: v,
                                        labels: labelSets[k], reduction: reductions[k], upstream: upstream)
            assertClose(w.grad, ref.dWeight, rtol: 1e-4, atol: 1e-6, "separate loss \(k)")
        }
        return total
    }

    /// The three losses on `sharedWeight`, each reduced to a scalar; `hints[k]` (nil: none)
    /// is the upstream loss k is told to expect.
    private func sharedLosses(_ sharedWeight: Tensor, _ reductions: [LossReduction], hints: [Float?],
                              hiddenLeaves: [Tensor]? = nil) throws -> [Tensor] {
        try (0..<3).map { k in
            let compute = {
                try FusedLinearCrossEntropy(reduction: reductions[k])(
                    hiddenStates: hiddenLeaves?[k] ?? self.hiddens[k], labels: labelTensor(self.labelSets[k], [self.n]),
                    lmWeight: sharedWeight)
            }
            let loss = try hints[k].map { try FusedLinearCrossEntropy.expectingUpstream($0, on: sharedWeight, compute) } ?? compute()
            return reductions[k] == .none ? loss.sum() : loss
        }
    }

    private func total(_ losses: [Tensor]) throws -> Tensor {
        try losses[0] + (try losses[1] + losses[2]) * Double(scaling)
    }

    func testSharedGradientEqualsTheSumOfSeparateGradients() throws {
        for reductions: [LossReduction] in [[.sum, .sum, .sum], [.mean, .none, .mean], [.none, .none, .none], [.sum, .mean, .none]] {
            let w = weight.requiringGrad()
            let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
            let leaves = hiddens.map { $0.requiringGrad() }
            let losses = try sharedLosses(shared, reductions, hints: [nil, scaling, scaling], hiddenLeaves: leaves)
            try total(losses).backward()
            let expected = try separateWeightGradient(reductions, [1, scaling, scaling])
            assertClose(w.grad, expected, rtol: 1e-5, atol: 1e-6, "\(reductions)")
            // Hidden-state gradients are per call and unaffected by the sharing.
            for k in 0..<3 {
                let c = Double(k == 0 ? 1 : scaling)
                let ref = ReferenceCE.fused(hidden: doubles(hiddens[k]), weight: doubles(weight), n: n, h: h, v: v,
                                            labels: labelSets[k], reduction: reductions[k],
                                            upstream: Array(repeating: c, count: reductions[k] == .none ? n : 1))
                assertClose(leaves[k].grad, ref.dHidden, rtol: 1e-4, atol: 1e-7, "dh \(k) \(reductions)")
            }
        }
    }

    func testWrongHintsCostARecomputationNotCorrectness() throws {
        let reductions: [LossReduction] = [.sum, .mean, .sum]
        let expected = try separateWeightGradient(reductions, [1, scaling, scaling])
        // Hint 1 for every call though the depths get 0.05; a zero hint; a lead call off by 7×.
        for hints: [Float?] in [[nil, 1, 1], [1, 0, scaling], [7, 0.3, 0.01], [0, 0, 0]] {
            let w = weight.requiringGrad()
            let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
            try total(try sharedLosses(shared, reductions, hints: hints)).backward()
            assertClose(w.grad, expected, rtol: 1e-5, atol: 2e-6, "hints \(hints)")
        }
    }

    func testOnlyTheBackPropagatedLossesContribute() throws {
        let reductions: [LossReduction] = [.sum, .sum, .none]
        for k in 0..<3 {
            let w = weight.requiringGrad()
            let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
            let losses = try sharedLosses(shared, reductions, hints: [nil, scaling, scaling])
            try losses[k].backward()
            var coefficients: [Float] = [0, 0, 0]
            coefficients[k] = 1
            // The other calls added into the shared buffer in forward; none of it may leak.
            assertClose(w.grad, try separateWeightGradient(reductions, coefficients), rtol: 1e-5, atol: 1e-5, "only loss \(k)")
        }
        // Main and one depth, not the other.
        let w = weight.requiringGrad()
        let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
        let losses = try sharedLosses(shared, [.sum, .sum, .sum], hints: [nil, scaling, scaling])
        try (losses[0] + losses[2] * Double(scaling)).backward()
        assertClose(w.grad, try separateWeightGradient([.sum, .sum, .sum], [1, 0, scaling]), rtol: 1e-5, atol: 1e-5,
                    "main and depth 1")
    }

    func testBackwardTwiceAddsTheGradients() throws {
        for reductions: [LossReduction] in [[.sum, .sum, .sum], [.mean, .none, .sum]] {
            let w = weight.requiringGrad()
            let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
            let leaves = hiddens.map { $0.requiringGrad() }
            let loss = try total(try sharedLosses(shared, reductions, hints: [nil, scaling, scaling], hiddenLeaves: leaves))
            try loss.backward()
            let once = leaves.map { $0.grad!.floats }
            try loss.backward()
            let expected = try separateWeightGradient(reductions, [2, 2 * scaling, 2 * scaling])
            assertClose(w.grad, expected, rtol: 1e-5, atol: 2e-6, "twice \(reductions)")
            for k in 0..<3 {
                assertClose(leaves[k].grad, once[k].map { 2 * Double($0) }, rtol: 1e-6, atol: 0, "dh \(k) twice")
            }
        }
        // Two passes over different losses of one graph.
        let w = weight.requiringGrad()
        let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
        let losses = try sharedLosses(shared, [.sum, .sum, .sum], hints: [nil, scaling, scaling])
        try losses[1].backward()
        try losses[0].backward()
        assertClose(w.grad, try separateWeightGradient([.sum, .sum, .sum], [1, 1, 0]), rtol: 1e-5, atol: 1e-5, "d0 then main")
    }

    func testOrdinaryOpsOnTheSharedWeightAddTheirGradient() throws {
        // A fused loss and a plain matmul on the same shared weight: W.grad is the sum.
        let w = weight.requiringGrad()
        let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
        let fused = try FusedLinearCrossEntropy()(hiddenStates: hiddens[0], labels: labelTensor(labelSets[0], [n]), lmWeight: shared)
        let plain = try Tensor.matmul(hiddens[1], shared, transposeB: true).sum()
        try (fused + plain).backward()
        let expected = try separateWeightGradient([.sum, .sum, .sum], [1, 0, 0])
        // d(Σ h₁·Wᵀ)/dW = column sums of h₁ broadcast over V rows.
        let h1 = hiddens[1].floats
        var want = expected
        for r in 0..<v { for c in 0..<h { for i in 0..<n { want[r * h + c] += Double(h1[i * h + c]) } } }
        assertClose(w.grad, want, rtol: 1e-4, atol: 1e-5, "fused + matmul on one shared weight")
    }

    func testSharingIsIdempotentAndInertWithoutGradients() throws {
        let w = weight.requiringGrad()
        let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
        let again = FusedLinearCrossEntropy.sharingWeightGradient(shared)
        XCTAssertTrue(again.sharesStorage(with: w))
        try total(try sharedLosses(again, [.sum, .sum, .sum], hints: [nil, scaling, scaling])).backward()
        assertClose(w.grad, try separateWeightGradient([.sum, .sum, .sum], [1, scaling, scaling]), rtol: 1e-5, atol: 1e-6)

        // A weight needing no gradient, or a no-grad scope: the loss is plain.
        let plain = FusedLinearCrossEntropy.sharingWeightGradient(weight)
        XCTAssertFalse(plain.requiresGrad)
        let inScope = withoutGrad { FusedLinearCrossEntropy.sharingWeightGradient(weight.requiringGrad()) }
        XCTAssertTrue(inScope.isLeaf)
        let value = try FusedLinearCrossEntropy.expectingUpstream(0.5, on: inScope) {
            try FusedLinearCrossEntropy()(hiddenStates: hiddens[0], labels: labelTensor(labelSets[0], [n]), lmWeight: plain)
        }
        let ref = ReferenceCE.fused(hidden: doubles(hiddens[0]), weight: doubles(weight), n: n, h: h, v: v, labels: labelSets[0])
        assertClose(value, ref.value, rtol: 1e-5, atol: 1e-6)
    }
}
