// The trainer end to end on a tiny model: losses fall, runs are deterministic,
// checkpoints resume bit-exactly, and parameter names follow the HF keys.

import Data
import Model
import Foundation
import MTP
import NN
import Tensors
import TestSupport
import Training
import TrainingTestSupport
import XCTest

final class TrainerTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        reportBLASKernelOnce()
    }

    private func tinyOptions(steps: Int = 30) -> TrainingOptions {
        tinyTrainingOptions(steps: steps, sequenceLength: 48, learningRate: 1e-2, warmup: 3, seed: 3)
    }

    private func data(_ o: TrainingOptions) throws -> DocumentSplit {
        let corpus = try SyntheticCorpus(vocabularySize: o.model.vocabularySize, seed: o.seed)
        return try DocumentSplit(try corpus.documents(count: 160, seed: 9), heldOutFraction: 0.1, seed: 1)
    }

    func testMainAndMTPLossesFall() throws {
        let o = tinyOptions(steps: 40)
        let d = try data(o)
        let trainer = try Trainer(options: o, train: d.train, heldOut: d.heldOut)
        let before = try trainer.evaluate()
        for _ in 0..<o.steps { try trainer.trainStep() }
        let after = try trainer.evaluate()
        XCTAssertLessThan(after.mainLoss, before.mainLoss - 0.3, "main held-out CE \(before.mainLoss) → \(after.mainLoss)")
        for k in 0..<2 {
            XCTAssertLessThan(after.depthLosses[k], before.depthLosses[k] - 0.3,
                              "depth \(k) held-out CE \(before.depthLosses[k]) → \(after.depthLosses[k])")
        }
        let first = trainer.history.prefix(5), last = trainer.history.suffix(5)
        XCTAssertLessThan(last.map(\.mainLoss).reduce(0, +), first.map(\.mainLoss).reduce(0, +))
        XCTAssertLessThan(last.map { $0.depthLosses[1] }.reduce(0, +), first.map { $0.depthLosses[1] }.reduce(0, +))
    }

    func testSameSeedGivesTheSameTrajectory() throws {
        let o = tinyOptions(steps: 4)
        let d = try data(o)
        let a = try Trainer(options: o, train: d.train, heldOut: d.heldOut)
        let b = try Trainer(options: o, train: d.train, heldOut: d.heldOut)
        for _ in 0..<4 { try a.trainStep(); try b.trainStep() }
        XCTAssertEqual(a.history, b.history)
    }

    func testResumeContinuesBitExactly() throws {
        let o = tinyOptions(steps: 6)
        let d = try data(o)
        let straight = try Trainer(options: o, train: d.train, heldOut: d.heldOut)
        for _ in 0..<6 { try straight.trainStep() }

        let first = try Trainer(options: o, train: d.train, heldOut: d.heldOut)
        for _ in 0..<3 { try first.trainStep() }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try first.saveCheckpoint(to: url)
        let resumed = try Trainer(options: o, train: d.train, heldOut: d.heldOut)
        try resumed.loadCheckpoint(from: url)
        XCTAssertEqual(resumed.step, 3)
        for _ in 0..<3 { try resumed.trainStep() }

        XCTAssertEqual(resumed.history, straight.history)
        let p = straight.model.parameterTensors(), q = resumed.model.parameterTensors()
        XCTAssertEqual(Set(p.keys), Set(q.keys))
        for (name, t) in p { XCTAssertEqual(t.floats, q[name]!.floats, name) }
    }

    func testCheckpointRoundTripsParametersAndConfig() throws {
        let o = tinyOptions(steps: 2)
        let d = try data(o)
        let trainer = try Trainer(options: o, train: d.train, heldOut: d.heldOut)
        try trainer.trainStep()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try trainer.saveCheckpoint(to: url)
        let (tensors, metadata) = try SafeTensors.read(contentsOf: url)
        let config = try JSONDecoder().decode(ModelConfig.self, from: Data(metadata["model_config"]!.utf8))
        XCTAssertEqual(config, o.model)
        for (name, t) in trainer.model.parameterTensors() { XCTAssertEqual(tensors[name]?.floats, t.floats, name) }
        XCTAssertNotNil(tensors["optimizer.exp_avg.lm_head.weight"])
        XCTAssertNotNil(tensors["optimizer.exp_avg_sq.model.embed_tokens.weight"])

        var other = o
        other.model.hiddenSize = 32
        let mismatched = try Trainer(options: other, train: d.train, heldOut: d.heldOut)
        XCTAssertThrowsError(try mismatched.loadCheckpoint(from: url))
    }

    func testParameterNamesFollowTheDeepSeekV3Keys() throws {
        let model = try CausalLM(config: ModelConfig(vocabularySize: 24, hiddenSize: 16, layers: 2, heads: 2,
                                                     intermediateSize: 32, mtpDepths: 2), seed: 0)
        let names = Set(model.namedParameters().map(\.name))
        for key in ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
                    "model.layers.0.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight",
                    "model.norm.weight", "lm_head.weight",
                    "model.layers.2.enorm.weight", "model.layers.2.hnorm.weight", "model.layers.2.eh_proj.weight",
                    "model.layers.2.self_attn.o_proj.weight", "model.layers.2.final_layernorm.weight",
                    "model.layers.3.enorm.weight", "model.layers.3.final_layernorm.weight"] {
            XCTAssertTrue(names.contains(key), "missing \(key)")
        }
        XCTAssertEqual(model.namedParameters().count, names.count, "names are unique")
    }

    func testInvalidOptionsThrow() throws {
        var o = tinyOptions()
        o.model.heads = 3
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("3")) }
    }
}
