import Losses
import Model
import NN
import Pipeline
import XCTest

/// The stages' parameter sets are disjoint and cover the model, in checkpoint order.
final class StageOwnershipTests: XCTestCase {
    func testStagesPartitionTheParameters() throws {
        let model = try CausalLM(config: ModelConfig(vocabularySize: 24, hiddenSize: 16, layers: 3, heads: 2,
                                                     intermediateSize: 32, mtpDepths: 2), seed: 1)
        let all = model.namedParameters().map(\.name)
        for counts in [[3], [2, 1], [1, 1, 1], [0, 3], [3, 0]] {
            let partition = try PipelinePartition(layerCounts: counts, layers: 3)
            var seen: [String] = []
            for s in 0..<counts.count {
                let stage = try CausalLMStage(model: model, partition: partition, stage: s,
                                              lossFunction: FusedLinearCrossEntropy(reduction: .mean))
                let names = stage.ownedParameters.map(\.name)
                XCTAssertEqual(names, all.filter(names.contains), "stage \(s) of \(counts): not in model order")
                seen += names
            }
            XCTAssertEqual(seen.sorted(), all.sorted(), "\(counts)")
            XCTAssertEqual(Set(seen).count, seen.count, "\(counts): a parameter owned twice")
        }
        let two = try PipelinePartition(layerCounts: [1, 2], layers: 3)
        let first = try CausalLMStage(model: model, partition: two, stage: 0, lossFunction: FusedLinearCrossEntropy(reduction: .mean))
        XCTAssertEqual(first.ownedParameters.map(\.name).first, "model.embed_tokens.weight")
        XCTAssertTrue(first.ownedParameters.allSatisfy { $0.name.hasPrefix("model.embed_tokens") || $0.name.hasPrefix("model.layers.0.") })
    }
}

