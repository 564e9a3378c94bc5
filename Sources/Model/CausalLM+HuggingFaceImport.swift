// Loading a Hugging Face Llama-architecture model directory into a CausalLM:
// `config.json` (read by HuggingFaceConfig, which refuses what we do not compute),
// the weights from `model.safetensors` or from the shards listed by
// `model.safetensors.index.json`, in float32, float16 or bfloat16 (converted to our
// float32 parameters), and MTP depths either from the directory (DeepSeek-V3 layout,
// `num_nextn_predict_layers`) or fresh (CausalLM+FreshDepths.swift). The sizes of
// `config.json` are checked against the weights before the model is built
// (ModelConfig+HuggingFaceShapes.swift), a sharded index must agree with its shards, and
// NaN or infinite weights are refused.

import Foundation
import NN
import Tensors

/// The files of a Hugging Face model directory.
public enum HuggingFaceDirectory {
    /// `config.json`.
    public static let configFile = "config.json"
    /// The single weights file.
    public static let weightsFile = "model.safetensors"
    /// The index of sharded weights.
    public static let indexFile = "model.safetensors.index.json"
    /// The tokenizer file, when the model has one.
    public static let tokenizerFile = "tokenizer.json"

    /// Whether `url` is a directory (how the CLI tells a Hugging Face directory from one of our
    /// checkpoint files: a checkpoint is one file, so a directory can only be read as a Hugging
    /// Face model, and ``config(in:)`` names what it lacks).
    public static func isModelDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The model's configuration.
    ///
    /// - Throws: ``ModelError`` when the file is missing or describes an unsupported model (naming the field).
    public static func config(in directory: URL) throws -> ModelConfig {
        let url = directory.appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelError("\(directory.path) has no readable \(configFile)")
        }
        return try HuggingFaceConfig.modelConfig(json: data, source: url.path)
    }

    /// Every tensor of the model's weights, by name (shards merged), in their stored dtypes.
    ///
    /// - Throws: ``ModelError`` when neither weights file exists, the index is malformed, or
    ///   the index's `weight_map` and the shards disagree (a tensor in another shard than the
    ///   map says, a tensor the map does not list, a listed one no shard holds); a SafeTensors
    ///   error for an unreadable file.
    public static func tensors(in directory: URL) throws -> [String: Tensor] {
        let single = directory.appendingPathComponent(weightsFile)
        if FileManager.default.fileExists(atPath: single.path) {
            return try SafeTensors.read(contentsOf: single).tensors
        }
        let index = directory.appendingPathComponent(indexFile)
        guard let data = FileManager.default.contents(atPath: index.path) else {
            throw ModelError("\(directory.path) has neither \(weightsFile) nor \(indexFile)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = object["weight_map"] as? [String: Any] else {
            throw ModelError("\(index.path) has no weight_map object")
        }
        var map: [String: String] = [:]
        for (name, file) in entries {
            guard let file = file as? String, !file.contains("/"), !file.isEmpty, file != ".", file != ".." else {
                throw ModelError("\(index.path): weight_map entry '\(name)' is not a file name in the directory")
            }
            map[name] = file
        }
        // Every shard's tensors must be where the map says: a loader that trusts the map
        // (transformers reads each tensor from its mapped shard) would see another model.
        var out: [String: Tensor] = [:]
        for file in Set(map.values).sorted() {
            let tensors = try SafeTensors.read(contentsOf: directory.appendingPathComponent(file)).tensors
            for name in tensors.keys.sorted() {
                guard let mapped = map[name] else {
                    throw ModelError("\(index.path): shard \(file) holds '\(name)', which weight_map does not list")
                }
                guard mapped == file else {
                    throw ModelError("\(index.path): weight_map puts '\(name)' in \(mapped), but it is stored in shard \(file)")
                }
                out[name] = tensors[name]
            }
        }
        for name in map.keys.sorted() where out[name] == nil {
            throw ModelError("\(index.path) lists '\(name)' in \(map[name] ?? ""), which does not hold it")
        }
        return out
    }
}

