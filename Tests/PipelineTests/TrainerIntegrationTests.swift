// A Trainer whose steps take their gradients from the pipeline follows the plain
// trainer's trajectory (losses, gradient norms, weights), with gradient accumulation.

import Data
import Model
import Foundation
import Losses
import Pipeline
import Tensors
import Training
import XCTest

final class TrainerIntegrationTests: XCTestCase {
    func testPipelinedStepsFollowThePlainTrajectory() throws {
        for loss in [LossKind.fused, .masked] {
            var o = TrainingOptions(model: ModelConfig(vocabularySize: 24, hiddenSize: 16, layers: 2, heads: 2,
                                                       intermediateSize: 32, mtpDepths: 2, mtpLossScalingFactor: 0.3))
            o.steps = 4
            o.batchSize = 4
            o.sequenceLength = 32
            o.learningRate = 1e-2
            o.warmupSteps = 1
            o.evalEvery = 1000
            o.gradientAccumulation = 2
            o.loss = loss
            o.seed = 3
            let corpus = try SyntheticCorpus(vocabularySize: 24, seed: 3)
            let split = try DocumentSplit(try corpus.documents(count: 120, seed: 9), heldOutFraction: 0.1, seed: 1)
            let plain = try Trainer(options: o, train: split.train, heldOut: split.heldOut)
            let piped = try Trainer(options: o, train: split.train, heldOut: split.heldOut)
            let pipeline = try CausalLMPipeline(model: piped.model, lossFunction: o.lossFunction(),
                                                schedule: .oneForwardOneBackward(stages: 2, microbatches: 2))
            for _ in 0..<o.steps {
                let a = try plain.trainStep()
                let b = try piped.trainStep { batch in
                    let r = try pipeline.step(batch, gradientScale: 1 / Float(o.gradientAccumulation))
                    return (r.mainLoss, r.depthLosses)
                }
                XCTAssertEqual(Double(b.mainLoss), Double(a.mainLoss), accuracy: 1e-5 * Double(a.mainLoss), "\(loss) step \(a.step)")
                for (x, y) in zip(b.depthLosses, a.depthLosses) { XCTAssertEqual(Double(x), Double(y), accuracy: 1e-5 * Double(y)) }
                XCTAssertEqual(Double(b.gradientNorm), Double(a.gradientNorm), accuracy: 1e-5 * Double(a.gradientNorm))
            }
            let p = plain.model.parameterTensors(), q = piped.model.parameterTensors()
            for (name, t) in p {
                let diff = zip(t.floats, q[name]!.floats).map { Swift.abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(diff, 1e-4, "\(loss): \(name)")
            }
        }
    }
}
