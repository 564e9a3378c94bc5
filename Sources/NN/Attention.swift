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
        let shape = AttentionShape(batch: b, heads: heads, keyValueHeads: keyValueHeads, queries: s, keys: s, dimension: d)
        // One GEMM for q, k, v; the rotation turns the query and key heads of the packed rows.
        let qkv = try Tensor.fusedLinear(x, weights: [qProj.weight.value, kProj.weight.value, vProj.weight.value])
        let packed = PackedHeads(shape: shape, length: s)
        let rotated = table.applyPacked(qkv, layout: packed.rotatedLayout)
        let o = AttentionKernel.packedSelfAttention(rotated, packed: packed, documents: documents)
        return try oProj(o)
    }
}

/// Where q, k and v sit in one packed projection `[B, S, (n+2g)·d]`: on every token row the
/// n query heads, then the g key heads, then the g value heads.
struct PackedHeads {
    let shape: AttentionShape
    let length: Int

    /// (n + 2g)·d, the packed row.
    var width: Int { (shape.heads + 2 * shape.keyValueHeads) * shape.dimension }
    /// Element offsets of the key and value heads in a row.
    var keyOffset: Int { shape.heads * shape.dimension }
    var valueOffset: Int { (shape.heads + shape.keyValueHeads) * shape.dimension }

    func layout(heads: Int) -> HeadLayout {
        HeadLayout(batch: length * width, head: shape.dimension, row: width, heads: heads)
    }
    /// The query heads (from offset 0).
    var queryLayout: HeadLayout { layout(heads: shape.heads) }
    /// One key or value head group (from ``keyOffset`` or ``valueOffset``).
    var keyLayout: HeadLayout { layout(heads: shape.keyValueHeads) }
    /// The query and key heads together, the ones the rotary embedding turns.
    var rotatedLayout: HeadLayout { layout(heads: shape.heads + shape.keyValueHeads) }
}

extension AttentionKernel {
    /// Self-attention reading q, k, v from one packed `[B, S, (n+2g)·d]` tensor, as one autograd
    /// node whose gradient is packed alike; the output is `[B, S, n·d]`.
    static func packedSelfAttention(_ qkv: Tensor, packed: PackedHeads, documents: DocumentIDs?) -> Tensor {
        let shape = packed.shape, s = packed.length
        let qkvf = qkv.float32Values()
        let outLayout = HeadLayout.tokensFirst(heads: shape.heads, length: s, dimension: shape.dimension)
        let ql = packed.queryLayout, kl = packed.keyLayout
        let base = UnsafePointer(qkvf.floatPointer)
        let q = base, k = base + packed.keyOffset, v = base + packed.valueOffset
        let logSumExp = Tensor.uninitialized([shape.pairs, shape.queries], dtype: .float32)
        // The Float32 output is kept for the backward (D = rowsum(dO ⊙ O)) before any rounding.
        let exact = Tensor.makeFloat([shape.batch, s, shape.heads * shape.dimension]) { o in
            forward(q: q, ql, k: k, kl, v: v, kl, out: o, outLayout, logSumExp: logSumExp.floatPointer,
                    shape: shape, queryDocuments: documents, keyDocuments: documents)
        }
        let packedShape = qkv.shape
        return exact.rounded(to: qkv.dtype).recording([qkv]) { g in
            let gf = g.float32Values()
            let grad = Tensor.uninitialized(packedShape, dtype: .float32)
            let dp = grad.floatPointer
            withExtendedLifetime(qkvf) {
                backward(gradOut: gf.floatPointer, outLayout, out: exact.floatPointer, outLayout,
                         logSumExp: logSumExp.floatPointer, q: q, ql, k: k, kl, v: v, kl,
                         dq: dp, dk: dp + packed.keyOffset, dv: dp + packed.valueOffset, shape: shape,
                         queryDocuments: documents, keyDocuments: documents)
            }
            return [grad]
        }
    }
}
