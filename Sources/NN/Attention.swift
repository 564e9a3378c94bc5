// Multi-head causal self-attention with rotary positions and a document mask
// (Llama / DeepSeek-V3 dense-attention parameter names).
//
// Legend: B batch, S sequence, H hidden size, n heads, d = H / n, g key/value heads
// (grouped-query attention: n a multiple of g; query head h reads key/value head
// h / (n/g); g = n is plain multi-head attention).
// The projections give [B, S, n·d] (queries) and [B, S, g·d] (keys, values); rotary
// embedding and the fused attention kernel read those layouts through strides, so no
// head transpose is copied.
// This is the training path (autograd, whole batches); decoding against a KVCache is
// Attention+Inference.swift.

@_spi(Kernels) import Tensors

/// Multi-head (or grouped-query) causal self-attention.
///
/// Parameter names: `q_proj.weight` and `o_proj.weight` (`[H, H]`), `k_proj.weight` and
/// `v_proj.weight` (`[g·d, H]`), no bias.
public final class Attention: Layer {
    /// Query projection `q_proj`.
    public let qProj: Linear
    /// Key projection `k_proj`.
    public let kProj: Linear
    /// Value projection `v_proj`.
    public let vProj: Linear
    /// Output projection `o_proj`.
    public let oProj: Linear
    /// The rotary embedding of queries and keys.
    public let rotary: RotaryEmbedding
    /// The hidden size H.
    public let hiddenSize: Int
    /// The number of query heads n.
    public let heads: Int
    /// The number of key/value heads g (n is a multiple of g).
    public let keyValueHeads: Int
    /// d = H / n.
    public var headDimension: Int { hiddenSize / heads }
    /// The ranks each row's tokens are split over (context parallelism): when set, a call
    /// with a local chunk and the global `seqIdx` takes the path of Attention+ContextParallel.swift.
    public var contextGroup: (any SequenceGroup)?

    /// An attention layer with projections drawn from `generator` (q, k, v, o in that order).
    ///
    /// - Parameters:
    ///   - hiddenSize: H, divisible by `heads` with an even quotient.
    ///   - heads: the number of query heads.
    ///   - keyValueHeads: the number of key/value heads, dividing `heads`; nil means `heads`.
    ///   - ropeBase: the rotary frequency base.
    ///   - std: the standard deviation of the projections' normal initialisation.
    ///   - generator: the seeded source of the initial weights.
    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` when the sizes do not fit.
    public init(hiddenSize: Int, heads: Int, keyValueHeads: Int? = nil, ropeBase: Double = 10_000, std: Float = 0.02,
                generator: inout SplitMix64) throws {
        guard hiddenSize > 0, heads > 0, hiddenSize % heads == 0 else {
            throw TensorError.invalidArgument("Attention: hidden size \(hiddenSize) is not a positive multiple of \(heads) heads")
        }
        let groups = keyValueHeads ?? heads
        guard groups > 0, heads % groups == 0 else {
            throw TensorError.invalidArgument("Attention: \(heads) heads are not a multiple of \(groups) key/value heads")
        }
        rotary = try RotaryEmbedding(headDimension: hiddenSize / heads, base: ropeBase)
        self.hiddenSize = hiddenSize
        self.heads = heads
        self.keyValueHeads = groups
        let kvWidth = groups * (hiddenSize / heads)
        qProj = Linear(inFeatures: hiddenSize, outFeatures: hiddenSize, std: std, generator: &generator)
        kProj = Linear(inFeatures: hiddenSize, outFeatures: kvWidth, std: std, generator: &generator)
        vProj = Linear(inFeatures: hiddenSize, outFeatures: kvWidth, std: std, generator: &generator)
        oProj = Linear(inFeatures: hiddenSize, outFeatures: hiddenSize, std: std, generator: &generator)
    }

    /// The projections under their Hugging Face keys: `q_proj`, `k_proj`, `v_proj`, `o_proj`.
    public var children: [(key: String, layer: any Layer)] {
        [("q_proj", qProj), ("k_proj", kProj), ("v_proj", vProj), ("o_proj", oProj)]
    }

    /// Attention of every token to the earlier tokens of its own document (itself included).
    ///
    /// For decoding one sequence a few tokens at a time against a cache, see ``Attention/Frozen``.
    ///
    /// - Parameters:
    ///   - x: `[B, S, H]`.
    ///   - positions: integer position ids `[B, S]` (or `[1, S]`) for the rotary embedding.
    ///   - seqIdx: integer document ids `[B, S]` (or `[1, S]`); nil means one document per row.
    /// - Returns: `[B, S, H]`.
    /// - Throws: ``Tensors/TensorError`` for mismatched shapes or dtypes.
    public func callAsFunction(_ x: Tensor, positions: Tensor, seqIdx: Tensor? = nil) throws -> Tensor {
        guard x.rank == 3, x.shape[2] == hiddenSize else {
            throw TensorError.shapeMismatch("Attention(H: \(hiddenSize)) needs [B, S, \(hiddenSize)], got \(x.shape)")
        }
        if isContextParallel(x, seqIdx: seqIdx), let seqIdx, let contextGroup {
            return try contextParallelAttention(x, positions: positions, seqIdx: seqIdx, group: contextGroup)
        }
        let (b, s, d) = (x.shape[0], x.shape[1], headDimension)
        let table = try RotaryTable(rotary, positions: positions, batch: b, length: s)
        let documents = try seqIdx.map { try DocumentIDs($0, batch: b, length: s) }
        let queryLayout = HeadLayout.tokensFirst(heads: heads, length: s, dimension: d)
        let keyLayout = HeadLayout.tokensFirst(heads: keyValueHeads, length: s, dimension: d)
        let q = table.apply(try qProj(x), layout: queryLayout)
        let k = table.apply(try kProj(x), layout: keyLayout)
        let v = try vProj(x)
        let shape = AttentionShape(batch: b, heads: heads, keyValueHeads: keyValueHeads, queries: s, keys: s, dimension: d)
        let o = AttentionKernel.selfAttention(q, k, v, queryLayout: queryLayout, keyLayout: keyLayout, shape: shape,
                                              documents: documents)
        return try oProj(o)
    }
}
