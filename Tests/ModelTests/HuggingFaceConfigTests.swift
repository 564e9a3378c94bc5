// config.json: what we read (transformers 4 and 5 spellings), what we refuse (naming the
// field), and the config we write.

import Foundation
import Model
import NN
import Tensors
import TestSupport
import XCTest

final class HuggingFaceConfigTests: XCTestCase {
    private func baseFields() throws -> [String: Any] {
        let data = try Data(contentsOf: fixtureURL("hf/tiny_llama_gqa_tied/config.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func read(_ fields: [String: Any]) throws -> ModelConfig {
        try HuggingFaceConfig.modelConfig(json: try JSONSerialization.data(withJSONObject: fields))
    }

    func testBothRopeSpellingsAreRead() throws {
        var fields = try baseFields()
        XCTAssertEqual(try read(fields).ropeTheta, 500_000)
        fields["rope_parameters"] = nil
        fields["rope_theta"] = 250_000.0
        XCTAssertEqual(try read(fields).ropeTheta, 250_000)
        fields["rope_theta"] = nil
        XCTAssertEqual(try read(fields).ropeTheta, 10_000)
    }

    func testUnsupportedConfigurationsAreRefusedByField() throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("model_type", { $0["model_type"] = "deepseek_v3" }),
            ("model_type", { $0["model_type"] = nil }),
            ("rope_scaling", { $0["rope_scaling"] = ["rope_type": "llama3", "factor": 8.0] }),
            ("rope_parameters.rope_type", { $0["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 1e4] }),
            ("attention_bias", { $0["attention_bias"] = true }),
            ("mlp_bias", { $0["mlp_bias"] = true }),
            ("num_local_experts", { $0["num_local_experts"] = 8 }),
            ("n_routed_experts", { $0["n_routed_experts"] = 64 }),
            ("kv_lora_rank", { $0["kv_lora_rank"] = 512 }),
            ("sliding_window", { $0["sliding_window"] = 4096 }),
            ("hidden_act", { $0["hidden_act"] = "gelu" }),
            ("head_dim", { $0["head_dim"] = 16 }),
            ("vocab_size", { $0["vocab_size"] = nil }),
            ("num_key_value_heads", { $0["num_key_value_heads"] = "two" }),
            ("tie_word_embeddings", { $0["tie_word_embeddings"] = 1 }),
            ("key/value heads", { $0["num_key_value_heads"] = 3 }),
        ]
        for (field, change) in cases {
            var fields = try baseFields()
            change(&fields)
            XCTAssertThrowsError(try read(fields), field) { XCTAssertTrue("\($0)".contains(field), "\(field): \($0)") }
        }
        // Present but off is accepted.
        var fields = try baseFields()
        fields["rope_scaling"] = NSNull()
        fields["num_local_experts"] = 0
        fields["sliding_window"] = NSNull()
        XCTAssertNoThrow(try read(fields))
    }

    func testWrittenConfigReadsBackAndNamesEveryConstant() throws {
        let config = ModelConfig(vocabularySize: 50, hiddenSize: 16, layers: 3, heads: 4, intermediateSize: 24, mtpDepths: 2,
                                 keyValueHeads: 2, rmsNormEpsilon: 1e-5, ropeTheta: 5e5, tieWordEmbeddings: true,
                                 maxPositionEmbeddings: 256)
        let data = try HuggingFaceConfig.json(for: config, dtype: .bfloat16)
        var back = try HuggingFaceConfig.modelConfig(json: data)
        back.mtpLossScalingFactor = config.mtpLossScalingFactor
        XCTAssertEqual(back, config)
        let fields = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(fields["architectures"] as? [String], ["LlamaForCausalLM"])
        XCTAssertEqual(fields["torch_dtype"] as? String, "bfloat16")
        XCTAssertEqual(fields["num_nextn_predict_layers"] as? Int, 2)
        XCTAssertEqual(fields["rms_norm_eps"] as? Double, 1e-5)
        XCTAssertEqual(fields["tie_word_embeddings"] as? Bool, true)
        XCTAssertThrowsError(try HuggingFaceConfig.json(for: config, dtype: .int32))
    }

    func testOldCheckpointConfigsDecodeWithTheFormerConstants() throws {
        let old = #"{"heads":4,"hiddenSize":96,"intermediateSize":256,"layers":8,"mtpDepths":2,"mtpLossScalingFactor":0.3,"vocabularySize":64}"#
        let config = try JSONDecoder().decode(ModelConfig.self, from: Data(old.utf8))
        XCTAssertEqual(config, ModelConfig(vocabularySize: 64))
        XCTAssertEqual(config.keyValueHeads, 4)
        XCTAssertEqual(config.rmsNormEpsilon, 1e-6)
        XCTAssertEqual(config.ropeTheta, 10_000)
        XCTAssertFalse(config.tieWordEmbeddings)
        // A model of the former kind encodes byte for byte as before.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        XCTAssertEqual(String(decoding: try encoder.encode(config), as: UTF8.self), old)
        // Every other constant is written, and reads back.
        let other = ModelConfig(vocabularySize: 64, keyValueHeads: 2, rmsNormEpsilon: 1e-5, ropeTheta: 5e5,
                                tieWordEmbeddings: true, maxPositionEmbeddings: 512)
        let data = try encoder.encode(other)
        let encoded = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["keyValueHeads", "rmsNormEpsilon", "ropeTheta", "tieWordEmbeddings", "maxPositionEmbeddings"] {
            XCTAssertNotNil(encoded[key], key)
        }
        XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: data), other)
    }

    func testWeightsThatDoNotFitAreRefusedByName() throws {
        let source = fixtureURL("hf/tiny_llama_f16")
        func copy() throws -> (URL, [String: Tensor]) {
            let dir = try temporaryDirectory(self)
            try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
            return (dir, try SafeTensors.read(contentsOf: source.appendingPathComponent("model.safetensors")).tensors)
        }
        var (dir, tensors) = try copy()
        XCTAssertThrowsError(try CausalLM.load(huggingFace: dir)) { XCTAssertTrue("\($0)".contains("model.safetensors.index.json"), "\($0)") }
        tensors["lm_head.weight"] = nil
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try CausalLM.load(huggingFace: dir)) { XCTAssertTrue("\($0)".contains("'lm_head.weight'"), "\($0)") }
        (dir, tensors) = try copy()
        tensors["model.layers.0.self_attn.q_proj.bias"] = Tensor.zeros([32])
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try CausalLM.load(huggingFace: dir)) { XCTAssertTrue("\($0)".contains("q_proj.bias"), "\($0)") }
        (dir, tensors) = try copy()
        tensors["model.norm.weight"] = Tensor.zeros([31])
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try CausalLM.load(huggingFace: dir)) { XCTAssertTrue("\($0)".contains("'model.norm.weight' has shape"), "\($0)") }
    }
}
