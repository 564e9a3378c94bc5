// Writing a CausalLM as a Hugging Face model directory that `transformers` loads as
// `LlamaForCausalLM`: config.json (HuggingFaceConfig), generation_config.json,
// model.safetensors with `format: pt` metadata (transformers refuses other formats)
// and the weights alone (no optimizer state), the MTP depths in the DeepSeek-V3 layout
// (CausalLM+HuggingFaceLayout.swift), and the tokenizer file when there is one.

import Foundation
import Tensors

/// How to export a model to a Hugging Face directory.
public struct HuggingFaceExportOptions: Sendable {
    /// The dtype of the written weights (float32, float16 or bfloat16; converted with
    /// round-to-nearest-even).
    public var dtype: DType
    /// A `tokenizer.json` to copy beside the weights.
    public var tokenizer: URL?
    /// The beginning-of-sequence id written to the configs, when the tokenizer has one.
    public var bosTokenID: Int32?
    /// The end-of-sequence id written to the configs, when the tokenizer has one.
    public var eosTokenID: Int32?

    /// Options; by default float32 weights and no tokenizer.
    public init(dtype: DType = .float32, tokenizer: URL? = nil, bosTokenID: Int32? = nil, eosTokenID: Int32? = nil) {
        self.dtype = dtype
        self.tokenizer = tokenizer
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
    }
}

extension CausalLM {
    /// The weights under their Hugging Face names (tied copies included), in `dtype`.
    ///
    /// - Throws: ``ModelError`` for a non-floating dtype or a layout without a DeepSeek-V3 form.
    public func huggingFaceTensors(dtype: DType = .float32) throws -> [String: Tensor] {
        _ = try HuggingFaceConfig.torchName(dtype)
        var out: [String: Tensor] = [:]
        for entry in try huggingFaceLayout() { out[entry.name] = entry.parameter.value.detached().cast(to: dtype) }
        return out
    }

    /// Writes the model as a Hugging Face directory (created if needed; files of the same
    /// names are replaced): `config.json`, `generation_config.json`, `model.safetensors`
    /// and, when `options.tokenizer` is set, `tokenizer.json`.
    ///
    /// - Parameters:
    ///   - directory: the output directory.
    ///   - options: dtype and tokenizer.
    /// - Returns: the files written.
    /// - Throws: ``ModelError`` for an unsupported dtype or layout; file-system errors.
    @discardableResult
    public func exportHuggingFace(to directory: URL, options: HuggingFaceExportOptions = HuggingFaceExportOptions()) throws -> [URL] {
        let tensors = try huggingFaceTensors(dtype: options.dtype)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent(HuggingFaceDirectory.configFile)
        try HuggingFaceConfig.json(for: self.config, dtype: options.dtype, bosTokenID: options.bosTokenID,
                                   eosTokenID: options.eosTokenID).write(to: config)
        let generation = directory.appendingPathComponent("generation_config.json")
        var generationFields: [String: Any] = ["_from_model_config": true, "do_sample": false]
        if let bos = options.bosTokenID { generationFields["bos_token_id"] = Int(bos) }
        if let eos = options.eosTokenID { generationFields["eos_token_id"] = Int(eos) }
        try JSONSerialization.data(withJSONObject: generationFields, options: [.prettyPrinted, .sortedKeys]).write(to: generation)
        let weights = directory.appendingPathComponent(HuggingFaceDirectory.weightsFile)
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: weights)
        var written = [config, generation, weights]
        if let tokenizer = options.tokenizer {
            let target = directory.appendingPathComponent(HuggingFaceDirectory.tokenizerFile)
            if tokenizer.standardizedFileURL != target.standardizedFileURL {
                if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
                try FileManager.default.copyItem(at: tokenizer, to: target)
            }
            written.append(target)
        }
        return written
    }
}
