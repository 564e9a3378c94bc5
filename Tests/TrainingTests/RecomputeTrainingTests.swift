// `TrainingOptions.recompute` (`mtp train --recompute`): the trainer recomputes every block
// in the backward pass and follows the same trajectory bit for bit; a resumed run may turn
// it on or off; runs without it record the options as before.

import Data
import Foundation
import Model
import TestSupport
import Training
import TrainingTestSupport
import XCTest

final class RecomputeTrainingTests: XCTestCase {
    private func options(recompute: Bool?) -> TrainingOptions {
        var o = tinyTrainingOptions(layers: 2, steps: 3, sequenceLength: 24, learningRate: 1e-2, warmup: 1,
                                    gradientAccumulation: 2, seed: 5)
        o.recompute = recompute
        return o
    }

    func testTheTrajectoryIsTheSameBits() throws {
        let d = try tinyCorpusSplit(corpusSeed: 5, documents: 60, documentSeed: 2)
        let kept = try Trainer(options: options(recompute: nil), train: d.train, heldOut: d.heldOut)
        let recomputed = try Trainer(options: options(recompute: true), train: d.train, heldOut: d.heldOut)
        XCTAssertFalse(kept.model.recomputesBlocks)
        XCTAssertTrue(recomputed.model.recomputesBlocks)
        for _ in 0..<3 { try kept.trainStep(); try recomputed.trainStep() }
        XCTAssertEqual(kept.history, recomputed.history)
        let p = kept.model.parameterTensors(), q = recomputed.model.parameterTensors()
        for (name, t) in p { XCTAssertEqual(t.floats, q[name]?.floats, name) }
    }

    func testAResumedRunMayTurnRecomputingOnOrOff() throws {
        let recorded = options(recompute: nil)
        XCTAssertEqual(try recorded.resumed(as: options(recompute: true), atStep: 1).recompute, true)
        XCTAssertNil(try options(recompute: true).resumed(as: recorded, atStep: 1).recompute)
    }

    func testOptionsWithoutRecomputeEncodeWithoutTheKey() throws {
        let plain = String(decoding: try JSONEncoder().encode(options(recompute: nil)), as: UTF8.self)
        XCTAssertFalse(plain.contains("recompute"), plain)
        let on = try JSONEncoder().encode(options(recompute: true))
        XCTAssertEqual(try JSONDecoder().decode(TrainingOptions.self, from: on).recompute, true)
    }
}
