// `recomputesBlocks` (activation checkpointing per decoder block, `mtp train --recompute`):
// the same loss and gradient bits as keeping the activations, for fewer live bytes.

import Foundation
import Losses
import Model
import MTP
import NN
import Tensors
import XCTest

final class RecomputeTests: XCTestCase {
    /// Rows of two documents each (the document mask and the depths' boundary masking matter).
    private func loss(_ model: CausalLM, _ lossFn: any TokenLoss, rows: Int = 2, length: Int = 6) throws -> Tensor {
        let n = rows * length, cut = length / 2
        let ids = int64Tensor((0..<n).map { Int64(($0 * 7 + 3) % model.config.vocabularySize) }, [rows, length])
        let labels = int64Tensor((0..<n).map { $0 % length == length - 1 ? -100 : Int64(($0 * 5 + 1) % model.config.vocabularySize) },
                                 [rows, length])
        let positions = int64Tensor((0..<n).map { Int64($0 % length < cut ? $0 % length : $0 % length - cut) }, [rows, length])
        let seqIdx = int64Tensor((0..<n).map { $0 % length < cut ? 0 : 1 }, [rows, length])
        let out = try model(ids, positions: positions, seqIdx: seqIdx)
        return try MTPLossConfig().build(lossFn: lossFn, model: model)(out, labels: labels).loss
    }

    /// The loss values of two backward passes (adding into the same gradients) and every
    /// parameter's gradient after them.
    private func lossesAndGradients(recompute: Bool, lossFn: any TokenLoss, logits: Bool, tied: Bool) throws
        -> (losses: [[Float]], gradients: [String: [Float]]) {
        var config = ModelConfig(vocabularySize: 10, hiddenSize: 8, layers: 2, heads: 2, intermediateSize: 12, mtpDepths: 2)
        config.tieWordEmbeddings = tied
        let model = try CausalLM(config: config, seed: 6)
        model.emitsLogits = logits
        model.recomputesBlocks = recompute
        XCTAssertEqual(model.decoderBlocks.count, 4)
        XCTAssertTrue(model.decoderBlocks.allSatisfy { $0.recomputesInBackward == recompute })
        var losses: [[Float]] = []
        for _ in 0..<2 {
            let l = try loss(model, lossFn)
            losses.append(l.floats)
            try l.backward()
        }
        var gradients: [String: [Float]] = [:]
        for (name, p) in model.namedParameters() { gradients[name] = try XCTUnwrap(p.grad, name).floats }
        return (losses, gradients)
    }

    func testEveryGradientIsTheSameBits() throws {
        for (name, lossFn, logits) in [("fused", FusedLinearCrossEntropy(reduction: .mean) as any TokenLoss, false),
                                       ("masked", MaskedCrossEntropy(reduction: .mean), true)] {
            for tied in [false, true] {
                let kept = try lossesAndGradients(recompute: false, lossFn: lossFn, logits: logits, tied: tied)
                let recomputed = try lossesAndGradients(recompute: true, lossFn: lossFn, logits: logits, tied: tied)
                XCTAssertEqual(kept.losses, recomputed.losses, "\(name), tied \(tied)")
                XCTAssertEqual(Set(kept.gradients.keys), Set(recomputed.gradients.keys))
                for (key, g) in kept.gradients {
                    XCTAssertEqual(g, recomputed.gradients[key], "\(name), tied \(tied): \(key)")
                }
            }
        }
    }

    func testRecomputingHoldsFewerBytes() throws {
        func peak(recompute: Bool) throws -> Int {
            let config = ModelConfig(vocabularySize: 16, hiddenSize: 16, layers: 4, heads: 2, intermediateSize: 32, mtpDepths: 1)
            let model = try CausalLM(config: config, seed: 3)
            model.recomputesBlocks = recompute
            let lossFn = FusedLinearCrossEntropy(reduction: .mean)
            try loss(model, lossFn, rows: 2, length: 16).backward()  // gradients allocated once
            return try AllocationMeter.measure { try loss(model, lossFn, rows: 2, length: 16).backward() }.peakBytes
        }
        let kept = try peak(recompute: false), recomputed = try peak(recompute: true)
        print("peak live bytes of a step, 4 + 1 blocks: activations kept \(kept), recomputed \(recomputed)")
        XCTAssertLessThan(recomputed, kept)
    }

    func testWithoutRecordingNothingIsRecomputed() throws {
        let model = try CausalLM(config: ModelConfig(vocabularySize: 10, hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 12,
                                                     mtpDepths: 1), seed: 2)
        let ids = int64Tensor([1, 2, 3, 4], [1, 4])
        let plain = try logits(of: model, ids: ids)
        model.recomputesBlocks = true
        XCTAssertTrue(model.recomputesBlocks)
        XCTAssertEqual(try logits(of: model, ids: ids).floats, plain.floats)
    }
}
