// Fine-tuning a Hugging Face model (the transformers-made fixture) with fresh MTP depths:
// the losses fall, and with a frozen trunk only the depths move.

import Foundation
import Model
import NN
import TestSupport
import Training
import XCTest

final class PretrainedTrainingTests: XCTestCase {
    private func trainer(freeze: Bool, steps: Int) throws -> Trainer {
        let (model, base) = try TrainingOptions.pretrained(from: fixtureURL("hf/tiny_llama_gqa_tied"), depths: 2,
                                                           freezeTrunk: freeze)
        var options = base
        options.steps = steps
        options.batchSize = 4
        options.sequenceLength = 32
        options.warmupSteps = 2
        options.evalEvery = steps
        let split = try options.split(options.builtInDocuments(count: 200))
        return try Trainer(options: options, train: split.train, heldOut: split.heldOut, model: model)
    }

    func testFreshDepthsAndTrunkLearn() throws {
        let t = try trainer(freeze: false, steps: 12)
        let before = try t.evaluate()
        for _ in 0..<12 { try t.trainStep() }
        let after = try t.evaluate()
        XCTAssertLessThan(after.mainLoss, before.mainLoss)
        for k in 0..<2 { XCTAssertLessThan(after.depthLosses[k], before.depthLosses[k], "depth \(k)") }
    }

    func testFrozenTrunkKeepsItsWeights() throws {
        let t = try trainer(freeze: true, steps: 3)
        let trunk = try t.model.huggingFaceLayout(includingDepths: false)
        let before = trunk.map { $0.parameter.value.floats }
        let ehBefore = t.model.mtp!.depths[0].ehProj.weight.value.floats
        for _ in 0..<3 { try t.trainStep() }
        for (entry, values) in zip(trunk, before) { XCTAssertEqual(entry.parameter.value.floats, values, entry.name) }
        XCTAssertNotEqual(t.model.mtp!.depths[0].ehProj.weight.value.floats, ehBefore)
        XCTAssertTrue(t.model.parameters.allSatisfy { $0.grad == nil || $0.grad!.floats.allSatisfy { $0 == 0 } })
    }
}
