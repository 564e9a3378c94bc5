// The pipeline's loss and every parameter gradient equal the non-pipelined step on
// the same batch (within 1e-5 relative), for P ∈ {2, 3}, M ∈ {1, 2, 4}, both
// schedules and both loss kinds, on microbatches whose rows are packed differently.

import Data
import Model
import Foundation
import Losses
import MTP
import Pipeline
import Tensors
import Training
import XCTest

final class GradientEquivalenceTests: XCTestCase {
    private let tolerance = 1e-5

    /// (P, layers, blocks per stage).
    private let partitions: [(stages: Int, layers: Int, counts: [Int])] = [(2, 3, [2, 1]), (3, 3, [1, 1, 1])]

    func testGradientsEqualTheNonPipelinedStep() throws {
        let batch = try packedBatch(rows: 4)
        var worstLoss = 0.0, worstGrad = (error: 0.0, name: "")
        for loss in sweptLossKinds {
            for (p, layers, counts) in partitions {
                let model = try tinyModel(layers: layers, loss: loss)
                let reference = try referenceStep(model, batch, loss: loss)
                for kind in PipelineScheduleKind.allCases {
                    for m in [1, 2, 4] {
                        let pipeline = try CausalLMPipeline(
                            model: model, lossFunction: loss.makeLoss(reduction: .mean),
                            schedule: PipelineSchedule(kind: kind, stages: p, microbatches: m),
                            partition: PipelinePartition(layerCounts: counts, layers: layers))
                        var result: PipelineStepResult?
                        let got = try gradients(of: model) { result = try pipeline.step(batch) }
                        let label = "\(loss) P=\(p) M=\(m) \(kind.rawValue)"
                        let lossError = Double(Swift.abs(result!.loss - reference.loss)) / Double(Swift.abs(reference.loss))
                        let gradError = maxRelativeGradientError(got, reference.gradients)
                        XCTAssertLessThan(lossError, tolerance, "\(label): loss \(result!.loss) vs \(reference.loss)")
                        XCTAssertLessThan(gradError.error, tolerance, "\(label): gradient of \(gradError.name)")
                        XCTAssertEqual(Set(got.keys), Set(reference.gradients.keys))
                        worstLoss = Swift.max(worstLoss, lossError)
                        if gradError.error > worstGrad.error { worstGrad = gradError }
                    }
                }
            }
        }
        print(String(format: "pipeline vs non-pipelined, 24 configurations: max relative error loss %.2e, gradient %.2e (%@)",
                     worstLoss, worstGrad.error, worstGrad.name))
    }

    func testLossPartsEqualTheNonPipelinedOnes() throws {
        let batch = try packedBatch(rows: 4)
        let model = try tinyModel(layers: 2, loss: .fused)
        let lossFn = MTPLossConfig().build(lossFn: LossKind.fused.makeLoss(reduction: .mean), model: model)
        let whole = try lossFn(model(batch.inputIds, positions: batch.positions, seqIdx: batch.seqIdx), labels: batch.labels)
        let pipeline = try CausalLMPipeline(model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                                            schedule: .oneForwardOneBackward(stages: 2, microbatches: 4))
        let result = try pipeline.step(batch)
        model.zeroGrad()
        XCTAssertEqual(Double(result.mainLoss), Double(whole.main), accuracy: 1e-5)
        XCTAssertEqual(result.depthLosses.count, 2)
        for (a, b) in zip(result.depthLosses, whole.perDepth) { XCTAssertEqual(Double(a), Double(b), accuracy: 1e-5) }
    }

    /// Stages whose blocks are recomputed in the backward pass (`--recompute`) give the bits of
    /// stages that keep the activations.
    func testRecomputedBlocksGiveTheSameBits() throws {
        let batch = try packedBatch(rows: 4)
        let model = try tinyModel(layers: 3, loss: .fused)
        for kind in PipelineScheduleKind.allCases {
            let pipeline = try CausalLMPipeline(
                model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                schedule: PipelineSchedule(kind: kind, stages: 2, microbatches: 2),
                partition: PipelinePartition(layerCounts: [2, 1], layers: 3))
            var results: [PipelineStepResult] = []
            var grads: [[String: [Float]]] = []
            for recompute in [false, true] {
                model.recomputesBlocks = recompute
                grads.append(try gradients(of: model) { results.append(try pipeline.step(batch)) })
            }
            model.recomputesBlocks = false
            XCTAssertEqual(results[0].loss, results[1].loss, kind.rawValue)
            XCTAssertEqual(grads[0], grads[1], kind.rawValue)
        }
    }

