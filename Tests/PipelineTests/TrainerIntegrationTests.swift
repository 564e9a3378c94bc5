// A Trainer whose steps take their gradients from the pipeline follows the plain
// trainer's trajectory (losses, gradient norms, weights), with gradient accumulation.

import Data
import Model
import Foundation
import Losses
import Pipeline
import Tensors
import Training
import TrainingTestSupport
import XCTest

final class TrainerIntegrationTests: XCTestCase {
    func testPipelinedStepsFollowThePlainTrajectory() throws {
        for loss in [LossKind.fused, .masked] {
            var o = tinyTrainingOptions(layers: 2, steps: 4, sequenceLength: 32, learningRate: 1e-2, warmup: 1,
                                        gradientAccumulation: 2, seed: 3)
            o.loss = loss
            let split = try tinyCorpusSplit(corpusSeed: 3, documents: 120, documentSeed: 9)
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
