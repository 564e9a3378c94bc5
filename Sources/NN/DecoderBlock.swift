// A pre-norm transformer decoder layer (Llama / DeepSeek-V3 dense layer):
//   h   = x + attn(norm₁(x))
//   out = h + mlp(norm₂(h))
// Two paths, one maths: `callAsFunction` on tensors with autograd (training, full
// recomputation), and ``DecoderBlock/Frozen`` on raw rows of one sequence against a
// KVCache (decoding). The frozen path runs the same norm, rotation and SwiGLU kernels
// as the autograd nodes; its attention reads the cache one query row at a time
// (Attention+Inference.swift). Legend there: M new rows, H hidden size.
// With `recomputesInBackward` the autograd path keeps only the block's input and runs the
// block again in the backward pass (activation checkpointing: Autograd+Checkpoint.swift).

import Tensors

/// A pre-norm decoder block: attention and a SwiGLU MLP, each on a residual branch.
///
/// Parameter names (Hugging Face keys below `model.layers.{i}.`): `input_layernorm.weight`,
/// `self_attn.{q,k,v,o}_proj.weight`, `post_attention_layernorm.weight`,
/// `mlp.{gate,up,down}_proj.weight`.
public final class DecoderBlock: Layer {
    /// The norm before attention, `input_layernorm`.
    public let inputLayernorm: RMSNorm
    /// The attention, `self_attn`.
    public let selfAttn: Attention
    /// The norm before the MLP, `post_attention_layernorm`.
    public let postAttentionLayernorm: RMSNorm
    /// The feed-forward block, `mlp`.
    public let mlp: MLP
    /// Whether a recording forward keeps only the block's input and recomputes the block in
    /// the backward pass (activation checkpointing, `mtp train --recompute`); false keeps
    /// every activation. The gradients are the same bits either way.
    public var recomputesInBackward = false

