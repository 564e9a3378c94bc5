// A small DeepSeek-V3-style causal LM with MTP heads:
//   embed → L decoder blocks → final RMSNorm → LM head, plus an MTPModule of D depths
// sharing the embedding and the head. Parameter names follow the Hugging Face
// DeepSeek-V3 checkpoint keys; the MTP sublayers come after the main layers
// (`model.layers.{L + i}.enorm.weight`, …, `….final_layernorm.weight`).
// With tied word embeddings the LM head wraps the embedding's own Parameter: one
// tensor, listed once (as `model.embed_tokens.weight`), so the optimizer updates it
// once, and autograd adds the head's and the embedding's gradients into it.
// The tensor forward here is the training path; decoding (the Generation module)
// strings the same layers' frozen inference path (DecoderBlock.Frozen and its KVCache)
// together, so there is no cache argument here.

import Foundation
import Losses
import MTP
import NN
import Tensors

/// The causal LM with MTP heads.
public final class CausalLM: Layer, MTPLossModel {
    public let config: ModelConfig
    public let embedTokens: Embedding
    public let layers: [DecoderBlock]
    public let norm: RMSNorm
    /// The LM head; with ``ModelConfig/tieWordEmbeddings`` it shares `embedTokens.weight`.
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
                                           keyValueHeads: config.keyValueHeads, intermediateSize: config.intermediateSize,
                                           ropeBase: config.ropeTheta, normEpsilon: config.rmsNormEpsilon, generator: &g))
        }
        layers = blocks
        norm = RMSNorm(dimension: config.hiddenSize, epsilon: config.rmsNormEpsilon)
        if config.tieWordEmbeddings {
            lmHead = try Linear(weight: embedTokens.weight)
        } else {
            lmHead = Linear(inFeatures: config.hiddenSize, outFeatures: config.vocabularySize, generator: &g)
        }
        mtp = try config.mtpConfig.map {
            try MTPModule(config: $0, hiddenSize: config.hiddenSize, heads: config.heads, keyValueHeads: config.keyValueHeads,
                          intermediateSize: config.intermediateSize, ropeBase: config.ropeTheta,
                          normEpsilon: config.rmsNormEpsilon, generator: &g)
        }
    }

    /// The layers under their Hugging Face DeepSeek-V3 keys: `model.embed_tokens`,
    /// `model.layers.{i}`, `model.norm`, `lm_head` (absent when tied: its weight is the
    /// embedding's), then the MTP sublayers as `model.layers.{L + d · patternLength + i}`.
    public var children: [(key: String, layer: any Layer)] {
        var out: [(key: String, layer: any Layer)] = [("model.embed_tokens", embedTokens)]
        for (i, block) in layers.enumerated() { out.append(("model.layers.\(i)", block)) }
        out.append(("model.norm", norm))
        if !config.tieWordEmbeddings { out.append(("lm_head", lmHead)) }
        out += mtp?.children(firstSublayer: config.layers, under: "model.layers") ?? []
        return out
    }

    /// Every decoder block: the trunk's, then each MTP depth's.
    public var decoderBlocks: [DecoderBlock] { layers + (mtp?.depths.flatMap(\.blocks) ?? []) }

    /// Whether every decoder block (trunk and MTP depths) keeps only its input in a training
    /// forward and is recomputed in the backward pass (``NN/DecoderBlock/recomputesInBackward``):
    /// less activation memory for one more forward of the blocks, the same gradients bit for bit.
    public var recomputesBlocks: Bool {
        get { decoderBlocks.contains { $0.recomputesInBackward } }
        set { for block in decoderBlocks { block.recomputesInBackward = newValue } }
    }

    // MARK: MTPLossModel

    public var lmHeadWeight: Tensor? { lmHead.weight.value }
    public var mtpConfig: MTPConfig? { config.mtpConfig }
    public var mtpOutputsAreLogits: Bool { emitsLogits }

    // MARK: Forward

    /// The final-norm hidden states `[B, S, H]` of the main trunk.
    public func trunk(_ ids: Tensor, positions: Tensor, seqIdx: Tensor?) throws -> Tensor {
        var x = try embedTokens(ids)
        for block in layers {
            x = try block(x, positions: positions, seqIdx: seqIdx)
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
