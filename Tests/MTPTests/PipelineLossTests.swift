// SPEC §4: PipelineCausalLMLoss and MTPLossConfig — tail extraction, the three
// output forms, the training gate, scaling-factor precedence, the legacy
// cuSeqlens fallback and the fused loss under pipeline parallelism. Expected
// values are float64 cross-entropies of hand-written depth labels.
//
// Letters: B = 2, S = 4, V = 5 vocabulary, H = 3 hidden, D = 2 depths.

import Foundation
import Losses
import MTP
import Tensors
import XCTest

private let X: Int64 = -100
private let V = 5, H = 3

final class PipelineLossTests: XCTestCase {
    private let labelValues: [Int64] = [1, 2, 3, 4,
                                        0, 4, X, 2]
    private var labels: Tensor { int64Tensor(labelValues, [2, 4]) }

    // Depth labels without packing (tail only).
    private let plainDepths: [[Int64]] = [[2, 3, 4, X,
                                           4, X, 2, X],
                                          [3, 4, X, X,
                                           X, 2, X, X]]
    /// The Int32 tail used below: row 0 = {0, 1} {2, 3}, row 1 = one sequence.
    private let tail = int32Tensor([0, 0, 1, 1,
                                    0, 0, 0, 0], [2, 4])
    private let tailDepths: [[Int64]] = [[2, X, 4, X,
                                          4, X, 2, X],
                                         [X, X, X, X,
                                          X, 2, X, X]]
    /// cuSeqlens [0, 2, 4] packs BOTH rows as {0, 1} {2, 3}.
    private let cuDepths: [[Int64]] = [[2, X, 4, X,
                                        4, X, 2, X],
                                       [X, X, X, X,
                                        X, X, X, X]]

    private let mainLogits = Tensor.uniform([2, 4, V], low: -2, high: 2, seed: 60)
    private let mtpLogits = (0..<2).map { Tensor.uniform([2, 4, V], low: -2, high: 2, seed: 61 + UInt64($0)) }
    private let weight = Tensor.uniform([V, H], low: -1, high: 1, seed: 70)
    private let mainHidden = Tensor.uniform([2, 4, H], low: -1, high: 1, seed: 71)
    private let mtpHidden = (0..<2).map { Tensor.uniform([2, 4, H], low: -1, high: 1, seed: 72 + UInt64($0)) }

    private func ce(_ logits: Tensor, _ labels: [Int64]) -> Double {
        referenceRows(logits.floats, vocab: V, labels: labels).reduce(0, +)
    }

    private func ce(hidden: Tensor, _ labels: [Int64]) -> Double {
        referenceRows(referenceLogits(hidden.floats, weight.floats, hidden: H), vocab: V, labels: labels).reduce(0, +)
    }

    private var mainLoss: Double { ce(mainLogits, labelValues) }

    /// Σ_k CE_k of the per-depth logits against `depths`.
    private func depthSum(_ depths: [[Int64]]) -> Double {
        zip(mtpLogits, depths).reduce(0) { $0 + ce($1.0, $1.1) }
    }

    private func model(scale: Float? = nil, training: Bool = true, logits: Bool = true) -> LossModel {
        LossModel(lmHeadWeight: weight, mtpConfig: scale.map { MTPConfig(numLayers: 2, layerPattern: "*", lossScalingFactor: $0) },
                  isTraining: training, mtpOutputsAreLogits: logits)
    }

    // MARK: Tail extraction

    func testInt32RankTwoTailIsStripped() throws {
        let (seq, output) = PipelineOutput.tuple(first: mainLogits, rest: mtpLogits + [tail]).extractingSeqIdxTail()
        XCTAssertEqual(try XCTUnwrap(seq).int64s, tail.int64s)
        guard case .tuple(_, let rest) = output else { return XCTFail("still a tuple") }
        XCTAssertEqual(rest.count, 2)
        XCTAssertEqual(rest.map(\.dtype), [.float32, .float32])

        // A tail alone: no MTP output is left.
        let (seqOnly, onlyMain) = try PipelineOutput.tuple([mainLogits, tail]).extractingSeqIdxTail()
        XCTAssertNotNil(seqOnly)
        guard case .tuple(_, let none) = onlyMain else { return XCTFail("still a tuple") }
        XCTAssert(none.isEmpty)
    }

