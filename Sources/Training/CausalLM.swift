// A small DeepSeek-V3-style causal LM with MTP heads:
//   embed → L decoder blocks → final RMSNorm → LM head, plus an MTPModule of D depths
// sharing the embedding and the head. Parameter names follow the Hugging Face
// DeepSeek-V3 checkpoint keys; the MTP sublayers come after the main layers
// (`model.layers.{L + i}.enorm.weight`, …, `….final_layernorm.weight`).

import Foundation
import Losses
import MTP
import NN
import Tensors

/// The sizes of a ``CausalLM``; stored as JSON in checkpoint metadata.
public struct ModelConfig: Codable, Equatable, Sendable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    /// MTP depths D (0 disables MTP).
    public var mtpDepths: Int
    public var mtpLossScalingFactor: Float

    public init(vocabularySize: Int, hiddenSize: Int = 96, layers: Int = 8, heads: Int = 4, intermediateSize: Int = 256,
                mtpDepths: Int = 2, mtpLossScalingFactor: Float = 0.3) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.mtpDepths = mtpDepths
        self.mtpLossScalingFactor = mtpLossScalingFactor
    }

    /// Throws naming the first size that is out of range.
    public func validate() throws {
        for (name, v) in [("vocabulary", vocabularySize), ("hidden", hiddenSize), ("layers", layers),
                          ("heads", heads), ("intermediate", intermediateSize)] where v <= 0 {
            throw TrainingError("\(name) size must be positive, got \(v)")
        }
        guard hiddenSize % heads == 0 else { throw TrainingError("hidden size \(hiddenSize) is not a multiple of \(heads) heads") }
        guard (hiddenSize / heads) % 2 == 0 else { throw TrainingError("head dimension \(hiddenSize / heads) must be even (RoPE)") }
        guard mtpDepths >= 0 else { throw TrainingError("MTP depths must be >= 0, got \(mtpDepths)") }
    }

    /// The model-side MTP config (nil without depths).
    public var mtpConfig: MTPConfig? {
        mtpDepths > 0 ? MTPConfig(numLayers: mtpDepths, layerPattern: "*", lossScalingFactor: mtpLossScalingFactor) : nil
    }
}

/// An error in training configuration or data, naming the offending value.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The causal LM with MTP heads.
public final class CausalLM: Layer, MTPLossModel {
    public let config: ModelConfig
    public let embedTokens: Embedding
    public let layers: [DecoderBlock]
    public let norm: RMSNorm
    public let lmHead: Linear
    public let mtp: MTPModule?
    /// Training mode: the MTP term is added only while true.
    public var isTraining = true
    /// The last stage emits logits (for a logits loss) instead of hidden states.
    public var emitsLogits = false

    /// A model with weights drawn from `seed`.
    public init(config: ModelConfig, seed: UInt64) throws {
        try config.validate()
        self.config = config
        var g = SplitMix64(seed: seed)
        embedTokens = Embedding(vocabularySize: config.vocabularySize, dimension: config.hiddenSize, generator: &g)
        var blocks: [DecoderBlock] = []
        for _ in 0..<config.layers {
            blocks.append(try DecoderBlock(hiddenSize: config.hiddenSize, heads: config.heads,
                                           intermediateSize: config.intermediateSize, generator: &g))
        }
        layers = blocks
        norm = RMSNorm(dimension: config.hiddenSize)
        lmHead = Linear(inFeatures: config.hiddenSize, outFeatures: config.vocabularySize, generator: &g)
        mtp = try config.mtpConfig.map {
            try MTPModule(config: $0, hiddenSize: config.hiddenSize, heads: config.heads,
                          intermediateSize: config.intermediateSize, generator: &g)
        }
    }

    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        var out = embedTokens.namedParameters(prefix: "model.embed_tokens")
        for (i, b) in layers.enumerated() { out += b.namedParameters(prefix: "model.layers.\(i)") }
        out += norm.namedParameters(prefix: "model.norm")
        out += lmHead.namedParameters(prefix: "lm_head")
        if let mtp {
            for (name, p) in mtp.namedParameters() {
                // "layers.{i}.rest" → "model.layers.{L + i}.rest"
                let parts = name.split(separator: ".", maxSplits: 2)
                let index = Int(parts[1])! + config.layers
                out.append((name: "model.layers.\(index).\(parts[2])", parameter: p))
            }
        }
        return out
    }

    // MARK: MTPLossModel

    public var lmHeadWeight: Tensor? { lmHead.weight.value }
    public var mtpConfig: MTPConfig? { config.mtpConfig }
    public var mtpOutputsAreLogits: Bool { emitsLogits }

    // MARK: Forward

    /// The final-norm hidden states `[B, S, H]` of the main trunk.
    public func trunk(_ ids: Tensor, positions: Tensor, seqIdx: Tensor?, caches: [KVCache]? = nil) throws -> Tensor {
        var x = try embedTokens(ids)
        for (i, block) in layers.enumerated() {
            x = try block(x, positions: positions, seqIdx: seqIdx, cache: caches?[i])
        }
        return try norm(x)
    }

    /// The last-stage output tuple of SPEC §4: `(hidden or logits, *mtpOutputs, seqIdx Int32 [B, S])`.
    public func callAsFunction(_ ids: Tensor, positions: Tensor, seqIdx: Tensor) throws -> PipelineOutput {
        let hidden = try trunk(ids, positions: positions, seqIdx: seqIdx)
        var mtpOut: [Tensor] = []
        if let mtp {
            mtpOut = try mtp(hidden: hidden, input: .tokenIDs(ids, embed: { try self.embedTokens($0) }),
                             positions: positions, seqIdx: seqIdx)
        }
        if emitsLogits {
            let logits = try lmHead(hidden)
            let mtpLogits = try mtpOut.map { try lmHead($0) }
            return .tuple(first: logits, rest: mtpLogits + [seqIdx.cast(to: .int32)])
        }
        return .tuple(first: hidden, rest: mtpOut + [seqIdx.cast(to: .int32)])
    }
}
