// calculateLoss: a fused loss takes hidden states and an LM-head weight (lmWeight,
// else the model's head); every other loss takes logits.

import Losses
import Tensors
import TestSupport
import XCTest

final class CalculateLossTests: XCTestCase {
    private let hidden = randomTensor([2, 3, 4], seed: 71)
    private let head = randomTensor([5, 4], seed: 72)
    private let other = randomTensor([5, 4], seed: 73)
    private let logits = randomTensor([2, 3, 5], seed: 74)
    private let labelsArray = [0, 4, -100, 2, 3, 1]
    private var labels: Tensor { labelTensor(labelsArray, [2, 3]) }

    private func fusedReference(_ weight: Tensor, numLabelTokens: Int? = nil) -> [Double] {
        ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: 6, h: 4, v: 5, labels: labelsArray,
                          numLabelTokens: numLabelTokens).value
    }

    func testFusedPrefersTheGivenLMWeightOverTheModelHead() throws {
        let out = try calculateLoss(FusedLinearCrossEntropy(), hiddenStates: hidden, labels: labels,
                                    model: HeadModel(lmHeadWeight: head), lmWeight: other)
        assertClose(out, fusedReference(other), rtol: 1e-5, atol: 1e-6)
    }

    func testFusedFallsBackToTheModelHead() throws {
        let w = head.requiringGrad()
        let out = try calculateLoss(FusedLinearCrossEntropy(), logits: logits, hiddenStates: hidden, labels: labels,
                                    model: HeadModel(lmHeadWeight: w), numLabelTokens: 4)
        assertClose(out, fusedReference(head, numLabelTokens: 4), rtol: 1e-5, atol: 1e-6)
        // The gradient reaches the head weight through the dispatcher.
        try out.backward()
        let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(head), n: 6, h: 4, v: 5,
                                    labels: labelsArray, numLabelTokens: 4)
        assertClose(w.grad, ref.dWeight, rtol: 1e-4, atol: 1e-6)
    }

    func testFusedWithoutAnyHeadThrows() {
        assertLossError(["lm_head module not found in model"]) {
            try calculateLoss(FusedLinearCrossEntropy(), hiddenStates: self.hidden, labels: self.labels,
                              model: HeadModel(lmHeadWeight: nil))
        }
        assertLossError(["lm_head module not found in model"]) {
            try calculateLoss(FusedLinearCrossEntropy(), hiddenStates: self.hidden, labels: self.labels)
        }
    }

    func testFusedWithoutHiddenStatesThrows() {
        assertLossError(["hidden_states"]) {
            try calculateLoss(FusedLinearCrossEntropy(), logits: self.logits, labels: self.labels, lmWeight: self.head)
        }
    }

    func testLogitsLossesTakeLogitsAndIgnoreTheRest() throws {
        let ref = ReferenceCE.logits(doubles(logits), n: 6, v: 5, labels: labelsArray, numLabelTokens: 3).value
        let losses: [any LogitsLoss] = [MaskedCrossEntropy(), try ChunkedCrossEntropy(chunkLen: 4)]
        for loss in losses {
            let out = try calculateLoss(loss, logits: logits, hiddenStates: hidden, labels: labels,
                                        model: HeadModel(lmHeadWeight: nil), lmWeight: other, numLabelTokens: 3)
            assertClose(out, ref, rtol: 1e-5, atol: 1e-6, "\(type(of: loss))")
        }
    }

    func testLogitsLossWithoutLogitsThrows() {
        assertLossError(["MaskedCrossEntropy", "logits"]) {
            try calculateLoss(MaskedCrossEntropy(), hiddenStates: self.hidden, labels: self.labels, lmWeight: self.head)
        }
        assertLossError(["ChunkedCrossEntropy", "logits"]) {
            try calculateLoss(try ChunkedCrossEntropy(), labels: self.labels)
        }
    }

    func testReductionIsTheLossOwn() throws {
        let out = try calculateLoss(MaskedCrossEntropy(reduction: .none), logits: logits, labels: labels)
        XCTAssertEqual(out.shape, [6])
        let fused = try calculateLoss(FusedLinearCrossEntropy(reduction: .mean), hiddenStates: hidden, labels: labels, lmWeight: head)
        let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(head), n: 6, h: 4, v: 5, labels: labelsArray,
                                    reduction: .mean).value
        assertClose(fused, ref, rtol: 1e-5, atol: 1e-6)
    }

    func testApplyLMHeadIsHiddenTimesHeadTransposed() throws {
        let z = try HeadModel(lmHeadWeight: head).applyLMHead(hidden)
        XCTAssertEqual(z.shape, [2, 3, 5])
        assertLossError(["lm_head module not found in model"]) { try HeadModel(lmHeadWeight: nil).applyLMHead(self.hidden) }
    }
}
