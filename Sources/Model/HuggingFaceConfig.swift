// A Hugging Face `config.json` for a Llama-architecture model, both ways: read into a
// ModelConfig, refusing what our maths does not compute (naming the field), and
// written from one as a `LlamaForCausalLM` config plus DeepSeek-V3's
// `num_nextn_predict_layers` for the MTP depths.
//
// What we compute: pre-norm blocks with RMSNorm (ε = rms_norm_eps), rotate-half RoPE
// with base rope_theta and no scaling, bias-free projections, grouped-query attention
// (num_key_value_heads), SwiGLU (hidden_act silu), a tied or untied head. Anything that
// changes that function is refused rather than silently ignored: rope_scaling, biases,
// mixture-of-experts or multi-head-latent-attention keys, sliding windows, a head_dim
// other than hidden_size / num_attention_heads, another activation or model_type.

import Foundation
import Tensors

/// Reads and writes the `config.json` of a Hugging Face Llama-architecture model.
public enum HuggingFaceConfig {
    /// The `model_type` values read as dense Llama-architecture models.
    public static let supportedModelTypes: Set<String> = ["llama", "mistral"]

    /// Keys whose presence (with a value other than null, 0 or false) means a
    /// mixture-of-experts or multi-head-latent-attention model.
    static let refusedKeys: [String] = [
        "num_local_experts", "n_routed_experts", "num_experts", "n_shared_experts", "moe_intermediate_size",
        "num_experts_per_tok", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim",
    ]

    /// The model a `config.json` describes.
    ///
    /// - Parameters:
    ///   - data: the file's bytes.
    ///   - source: the file's path, for messages.
    /// - Returns: the configuration, with ``ModelConfig/mtpDepths`` from `num_nextn_predict_layers` (0 when absent).
    /// - Throws: ``ModelError`` naming the field that is missing, mistyped or unsupported.
    public static func modelConfig(json data: Data, source: String = "config.json") throws -> ModelConfig {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError("\(source) is not valid JSON (\(error.localizedDescription))")
        }
        guard let fields = object as? [String: Any] else { throw ModelError("\(source) is not a JSON object") }
        let reader = FieldReader(fields: fields, source: source)

        let modelType = try reader.string("model_type")
        guard let modelType, supportedModelTypes.contains(modelType) else {
            throw ModelError("\(source): model_type \(modelType.map { "'\($0)'" } ?? "is missing and") is not supported "
                + "(supported: \(supportedModelTypes.sorted().joined(separator: ", ")), dense Llama-architecture models)")
        }
        if let act = try reader.string("hidden_act"), act != "silu" {
            throw ModelError("\(source): hidden_act '\(act)' is not supported (only silu, the SwiGLU of Llama)")
        }
        if reader.isSet("rope_scaling") {
            throw ModelError("\(source): rope_scaling is set (\(reader.describe("rope_scaling"))); only plain RoPE is supported")
        }
        for key in ["attention_bias", "mlp_bias"] where reader.isSet(key) {
            throw ModelError("\(source): \(key) is \(reader.describe(key)); biases are not supported")
        }
        for key in refusedKeys where reader.isSet(key) {
            throw ModelError("\(source): \(key) is \(reader.describe(key)); mixture-of-experts and latent attention are not supported")
        }
        if reader.isSet("sliding_window") {
            throw ModelError("\(source): sliding_window is \(reader.describe("sliding_window")); only full causal attention is supported")
        }