    func testOnlyAnInt32RankTwoLastElementIsATail() throws {
        for notTail in [tail.cast(to: .int64), int32Tensor([0, 0, 1, 1], [4]), int32Tensor([0, 0, 1, 1, 0, 0, 0, 0], [1, 2, 4])] {
            let (seq, output) = PipelineOutput.tuple(first: mainLogits, rest: mtpLogits + [notTail]).extractingSeqIdxTail()
            XCTAssertNil(seq, "\(notTail.dtype) \(notTail.shape) is not a tail")
            guard case .tuple(_, let rest) = output else { return XCTFail("still a tuple") }
            XCTAssertEqual(rest.count, 3)
        }
        // Only the last element is looked at, and only in a tuple.
        let (seqFirst, _) = PipelineOutput.tuple(first: mainLogits, rest: [tail, mtpLogits[0]]).extractingSeqIdxTail()
        XCTAssertNil(seqFirst)
        XCTAssertNil(PipelineOutput.tensor(tail).extractingSeqIdxTail().seqIdx)
        XCTAssertNil(PipelineOutput.record(CausalLMOutput(logits: mainLogits)).extractingSeqIdxTail().seqIdx)
        XCTAssertNil(PipelineOutput.tuple(first: tail, rest: []).extractingSeqIdxTail().seqIdx)
        assertThrows(try PipelineOutput.tuple([]), containing: "empty")
    }

