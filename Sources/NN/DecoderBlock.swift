// A pre-norm transformer decoder layer (Llama / DeepSeek-V3 dense layer):
//   h   = x + attn(norm₁(x))
//   out = h + mlp(norm₂(h))

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

    /// A block with weights drawn from `generator` (attention first, then the MLP).
    ///
    /// - Parameters:
    ///   - hiddenSize: H, divisible by `heads` with an even quotient.
    ///   - heads: the number of attention heads.
    ///   - intermediateSize: the MLP's inner size (positive).
    ///   - ropeBase: the rotary frequency base.
    ///   - normEpsilon: the RMSNorm epsilon.
    ///   - std: the standard deviation of the projections' normal initialisation.
    ///   - generator: the seeded source of the initial weights.
    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` when the sizes do not fit.
    public init(hiddenSize: Int, heads: Int, intermediateSize: Int, ropeBase: Double = 10_000,
                normEpsilon: Float = 1e-6, std: Float = 0.02, generator: inout SplitMix64) throws {
        guard intermediateSize > 0 else {
            throw TensorError.invalidArgument("DecoderBlock: intermediate size must be positive, got \(intermediateSize)")
        }
        inputLayernorm = RMSNorm(dimension: hiddenSize, epsilon: normEpsilon)
        selfAttn = try Attention(hiddenSize: hiddenSize, heads: heads, ropeBase: ropeBase, std: std, generator: &generator)
        postAttentionLayernorm = RMSNorm(dimension: hiddenSize, epsilon: normEpsilon)
        mlp = MLP(hiddenSize: hiddenSize, intermediateSize: intermediateSize, std: std, generator: &generator)
    }

    /// The sub-layers under their Hugging Face keys, in checkpoint order.
    public var children: [(key: String, layer: any Layer)] {
        [("input_layernorm", inputLayernorm), ("self_attn", selfAttn),
         ("post_attention_layernorm", postAttentionLayernorm), ("mlp", mlp)]
    }

    /// `h = x + attn(norm(x)); h + mlp(norm(h))`.
    ///
    /// - Parameters:
    ///   - x: `[B, S, H]`.
    ///   - positions: integer position ids `[B, S]` (or `[1, S]`).
    ///   - seqIdx: integer document ids `[B, S]` (or `[1, S]`); nil means one document per row.
    ///   - cache: this block's ``KVCache`` for incremental decoding (inference only, see
    ///     ``Attention/callAsFunction(_:positions:seqIdx:cache:)``).
    /// - Returns: `[B, S, H]`.
    /// - Throws: ``Tensors/TensorError`` for mismatched shapes or dtypes.
    public func callAsFunction(_ x: Tensor, positions: Tensor, seqIdx: Tensor? = nil, cache: KVCache? = nil) throws -> Tensor {
        let h = try x + selfAttn(inputLayernorm(x), positions: positions, seqIdx: seqIdx, cache: cache)
        return try h + mlp(postAttentionLayernorm(h))
    }
}