    func testEmptyStagesAndOneStageGiveTheSameGradients() throws {
        let batch = try packedBatch(rows: 4)
        let model = try tinyModel(layers: 2, loss: .fused)
        let reference = try referenceStep(model, batch, loss: .fused)
        for counts in [[2], [1, 0, 1], [0, 2], [2, 0]] {
            let pipeline = try CausalLMPipeline(
                model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                schedule: .oneForwardOneBackward(stages: counts.count, microbatches: 2),
                partition: PipelinePartition(layerCounts: counts, layers: 2))
            let got = try gradients(of: model) { try pipeline.step(batch) }
            let e = maxRelativeGradientError(got, reference.gradients)
            XCTAssertLessThan(e.error, tolerance, "partition \(counts): gradient of \(e.name)")
        }
    }

    func testSumReductionGivesTheGlobalSum() throws {
        let batch = try packedBatch(rows: 4)
        let model = try tinyModel(layers: 2, loss: .masked)
        var reference: Float = 0
        let expected = try gradients(of: model) {
            let l = try MTPLossConfig().build(lossFn: MaskedCrossEntropy(reduction: .sum), model: model)(
                model(batch.inputIds, positions: batch.positions, seqIdx: batch.seqIdx), labels: batch.labels).loss
            reference = l.floats[0]
            try l.backward()
        }
        let pipeline = try CausalLMPipeline(model: model, lossFunction: MaskedCrossEntropy(reduction: .sum),
                                            schedule: .gpipe(stages: 2, microbatches: 4))
        var result: PipelineStepResult?
        let got = try gradients(of: model) { result = try pipeline.step(batch) }
        XCTAssertEqual(Double(result!.loss), Double(reference), accuracy: 1e-5 * Double(reference))
        XCTAssertLessThan(maxRelativeGradientError(got, expected).error, tolerance)
    }

    func testGradientScaleMultipliesTheGradients() throws {
        let batch = try packedBatch(rows: 4)
        let model = try tinyModel(layers: 2, loss: .fused)
        let reference = try referenceStep(model, batch, loss: .fused)
        let pipeline = try CausalLMPipeline(model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                                            schedule: .gpipe(stages: 2, microbatches: 2))
        let got = try gradients(of: model) { try pipeline.step(batch, gradientScale: 0.25) }
        let scaled = reference.gradients.mapValues { $0.map { $0 * 0.25 } }
        XCTAssertLessThan(maxRelativeGradientError(got, scaled).error, tolerance)
    }

    /// The sweep above would catch a loss call bound to another microbatch's seqIdx: the
    /// microbatches are packed differently, and swapping their seqIdx changes the loss.
    func testMicrobatchesArePackedDifferently() throws {
        let batch = try packedBatch(rows: 4)
        let rows = try (0..<4).map { try batch.seqIdx[$0].int64s }
        XCTAssertEqual(Set(rows).count, 4, "every row must have its own packing: \(rows)")

        let model = try tinyModel(layers: 2, loss: .fused)
        let lossFn = MTPLossConfig().build(lossFn: LossKind.fused.makeLoss(reduction: .mean), model: model)
        let mbs = try batch.microbatches(4)
        let right = try lossFn(model(mbs[0].inputIds, positions: mbs[0].positions, seqIdx: mbs[0].seqIdx), labels: mbs[0].labels)
        guard case .tuple(let first, let rest) = try model(mbs[0].inputIds, positions: mbs[0].positions, seqIdx: mbs[0].seqIdx) else {
            return XCTFail("the model returns a tuple")
        }
        let wrongTail = mbs[1].seqIdx.cast(to: .int32)
        let wrong = try lossFn(.tuple(first: first, rest: rest.dropLast() + [wrongTail]), labels: mbs[0].labels)
        XCTAssertGreaterThan(Swift.abs(right.loss.floats[0] - wrong.loss.floats[0]), 1e-4)
        model.zeroGrad()
    }
}
