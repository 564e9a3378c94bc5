// Hugging Face directories that must be refused with an error naming the value, before
// anything of the size they claim is allocated: config sizes the weights do not hold, an
// index whose weight_map disagrees with its shards, non-finite weights. Each case is a
// copy of a fixture with one thing changed.

import Foundation
import Model
import NN
import Tensors
import TestSupport
import XCTest

final class HuggingFaceImportRefusalTests: XCTestCase {
    private func assertRefused(_ directory: URL, mentioning parts: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try CausalLM.load(huggingFace: directory), file: file, line: line) { error in
            XCTAssertTrue(error is ModelError, "\(type(of: error)): \(error)", file: file, line: line)
            for part in parts { XCTAssertTrue("\(error)".contains(part), "'\(error)' does not mention '\(part)'", file: file, line: line) }
        }
    }

    /// The fixture has V = 64, H = 32, I = 48, 2 layers, 4 heads, 2 key/value heads.
    func testConfigSizesTheWeightsDoNotHoldAreRefusedBeforeTheModelIsBuilt() throws {
        let cases: [(fields: [String: Any], message: String)] = [
            (["vocab_size": 1_000_000_000_000],
             "'model.embed_tokens.weight' has shape [64, 32], but vocab_size 1000000000000, hidden_size 32 imply [1000000000000, 32]"),
            (["vocab_size": 100_000_000], "vocab_size 100000000"),
            (["intermediate_size": 1_000_000_000_000],
             "'model.layers.0.mlp.gate_proj.weight' has shape [48, 32], but hidden_size 32, intermediate_size 1000000000000 imply"),
            (["hidden_size": 8 << 30, "num_attention_heads": 1 << 30, "num_key_value_heads": 1 << 30, "head_dim": 8],
             "hidden_size 8589934592"),
            (["num_key_value_heads": 4], "'model.layers.0.self_attn.k_proj.weight' has shape [16, 32], but hidden_size 32, "
                + "num_attention_heads 4, num_key_value_heads 4 imply [32, 32]"),
            (["num_hidden_layers": 1], "num_hidden_layers 1, but the weights also have 'model.layers.1.input_layernorm.weight'"),
            (["num_hidden_layers": 1_000_000_000],
             "the weights have no 'model.layers.2.input_layernorm.weight', which num_hidden_layers 1000000000 imply"),
            (["num_nextn_predict_layers": 1], "which num_hidden_layers 2 and num_nextn_predict_layers 1 imply"),
            (["tie_word_embeddings": false], "the weights have no 'lm_head.weight', which tie_word_embeddings false"),
        ]
        for c in cases {
            let directory = try huggingFaceCopy(self, of: "tiny_llama_gqa_tied") { $0.merge(c.fields) { _, new in new } }
            assertRefused(directory, mentioning: ["config.json: ", c.message])
        }
    }

    /// The pre-check compares the configuration's parameter count with the values in the
    /// files, so the count must be exact for tied heads, grouped-query attention and depths.
    func testParameterCountIsTheModelsExactly() throws {
        for (tied, keyValueHeads, depths) in [(false, 4, 0), (true, 2, 0), (false, 1, 2), (true, 4, 1)] {
            let config = ModelConfig(vocabularySize: 20, hiddenSize: 16, layers: 2, heads: 4, intermediateSize: 24,
                                     mtpDepths: depths, keyValueHeads: keyValueHeads, tieWordEmbeddings: tied)
            XCTAssertEqual(config.parameterCount, try CausalLM(config: config, seed: 0).parameterCount, "\(config)")
        }
    }

    private func editIndex(_ directory: URL, _ edit: (inout [String: String]) -> Void) throws {
        let url = directory.appendingPathComponent("model.safetensors.index.json")
        var index = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var map = try XCTUnwrap(index["weight_map"] as? [String: String])
        edit(&map)
        index["weight_map"] = map
        try JSONSerialization.data(withJSONObject: index).write(to: url)
    }

    func testAnIndexThatDisagreesWithItsShardsIsRefused() throws {
        let first = "model-00001-of-00002.safetensors", second = "model-00002-of-00002.safetensors"
        let wrongShard = try huggingFaceCopy(self, of: "tiny_llama_sharded_bf16")
        try editIndex(wrongShard) { $0["lm_head.weight"] = first }
        assertRefused(wrongShard, mentioning: ["weight_map puts 'lm_head.weight' in \(first), but it is stored in shard \(second)"])

        let unlisted = try huggingFaceCopy(self, of: "tiny_llama_sharded_bf16")
        try editIndex(unlisted) { $0["lm_head.weight"] = nil }
        assertRefused(unlisted, mentioning: ["shard \(second) holds 'lm_head.weight', which weight_map does not list"])
    }

    func testNonFiniteWeightsAreRefusedNamingTheTensor() throws {
        for (name, value) in [("model.embed_tokens.weight", Float.nan), ("model.layers.1.mlp.down_proj.weight", -.infinity)] {
            let directory = try huggingFaceCopy(self, of: "tiny_llama_gqa_tied")
            let weights = directory.appendingPathComponent("model.safetensors")
            var tensors = try SafeTensors.read(contentsOf: weights).tensors
            let t = try XCTUnwrap(tensors[name])
            var floats = t.floats
            floats[5] = value
            tensors[name] = try Tensor(floats, shape: t.shape)
            try SafeTensors.write(tensors, metadata: ["format": "pt"], to: weights)
            assertRefused(directory, mentioning: ["'\(name)' holds \(value) at element 5", "must be finite"])
        }
    }
}