extension CausalLM {
    /// A model loaded from a Hugging Face Llama-architecture directory.
    ///
    /// - Parameters:
    ///   - directory: holds `config.json` and `model.safetensors` (or the shards of
    ///     `model.safetensors.index.json`).
    ///   - depths: MTP depths wanted; nil keeps the directory's (`num_nextn_predict_layers`,
    ///     0 when absent). When the directory has none and `depths` is positive, fresh depths
    ///     are made from the trunk (``initializeFreshDepths()``).
    ///   - mtpLossScalingFactor: σ of the MTP loss (not part of a Hugging Face config).
    /// - Returns: the model in float32.
    /// - Throws: ``ModelError`` naming the unsupported field, a size in `config.json` that the
    ///   weights do not hold (checked before the model is built), the missing, unexpected,
    ///   mis-shaped or non-finite tensor, or a depth count that contradicts the directory's.
    public static func load(huggingFace directory: URL, depths: Int? = nil,
                            mtpLossScalingFactor: Float = 0.3) throws -> CausalLM {
        var config = try HuggingFaceDirectory.config(in: directory)
        let stored = config.mtpDepths
        // The weights are read (their size is the files') and the sizes of config.json checked
        // against them before a model of those sizes is allocated.
        let tensors = try HuggingFaceDirectory.tensors(in: directory)
        try config.checkMatches(huggingFace: tensors,
                                source: directory.appendingPathComponent(HuggingFaceDirectory.configFile).path)
        if let depths {
            guard depths >= 0 else { throw ModelError("MTP depths must be >= 0, got \(depths)") }
            guard stored == 0 || stored == depths else {
                throw ModelError("\(directory.path) holds \(stored) MTP depths (num_nextn_predict_layers); asked for \(depths)")
            }
            config.mtpDepths = depths
        }
        config.mtpLossScalingFactor = mtpLossScalingFactor
        // Fresh depths are sized by the caller, not by the files: the model they make must fit
        // for training (the reason to ask for them).
        if config.mtpDepths > stored {
            do { try config.checkFitsInMemory() } catch { throw ModelError("\(depths ?? 0) fresh MTP depths: \(error)") }
        }
        let model = try CausalLM(config: config, seed: 0)
        try model.loadHuggingFaceTensors(tensors, source: directory.path, includingDepths: stored > 0)
        if stored == 0, config.mtpDepths > 0 { try model.initializeFreshDepths() }
        return model
    }

    /// Fills the parameters from tensors under Hugging Face names (``huggingFaceLayout()``),
    /// converting each to float32; nothing changes unless every tensor fits.
    ///
    /// - Parameters:
    ///   - tensors: the checkpoint's tensors.
    ///   - source: the checkpoint's path, for messages.
    ///   - includingDepths: whether the MTP depths come from `tensors` too (else only the trunk
    ///     is read, and tensors of layers from `L` on are refused as unexpected).
    /// - Throws: ``ModelError`` naming a missing, unexpected, non-float, mis-shaped or
    ///   non-finite (NaN, ±infinity) tensor.
    public func loadHuggingFaceTensors(_ tensors: [String: Tensor], source: String, includingDepths: Bool) throws {
        let layout = try huggingFaceLayout(includingDepths: includingDepths)
        // Tied copies and a tied head stored anyway are accepted, not needed.
        var known = Set(layout.map(\.name))
        if config.tieWordEmbeddings { known.insert("lm_head.weight") }
        for name in tensors.keys.sorted() where !known.contains(name) && !name.hasSuffix(".rotary_emb.inv_freq") {
            throw ModelError("\(source): unexpected tensor '\(name)' (not part of this Llama-architecture model)")
        }
        var updates: [(Parameter, Tensor)] = []
        for entry in layout where !entry.isCopy {
            guard let t = tensors[entry.name] else { throw ModelError("\(source): missing tensor '\(entry.name)'") }
            guard t.shape == entry.parameter.shape else {
                throw ModelError("\(source): '\(entry.name)' has shape \(t.shape), the model expects \(entry.parameter.shape)")
            }
            guard t.dtype.isFloatingPoint else {
                throw ModelError("\(source): '\(entry.name)' is \(t.dtype); weights must be float32, float16 or bfloat16")
            }
            let value = t.detached().cast(to: .float32)
            // A NaN or infinite weight makes every logit NaN; decoding would still print tokens.
            if let (index, x) = value.firstNonFiniteFloat() {
                throw ModelError("\(source): '\(entry.name)' holds \(x) at element \(index); weights must be finite")
            }
            updates.append((entry.parameter, value))
        }
        for (p, t) in updates { p.value = t }
    }
}