    func testNonTailIntegerElementIsAnMTPOutputAndFailsOnShapes() throws {
        // An Int64 [B, S] or an Int32 [S] last element becomes one more per-depth hidden state.
        for notTail in [tail.cast(to: .int64), int32Tensor([0, 0, 1, 1], [4])] {
            let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.1, logits: false))
            assertThrows(try loss(.tuple(first: mainLogits, rest: mtpHidden + [notTail]), labels: labels).loss, containing: "shape")
        }
    }

    // MARK: Output forms

    func testTupleWithPerDepthLogitsAndSeqIdxTail() throws {
        let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2))
        let value = try loss(.tuple(first: mainLogits, rest: mtpLogits + [tail]), labels: labels).loss
        assertClose(value.floats, [mainLoss + Double(Float(0.2)) / 2 * depthSum(tailDepths)])
        // Without the tail: no packing.
        let plain = try loss(.tuple(first: mainLogits, rest: mtpLogits), labels: labels).loss
        assertClose(plain.floats, [mainLoss + Double(Float(0.2)) / 2 * depthSum(plainDepths)])
    }

    func testTheOutputCarriesTheMainAndUnscaledDepthValues() throws {
        let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2))
        let out = try loss(.tuple(first: mainLogits, rest: mtpLogits + [tail]), labels: labels)
        assertClose([out.main], [mainLoss])
        assertClose(out.perDepth, zip(mtpLogits, tailDepths).map { ce($0, $1) })
        // Evaluation adds no MTP term, so there are no depth values.
        let evaluation = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2, training: false))
        let evaluated = try evaluation(.tuple(first: mainLogits, rest: mtpLogits + [tail]), labels: labels)
        assertClose([evaluated.main], [mainLoss])
        XCTAssertEqual(evaluated.perDepth, [])
    }

    func testTupleWithPerDepthHiddenStatesUsesTheModelHead() throws {
        let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2, logits: false))
        let value = try loss(.tuple(first: mainLogits, rest: mtpHidden + [tail]), labels: labels).loss
        let mtp = ce(hidden: mtpHidden[0], tailDepths[0]) + ce(hidden: mtpHidden[1], tailDepths[1])
        assertClose(value.floats, [mainLoss + Double(Float(0.2)) / 2 * mtp])
    }

    func testTupleWithoutMTPOutputsIsTheMainLoss() throws {
        let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2))
        assertClose(try loss(.tuple(first: mainLogits, rest: []), labels: labels).loss.floats, [mainLoss])
        assertClose(try loss(.tuple(first: mainLogits, rest: [tail]), labels: labels).loss.floats, [mainLoss], "tail only")
    }

    func testRecordForm() throws {
        let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model())
        let withLogits = try loss(.record(CausalLMOutput(logits: mainLogits, perDepthLogits: mtpLogits)), labels: labels).loss
        assertClose(withLogits.floats, [mainLoss + Double(Float(0.1)) / 2 * depthSum(plainDepths)])

        // The record's per-depth hidden states go through the head whatever mtpOutputsAreLogits says.
        let withHidden = try loss(.record(CausalLMOutput(logits: mainLogits, perDepthHidden: mtpHidden)), labels: labels).loss
        let mtp = ce(hidden: mtpHidden[0], plainDepths[0]) + ce(hidden: mtpHidden[1], plainDepths[1])
        assertClose(withHidden.floats, [mainLoss + Double(Float(0.1)) / 2 * mtp])

        let mainOnly = try loss(.record(CausalLMOutput(logits: mainLogits, hiddenStates: mainHidden)), labels: labels).loss
        assertClose(mainOnly.floats, [mainLoss])

        assertThrows(try loss(.record(CausalLMOutput(hiddenStates: mainHidden)), labels: labels).loss, containing: "logits")
        assertThrows(try loss(.record(CausalLMOutput(logits: mainLogits, perDepthHidden: mtpHidden, perDepthLogits: mtpLogits)),
                              labels: labels).loss, containing: "exactly one")
    }

    func testRecordFormWithTheFusedLossReadsHiddenStates() throws {
        let loss = PipelineCausalLMLoss(lossFn: FusedLinearCrossEntropy(), model: model(logits: false))
        let value = try loss(.record(CausalLMOutput(logits: mainLogits, hiddenStates: mainHidden, perDepthHidden: mtpHidden)),
                             labels: labels).loss
        let mtp = ce(hidden: mtpHidden[0], plainDepths[0]) + ce(hidden: mtpHidden[1], plainDepths[1])
        assertClose(value.floats, [ce(hidden: mainHidden, labelValues) + Double(Float(0.1)) / 2 * mtp])
        assertThrows(try loss(.record(CausalLMOutput(logits: mainLogits, perDepthHidden: mtpHidden)), labels: labels).loss,
                     containing: "hidden_states")
    }

    func testBareTensorIsLogitsOrHiddenStatesWithoutMTP() throws {
        let logitsLoss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2))
        assertClose(try logitsLoss(.tensor(mainLogits), labels: labels).loss.floats, [mainLoss])
        let fusedLoss = PipelineCausalLMLoss(lossFn: FusedLinearCrossEntropy(), model: model(scale: 0.2, logits: false))
        assertClose(try fusedLoss(.tensor(mainHidden), labels: labels).loss.floats, [ce(hidden: mainHidden, labelValues)])
    }

    func testFusedLossWithMTPUnderPipelineParallelism() throws {
        // NeMo raises for this; here the tuple's first element is the final hidden states.
        let w = weight.requiringGrad()
        let h = mtpHidden.map { $0.requiringGrad() }
        let m = LossModel(lmHeadWeight: w, mtpConfig: MTPConfig(numLayers: 2, layerPattern: "*", lossScalingFactor: 0.3))
        let loss = PipelineCausalLMLoss(lossFn: FusedLinearCrossEntropy(), model: m)
        let value = try loss(.tuple(first: mainHidden, rest: h + [tail]), labels: labels).loss
        let mtp = ce(hidden: mtpHidden[0], tailDepths[0]) + ce(hidden: mtpHidden[1], tailDepths[1])
        assertClose(value.floats, [ce(hidden: mainHidden, labelValues) + Double(Float(0.3)) / 2 * mtp])
        try value.backward()
        XCTAssertNotNil(w.grad)
        XCTAssert(h.allSatisfy { $0.grad != nil })
        // Per-depth logits with the fused loss cannot work.
        let logitsModel = LossModel(lmHeadWeight: weight, mtpOutputsAreLogits: true)
        assertThrows(try PipelineCausalLMLoss(lossFn: FusedLinearCrossEntropy(), model: logitsModel)(
            .tuple(first: mainHidden, rest: mtpLogits), labels: labels), containing: "incompatible")
    }

    func testMicrobatchGradientsOfTheSharedHeadAccumulate() throws {
        // Two microbatches through one loss object: backward of their sum, or one backward
        // each, gives the head the sum of the two microbatch gradients.
        let loss = { (w: Tensor) in
            PipelineCausalLMLoss(lossFn: FusedLinearCrossEntropy(),
                                 model: LossModel(lmHeadWeight: w, mtpConfig: MTPConfig(numLayers: 2, layerPattern: "*")))
        }
        let second = (0..<3).map { Tensor.uniform([2, 4, H], low: -1, high: 1, seed: 90 + UInt64($0)) }
        let outputs: [PipelineOutput] = [.tuple(first: mainHidden, rest: mtpHidden + [tail]),
                                         .tuple(first: second[0], rest: Array(second.dropFirst()))]
        var separate = [Double](repeating: 0, count: V * H)
        for output in outputs {
            let w = weight.requiringGrad()
            try loss(w)(output, labels: labels).loss.backward()
            for (i, g) in try XCTUnwrap(w.grad).floats.enumerated() { separate[i] += Double(g) }
        }

        let wSum = weight.requiringGrad()
        let pipeline = loss(wSum)
        try (try pipeline(outputs[0], labels: labels).loss + pipeline(outputs[1], labels: labels).loss).backward()
        assertClose(try XCTUnwrap(wSum.grad).floats, separate, rtol: 1e-5, atol: 1e-6, "backward of the sum")

        let wEach = weight.requiringGrad()
        let each = loss(wEach)
        for output in outputs { try each(output, labels: labels).loss.backward() }
        assertClose(try XCTUnwrap(wEach.grad).floats, separate, rtol: 1e-5, atol: 1e-6, "one backward per microbatch")
    }

    func testFusedLossWithoutAHeadThrows() {
        let loss = PipelineCausalLMLoss(lossFn: FusedLinearCrossEntropy(), model: LossModel())
        assertThrows(try loss(.tuple(first: mainHidden, rest: mtpHidden), labels: labels).loss, containing: "lm_head module not found in model")
        assertThrows(try loss(.tensor(mainHidden), labels: labels).loss, containing: "lm_head module not found in model")
    }

    // MARK: Training gate

    func testEvaluationModeAddsNoMTPTermAndNoMTPGradients() throws {
        let depthLogits = mtpLogits.map { $0.requiringGrad() }
        let main = mainLogits.requiringGrad()
        let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2, training: false))
        let value = try loss(.tuple(first: main, rest: depthLogits + [tail]), labels: labels).loss
        assertClose(value.floats, [mainLoss])
        try value.backward()
        XCTAssertNotNil(main.grad)
        XCTAssert(depthLogits.allSatisfy { $0.grad == nil }, "MTP outputs take no part in evaluation")

        let record = try loss(.record(CausalLMOutput(logits: mainLogits, perDepthLogits: mtpLogits, mtpLossScalingFactor: 0.5)),
                              labels: labels).loss
        assertClose(record.floats, [mainLoss])
    }

    // MARK: Scaling factor

    /// The factor the pipeline applied: (loss − main) · D / Σ_k CE_k.
    private func appliedFactor(_ loss: PipelineCausalLMLoss, _ output: PipelineOutput) throws -> Double {
        (Double(try loss(output, labels: labels).loss.floats[0]) - mainLoss) * 2 / depthSum(plainDepths)
    }

    func testScalingFactorPrecedence() throws {
        let record = { (sf: Float?) in PipelineOutput.record(CausalLMOutput(logits: self.mainLogits, perDepthLogits: self.mtpLogits,
                                                                            mtpLossScalingFactor: sf)) }
        let tuple = PipelineOutput.tuple(first: mainLogits, rest: mtpLogits)
        let lossFn = MaskedCrossEntropy()
        func factor(config: Float?, model scale: Float?, _ output: PipelineOutput) throws -> Double {
            try appliedFactor(PipelineCausalLMLoss(lossFn: lossFn, model: model(scale: scale), scalingFactor: config), output)
        }
        let tol = 1e-5
        // Record form: config > record > model config > 0.1.
        XCTAssertEqual(try factor(config: 0.5, model: 0.2, record(0.3)), 0.5, accuracy: tol)
        XCTAssertEqual(try factor(config: nil, model: 0.2, record(0.3)), 0.3, accuracy: tol)
        XCTAssertEqual(try factor(config: nil, model: nil, record(0.3)), 0.3, accuracy: tol)
        XCTAssertEqual(try factor(config: nil, model: 0.2, record(nil)), 0.2, accuracy: tol)
        XCTAssertEqual(try factor(config: nil, model: nil, record(nil)), 0.1, accuracy: tol)
        // Tuple form: there is no record value; config > model config > 0.1.
        XCTAssertEqual(try factor(config: 0.5, model: 0.2, tuple), 0.5, accuracy: tol)
        XCTAssertEqual(try factor(config: nil, model: 0.2, tuple), 0.2, accuracy: tol)
        XCTAssertEqual(try factor(config: nil, model: nil, tuple), 0.1, accuracy: tol)
        // A config of 0 is a value, not "unset": the MTP term vanishes.
        XCTAssertEqual(try factor(config: 0, model: 0.2, record(0.3)), 0, accuracy: tol)
        XCTAssertEqual(try factor(config: 0, model: 0.2, tuple), 0, accuracy: tol)
    }

    // MARK: Packing

    func testCuSeqlensFallbackWhenThereIsNoTail() throws {
        let loss = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: model(scale: 0.2))
        XCTAssertNil(loss.cuSeqlens)
        loss.cuSeqlens = int64Tensor([0, 2, 4], [3])
        let fallback = try loss(.tuple(first: mainLogits, rest: mtpLogits), labels: labels).loss
        assertClose(fallback.floats, [mainLoss + Double(Float(0.2)) / 2 * depthSum(cuDepths)])
        // A tail wins over the legacy cuSeqlens.
        let withTail = try loss(.tuple(first: mainLogits, rest: mtpLogits + [tail]), labels: labels).loss
        assertClose(withTail.floats, [mainLoss + Double(Float(0.2)) / 2 * depthSum(tailDepths)])
    }

    func testPipelineIgnoreIndexMasksTheDepthLabels() throws {
        let lossFn = MaskedCrossEntropy(ignoreIndex: -1)
        let loss = PipelineCausalLMLoss(lossFn: lossFn, model: model(scale: 1), ignoreIndex: -1)
        let labels = int64Tensor([1, 2, 3, -1], [1, 4])
        let main = try mainLogits.sliced(axis: 0, 0..<1), depth = try mtpLogits[0].sliced(axis: 0, 0..<1)
        let value = try loss(.tuple(first: main, rest: [depth]), labels: labels).loss
        let want = referenceRows(main.floats, vocab: V, labels: [1, 2, 3, -1], ignoreIndex: -1).reduce(0, +)
            + referenceRows(depth.floats, vocab: V, labels: [2, 3, -1, -1], ignoreIndex: -1).reduce(0, +)
        assertClose(value.floats, [want])
    }

    // MARK: MTPLossConfig

    func testMTPLossConfigBuildsThePipelineLoss() throws {
        XCTAssertEqual(MTPLossConfig(), MTPLossConfig(scalingFactor: nil, ignoreIndex: -100))
        let config = MTPLossConfig(scalingFactor: 0.4, ignoreIndex: -7)
        let m = model(scale: 0.2)
        let built = config.build(lossFn: MaskedCrossEntropy(ignoreIndex: -7), model: m)
        XCTAssertEqual(built.scalingFactor, 0.4)
        XCTAssertEqual(built.ignoreIndex, -7)
        XCTAssertNil(built.cuSeqlens)
        XCTAssert(built.lossFn is MaskedCrossEntropy)
        XCTAssertEqual(built.model.mtpConfig?.lossScalingFactor, 0.2)
        XCTAssertNil(MTPLossConfig().build(lossFn: MaskedCrossEntropy(), model: m).scalingFactor, "nil keeps the model's factor")

        let direct = PipelineCausalLMLoss(lossFn: MaskedCrossEntropy(), model: m, scalingFactor: 0.4)
        let fromConfig = MTPLossConfig(scalingFactor: 0.4).build(lossFn: MaskedCrossEntropy(), model: m)
        let output = PipelineOutput.tuple(first: mainLogits, rest: mtpLogits + [tail])
        XCTAssertEqual(try fromConfig(output, labels: labels).loss.floats, try direct(output, labels: labels).loss.floats)
    }
}
