// A frozen Float32 copy of a CausalLM for incremental decoding, made of the layers'
// own frozen inference forms (NN's `Linear.Frozen`, `RMSNorm.Frozen`,
// `DecoderBlock.Frozen`): the maths of every layer lives once, in NN; this file only
// gathers the pieces the engine strings together.
//
// Legend: H hidden size, V vocabulary, D MTP depths.
// Projections are stored transposed, `[in, out]` (see NN's Linear.swift for why); the
// embedding stays `[V, H]`, so a token's row is one contiguous copy.

import Model
import MTP
import NN

/// One MTP depth's weights (see ``MTP/MTPDepth``).
struct DecodingDepth {
    let enorm: RMSNorm.Frozen
    let hnorm: RMSNorm.Frozen
    /// `[2H] → [H]`: inputs 0..<H take enorm(embedding), H..<2H take hnorm(h).
    let ehProj: Linear.Frozen
    let blocks: [DecoderBlock.Frozen]
    let finalNorm: RMSNorm.Frozen

    init(_ depth: MTPDepth) {
        enorm = RMSNorm.Frozen(depth.enorm)
        hnorm = RMSNorm.Frozen(depth.hnorm)
        ehProj = Linear.Frozen(depth.ehProj)
        blocks = depth.blocks.map(DecoderBlock.Frozen.init)
        finalNorm = RMSNorm.Frozen(depth.finalLayernorm)
    }
}

/// The whole model's decoding weights: a snapshot, so training the source model
/// afterwards does not change a ``Generator`` built from it.
struct DecodingWeights {
    let hiddenSize: Int
    let heads: Int
    let vocabularySize: Int
    let intermediateSize: Int
    /// `[V, H]`.
    let embedding: RowBuffer
    let layers: [DecoderBlock.Frozen]
    let norm: RMSNorm.Frozen
    let lmHead: Linear.Frozen
    /// One entry per logical MTP depth (a repeated layer appears D times).
    let depths: [DecodingDepth]

    var headDimension: Int { hiddenSize / heads }

    init(_ model: CausalLM) {
        let c = model.config
        hiddenSize = c.hiddenSize
        heads = c.heads
        vocabularySize = c.vocabularySize
        intermediateSize = c.intermediateSize
        embedding = RowBuffer(copying: model.embedTokens.weight.value)
        layers = model.layers.map(DecoderBlock.Frozen.init)
        norm = RMSNorm.Frozen(model.norm)
        lmHead = Linear.Frozen(model.lmHead)
        if let mtp = model.mtp {
            let physical = mtp.depths.map(DecodingDepth.init)
            depths = (0..<mtp.config.numLayers).map { physical[mtp.config.useRepeatedLayer ? 0 : $0] }
        } else {
            depths = []
        }
    }
}
