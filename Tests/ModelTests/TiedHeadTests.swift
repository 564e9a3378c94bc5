// A tied LM head: one Parameter shared by the embedding and the head, listed once, whose
// gradient is the sum of what the embedding and the (fused) head loss send it.

import Foundation
import Losses
import Model
import MTP
import NN
import Tensors
import XCTest

final class TiedHeadTests: XCTestCase {
    private func loss(_ model: CausalLM, _ lossFn: any TokenLoss) throws -> Tensor {
        let ids = int64Tensor([1, 4, 7, 2, 9, 3, 3, 0, 5, 8, 6, 2], [2, 6])
        let labels = int64Tensor([4, 7, 2, 9, 3, -100, 0, 5, 8, 6, 2, -100], [2, 6])
        let positions = int64Tensor((0..<12).map { Int64($0 % 6) }, [2, 6])
        let seqIdx = int64Tensor([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0], [2, 6])
        let out = try model(ids, positions: positions, seqIdx: seqIdx)
        return try MTPLossConfig().build(lossFn: lossFn, model: model)(out, labels: labels).loss
    }

    func testTiedGradientIsTheSumOfBothUses() throws {
        var tiedConfig = ModelConfig(vocabularySize: 10, hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 12, mtpDepths: 2)
        tiedConfig.tieWordEmbeddings = true
        var untiedConfig = tiedConfig
        untiedConfig.tieWordEmbeddings = false
        for (name, lossFn) in [("fused", FusedLinearCrossEntropy(reduction: .mean) as any TokenLoss),
                               ("masked", MaskedCrossEntropy(reduction: .mean))] {
            let tied = try CausalLM(config: tiedConfig, seed: 4)
            let untied = try CausalLM(config: untiedConfig, seed: 4)
            tied.emitsLogits = name != "fused"
            untied.emitsLogits = name != "fused"
            let names = tied.namedParameters().map(\.name)
            XCTAssertEqual(Set(names).count, names.count)
            XCTAssertFalse(names.contains("lm_head.weight"))
            XCTAssertEqual(tied.parameters.filter { $0 === tied.embedTokens.weight }.count, 1)
            // The same function: the untied copy's head holds the embedding.
            var weights = tied.parameterTensors()
            weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
            try untied.loadParameters(weights)
            try loss(tied, lossFn).backward()
            try loss(untied, lossFn).backward()
            let sum = try (untied.embedTokens.weight.grad! + untied.lmHead.weight.grad!).floats
            let grad = try XCTUnwrap(tied.embedTokens.weight.grad).floats
            let worst = zip(grad, sum).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-6, name)
        }
    }
}