        let ropeTheta = try self.ropeTheta(reader)
        let heads = try reader.requiredInt("num_attention_heads")
        let hidden = try reader.requiredInt("hidden_size")
        if let headDim = try reader.int("head_dim"), heads > 0, headDim != hidden / heads {
            throw ModelError("\(source): head_dim \(headDim) differs from hidden_size / num_attention_heads = \(hidden / heads)")
        }
        let config = ModelConfig(
            vocabularySize: try reader.requiredInt("vocab_size"), hiddenSize: hidden,
            layers: try reader.requiredInt("num_hidden_layers"), heads: heads,
            intermediateSize: try reader.requiredInt("intermediate_size"),
            mtpDepths: try reader.int("num_nextn_predict_layers") ?? 0,
            keyValueHeads: try reader.int("num_key_value_heads"),
            rmsNormEpsilon: Float(try reader.double("rms_norm_eps") ?? 1e-6),
            ropeTheta: ropeTheta,
            tieWordEmbeddings: try reader.bool("tie_word_embeddings") ?? false,
            maxPositionEmbeddings: try reader.int("max_position_embeddings") ?? 2048)
        do { try config.validate() } catch { throw ModelError("\(source): \(error)") }
        return config
    }

    /// The RoPE base: `rope_theta` (transformers 4) or `rope_parameters.rope_theta`
    /// (transformers 5, whose `rope_type` must be `default`); 10 000 when neither is given.
    static func ropeTheta(_ reader: FieldReader) throws -> Double {
        let source = reader.source
        guard let parameters = reader.fields["rope_parameters"], !(parameters is NSNull) else {
            return try reader.double("rope_theta") ?? 10_000
        }
        guard let object = parameters as? [String: Any] else {
            throw ModelError("\(source): rope_parameters must be an object, got \(reader.describe("rope_parameters"))")
        }
        let inner = FieldReader(fields: object, source: source + " rope_parameters")
        if let type = try inner.string("rope_type"), type != "default" {
            throw ModelError("\(source): rope_parameters.rope_type is '\(type)'; only plain RoPE (default) is supported")
        }
        return try inner.double("rope_theta") ?? reader.double("rope_theta") ?? 10_000
    }

    /// The `config.json` of `config` as a `LlamaForCausalLM`, with `num_nextn_predict_layers`
    /// = D for the MTP depths (DeepSeek-V3's name; Llama ignores it).
    ///
    /// - Parameters:
    ///   - config: the model.
    ///   - dtype: the dtype of the exported weights (`torch_dtype`).
    ///   - bosTokenID, eosTokenID: the tokenizer's special ids, when known.
    /// - Returns: pretty-printed JSON with sorted keys.
    public static func json(for config: ModelConfig, dtype: DType, bosTokenID: Int32? = nil,
                            eosTokenID: Int32? = nil) throws -> Data {
        var fields: [String: Any] = [
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": config.vocabularySize,
            "hidden_size": config.hiddenSize,
            "intermediate_size": config.intermediateSize,
            "num_hidden_layers": config.layers,
            "num_attention_heads": config.heads,
            "num_key_value_heads": config.keyValueHeads,
            "head_dim": config.headDimension,
            "hidden_act": "silu",
            // The shortest decimal that reads back as the same Float (1e-06, not 9.99999997e-07).
            "rms_norm_eps": Double("\(config.rmsNormEpsilon)") ?? Double(config.rmsNormEpsilon),
            "rope_theta": config.ropeTheta,
            // transformers 5 reads the base from here; 4 from rope_theta.
            "rope_parameters": ["rope_type": "default", "rope_theta": config.ropeTheta] as [String: Any],
            "rope_scaling": NSNull(),
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "tie_word_embeddings": config.tieWordEmbeddings,
            "max_position_embeddings": config.maxPositionEmbeddings,
            "torch_dtype": try torchName(dtype),
            "dtype": try torchName(dtype),
            "initializer_range": 0.02,
            "pretraining_tp": 1,
            "use_cache": true,
            "num_nextn_predict_layers": config.mtpDepths,
        ]
        fields["bos_token_id"] = bosTokenID.map { Int($0) as Any } ?? NSNull()
        fields["eos_token_id"] = eosTokenID.map { Int($0) as Any } ?? NSNull()
        return try JSONSerialization.data(withJSONObject: fields, options: [.prettyPrinted, .sortedKeys])
    }

    /// PyTorch's name of a floating-point dtype (`float32`, `float16`, `bfloat16`).
    ///
    /// - Throws: ``ModelError`` for an integer or boolean dtype.
    public static func torchName(_ dtype: DType) throws -> String {
        switch dtype {
        case .float32: return "float32"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        default: throw ModelError("weights cannot be exported as \(dtype) (use float32, float16 or bfloat16)")
        }
    }
}

/// Typed reads of config fields, each error naming the field.
struct FieldReader {
    let fields: [String: Any]
    let source: String

    /// Whether `key` holds something other than null, false or 0.
    func isSet(_ key: String) -> Bool {
        guard let value = fields[key], !(value is NSNull) else { return false }
        if let n = value as? NSNumber { return n.doubleValue != 0 }
        return true
    }

    /// The value as JSON text, for messages.
    func describe(_ key: String) -> String {
        guard let value = fields[key] else { return "absent" }
        if JSONSerialization.isValidJSONObject([value]),
           let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]) {
            return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
        }
        return "\(value)"
    }

    private func present(_ key: String) -> Any? {
        guard let value = fields[key], !(value is NSNull) else { return nil }
        return value
    }

    func string(_ key: String) throws -> String? {
        guard let value = present(key) else { return nil }
        guard let s = value as? String else { throw ModelError("\(source): \(key) must be a string, got \(describe(key))") }
        return s
    }

    func int(_ key: String) throws -> Int? {
        guard let value = present(key) else { return nil }
        guard let n = value as? NSNumber, !isBoolean(n), let i = Int(exactly: n.doubleValue) else {
            throw ModelError("\(source): \(key) must be an integer, got \(describe(key))")
        }
        return i
    }

    func requiredInt(_ key: String) throws -> Int {
        guard let i = try int(key) else { throw ModelError("\(source): \(key) is missing") }
        return i
    }

    func double(_ key: String) throws -> Double? {
        guard let value = present(key) else { return nil }
        guard let n = value as? NSNumber, !isBoolean(n) else {
            throw ModelError("\(source): \(key) must be a number, got \(describe(key))")
        }
        return n.doubleValue
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = present(key) else { return nil }
        guard let n = value as? NSNumber, isBoolean(n) else {
            throw ModelError("\(source): \(key) must be true or false, got \(describe(key))")
        }
        return n.boolValue
    }

    /// JSONSerialization reads `true` as an NSNumber too; a JSON boolean is the only one
    /// whose Objective-C type is `char` (integers come back as `i`/`q`, reals as `d`).
    private func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }
}