    /// A block with weights drawn from `generator` (attention first, then the MLP).
    ///
    /// - Parameters:
    ///   - hiddenSize: H, divisible by `heads` with an even quotient.
    ///   - heads: the number of attention (query) heads.
    ///   - keyValueHeads: the number of key/value heads, dividing `heads`; nil means `heads`.
    ///   - intermediateSize: the MLP's inner size (positive).
    ///   - ropeBase: the rotary frequency base.
    ///   - normEpsilon: the RMSNorm epsilon.
    ///   - std: the standard deviation of the projections' normal initialisation.
    ///   - generator: the seeded source of the initial weights.
    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` when the sizes do not fit.
    public init(hiddenSize: Int, heads: Int, keyValueHeads: Int? = nil, intermediateSize: Int, ropeBase: Double = 10_000,
                normEpsilon: Float = 1e-6, std: Float = 0.02, generator: inout SplitMix64) throws {
        guard intermediateSize > 0 else {
            throw TensorError.invalidArgument("DecoderBlock: intermediate size must be positive, got \(intermediateSize)")
        }
        inputLayernorm = RMSNorm(dimension: hiddenSize, epsilon: normEpsilon)
        selfAttn = try Attention(hiddenSize: hiddenSize, heads: heads, keyValueHeads: keyValueHeads, ropeBase: ropeBase,
                                 std: std, generator: &generator)
        postAttentionLayernorm = RMSNorm(dimension: hiddenSize, epsilon: normEpsilon)
        mlp = MLP(hiddenSize: hiddenSize, intermediateSize: intermediateSize, std: std, generator: &generator)
    }

    /// The sub-layers under their Hugging Face keys, in checkpoint order.
    public var children: [(key: String, layer: any Layer)] {
        [("input_layernorm", inputLayernorm), ("self_attn", selfAttn),
         ("post_attention_layernorm", postAttentionLayernorm), ("mlp", mlp)]
    }

    /// `h = x + attn(norm(x)); h + mlp(norm(h))`, recomputed in the backward pass when
    /// ``recomputesInBackward`` (see ``Tensors/checkpointed(_:parameters:_:)``).
    ///
    /// - Parameters:
    ///   - x: `[B, S, H]`.
    ///   - positions: integer position ids `[B, S]` (or `[1, S]`).
    ///   - seqIdx: integer document ids `[B, S]` (or `[1, S]`); nil means one document per row.
    /// - Returns: `[B, S, H]`.
    /// - Throws: ``Tensors/TensorError`` for mismatched shapes or dtypes (when recomputing,
    ///   also from the backward pass; a context-parallel attention's collectives run again there).
    public func callAsFunction(_ x: Tensor, positions: Tensor, seqIdx: Tensor? = nil) throws -> Tensor {
        guard recomputesInBackward else { return try forward(x, positions: positions, seqIdx: seqIdx) }
        return try checkpointed(x, parameters: parameters.map(\.value)) { x in
            try self.forward(x, positions: positions, seqIdx: seqIdx)
        }
    }

    private func forward(_ x: Tensor, positions: Tensor, seqIdx: Tensor?) throws -> Tensor {
        let h = try x + selfAttn(inputLayernorm(x), positions: positions, seqIdx: seqIdx)
        return try h + mlp(postAttentionLayernorm(h))
    }
}

// MARK: - Inference

extension DecoderBlock {
    /// A frozen Float32 copy of a block for decoding one sequence on raw rows (no autograd):
    /// the lean inference path of ``DecoderBlock``, as mlx-swift-lm calls `model(x, cache:)`.
    ///
    /// A class, not a struct: a decoding forward calls every block, and handing a struct of
    /// some twenty buffers to a call retained and released each of them.
    public final class Frozen {
        /// `input_layernorm`.
        public let inputLayernorm: RMSNorm.Frozen
        /// `self_attn`.
        public let selfAttn: Attention.Frozen
        /// `post_attention_layernorm`.
        public let postAttentionLayernorm: RMSNorm.Frozen
        /// `mlp`.
        public let mlp: MLP.Frozen

        /// A snapshot of `block`'s weights (later changes to the block are not seen).
        public init(_ block: DecoderBlock) {
            inputLayernorm = RMSNorm.Frozen(block.inputLayernorm)
            selfAttn = Attention.Frozen(block.selfAttn)
            postAttentionLayernorm = RMSNorm.Frozen(block.postAttentionLayernorm)
            mlp = MLP.Frozen(block.mlp)
        }

        /// The hidden size H.
        public var hiddenSize: Int { selfAttn.hiddenSize }

        /// Every projection, in the order q, k, v, o, gate, up, down.
        public var projections: [Linear.Frozen] {
            [selfAttn.qProj, selfAttn.kProj, selfAttn.vProj, selfAttn.oProj, mlp.gateProj, mlp.upProj, mlp.downProj]
        }

        /// An empty cache that fits this block.
        public func makeCache() -> KVCache { selfAttn.makeCache() }

        /// The block on `m` new rows of the residual stream, in place: every row's key and value
        /// enter `cache`; the last `outputs` rows become the block's output (`h = x + attn(norm(x));
        /// h + mlp(norm(h))`), and the rows before them are left as they were.
        ///
        /// - Parameters:
        ///   - x: `m` rows of H floats, plus a spare row (see ``Linear/Frozen``).
        ///   - m: the number of new rows (positive).
        ///   - outputs: how many of the last rows to compute, `1 ... m`.
        ///   - firstPosition: the rotary position of row 0 (the cache holds the positions before it).
        ///   - cache: this block's cache; it gains the `m` rows.
        ///   - scratch: the working buffers (shared by the blocks of a model).
        public func callAsFunction(_ x: UnsafeMutablePointer<Float>, rows m: Int, outputs: Int, firstPosition: Int,
                                   cache: KVCache, scratch: InferenceScratch) {
            let h = hiddenSize, residual = x + (m - outputs) * h
            scratch.reserve(rows: m, hidden: h, intermediate: mlp.gateProj.outFeatures)
            let normed = scratch.normed.pointer
            inputLayernorm(x, rows: m, into: normed)
            selfAttn(normed, rows: m, outputs: outputs, firstPosition: firstPosition, cache: cache, addingInto: residual,
                     scratch: scratch)
            postAttentionLayernorm(residual, rows: outputs, into: normed)
            mlp(normed, rows: outputs, addingInto: residual, scratch: scratch)
        }
    }
}
