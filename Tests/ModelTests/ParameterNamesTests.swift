// The full parameter-name list of a small CausalLM, in order: checkpoints and the
// AdamW state are keyed and ordered by it, so any change to it is a format change.

import Model
import NN
import XCTest

final class ParameterNamesTests: XCTestCase {
    /// The keys of one decoder block under `prefix`, in checkpoint order.
    private func block(_ prefix: String) -> [String] {
        ["input_layernorm.weight",
         "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
         "post_attention_layernorm.weight",
         "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"].map { prefix + "." + $0 }
    }

    func testOneLayerTwoDepthsNamesInOrder() throws {
        let model = try CausalLM(config: ModelConfig(vocabularySize: 12, hiddenSize: 8, layers: 1, heads: 2,
                                                     intermediateSize: 16, mtpDepths: 2), seed: 0)
        let expected = ["model.embed_tokens.weight"]
            + block("model.layers.0")
            + ["model.norm.weight", "lm_head.weight"]
            + ["model.layers.1.enorm.weight", "model.layers.1.hnorm.weight", "model.layers.1.eh_proj.weight"]
            + block("model.layers.1")
            + ["model.layers.1.final_layernorm.weight"]
            + ["model.layers.2.enorm.weight", "model.layers.2.hnorm.weight", "model.layers.2.eh_proj.weight"]
            + block("model.layers.2")
            + ["model.layers.2.final_layernorm.weight"]
        XCTAssertEqual(model.namedParameters().map(\.name), expected)
        // The names pick the layers' own parameter objects.
        let byName = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.parameter) })
        XCTAssertTrue(byName["model.layers.2.eh_proj.weight"] === model.mtp?.depths[1].ehProj.weight)
        XCTAssertTrue(byName["model.layers.0.mlp.up_proj.weight"] === model.layers[0].mlp.upProj.weight)
    }

    func testWithoutMTPTheListEndsAtTheHead() throws {
        let model = try CausalLM(config: ModelConfig(vocabularySize: 12, hiddenSize: 8, layers: 2, heads: 2,
                                                     intermediateSize: 16, mtpDepths: 0), seed: 0)
        XCTAssertEqual(model.namedParameters().map(\.name),
                       ["model.embed_tokens.weight"] + block("model.layers.0") + block("model.layers.1")
                           + ["model.norm.weight", "lm_head.weight"])
    }
}
