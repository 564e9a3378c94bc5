// Causal scaled dot-product attention with a document mask, as one fused
// autograd node (forward and backward side by side).
//
// Legend: B batch, n heads, g key/value heads (n a multiple of g), Sq queries, Sk keys
// (Sk ≥ Sq: the queries are the last Sq of the Sk positions), d head dimension, c = 1/√d.
// Grouped-query attention: query head h reads key/value head h / (n/g); g = n is plain
// multi-head attention. Query i sits at key position
// i + Sk − Sq and may see key j when j ≤ i + Sk − Sq and doc(j) = doc(i).
// Forward, per (batch, head):
//   S = c · Q·Kᵀ                          [Sq, Sk]   sgemm
//   P = softmax over the allowed keys of each row (0 elsewhere)
//   O = P·V                               [Sq, d]    sgemm
// Backward, with G = ∂L/∂O:
//   dP = G·Vᵀ                             [Sq, Sk]   sgemm
//   dS = P ⊙ (dP − rowsum(dP ⊙ P))        (softmax Jacobian; masked entries have P = 0)
//   dQ = c · dS·K,  dK = c · dSᵀ·Q,  dV = Pᵀ·G       sgemm ×3
// A key/value head shared by a group of query heads gets the sum of the group's dK, dV:
// the group's first head writes (β = 0), the others add (β = 1), in head order.
// P is kept from the forward ([B, n, Sq, Sk] floats); softmax rows run in parallel.

@_spi(Kernels) import Tensors

/// Element strides of a Float32 buffer read as `[B, n, S, d]` (the head dimension is contiguous).
struct HeadLayout: Sendable, Equatable {
    let batch: Int
    let head: Int
    let row: Int
    let heads: Int

    /// A contiguous `[B, n, S, d]` tensor (PyTorch's attention layout).
    static func headsFirst(heads: Int, length: Int, dimension: Int) -> HeadLayout {
        HeadLayout(batch: heads * length * dimension, head: length * dimension, row: dimension, heads: heads)
    }

    /// A contiguous `[B, S, n, d]` tensor: a projection's `[B, S, n·d]` output read per head, no copy.
    static func tokensFirst(heads: Int, length: Int, dimension: Int) -> HeadLayout {
        HeadLayout(batch: length * heads * dimension, head: dimension, row: heads * dimension, heads: heads)
    }

    func offset(batch b: Int, head h: Int) -> Int { b * batch + h * head }
}

/// Document ids of the rows of a batch, read as `[B, S]`; one row may serve every batch row.
struct DocumentIDs: Sendable {
    let ids: [Int64]
    /// 0 when one row of ids serves every batch row.
    let batchStride: Int

    /// - Throws: when `seqIdx` is not integer `[batch, length]` or `[1, length]`.
    init(_ seqIdx: Tensor, batch: Int, length: Int) throws {
        guard !seqIdx.dtype.isFloatingPoint, seqIdx.dtype != .bool else {
            throw TensorError.unsupportedDType("seqIdx must be int32 or int64, got \(seqIdx.dtype)")
        }
        guard seqIdx.shape == [batch, length] || seqIdx.shape == [1, length] else {
            throw TensorError.shapeMismatch("seqIdx \(seqIdx.shape) does not match [\(batch), \(length)]")
        }
        ids = seqIdx.withInt64Buffer { Array($0) }
        batchStride = seqIdx.shape[0] == 1 ? 0 : length
    }

    init(ids: [Int64], batchStride: Int) {
        self.ids = ids
        self.batchStride = batchStride
    }
}

/// The sizes of one attention call.
struct AttentionShape: Sendable {
    let batch: Int
    let heads: Int
    let keyValueHeads: Int
    let queries: Int
    let keys: Int
    let dimension: Int

    var pairs: Int { batch * heads }
    /// Query heads per key/value head, n / g.
    var group: Int { heads / keyValueHeads }
    /// The key/value head query head `h` reads.
    func keyValueHead(_ h: Int) -> Int { h / group }
    var scale: Float { 1 / Float(dimension).squareRoot() }
    /// Keys visible to query i by causality alone (the document mask may hide some of them).
    func visibleKeys(_ i: Int) -> Int { i + keys - queries + 1 }
}

/// The fused kernels; pointers are Float32, laid out as their `HeadLayout`s say.
///
/// The GEMMs of all (batch, head) pairs are issued one after another from this thread
/// (BLAS threads each one itself); only the row loops between them run on
/// `Parallel.forEachBlock`. Calling a threaded OpenBLAS from several threads at once
/// made its worker threads spin against each other: on 2 cores the block's median time
/// rose tenfold.
enum AttentionKernel {
    /// O = softmax(c·Q·Kᵀ + mask)·V, with P written to `probabilities` (`[B, n, Sq, Sk]`
    /// contiguous; the backward reads it).
    static func forward(q: UnsafePointer<Float>, _ ql: HeadLayout, k: UnsafePointer<Float>, _ kl: HeadLayout,
                        v: UnsafePointer<Float>, _ vl: HeadLayout, out: UnsafeMutablePointer<Float>, _ ol: HeadLayout,
                        probabilities: UnsafeMutablePointer<Float>, shape: AttentionShape,
                        queryDocuments: DocumentIDs?, keyDocuments: DocumentIDs?) {
        precondition(shape.keys >= shape.queries, "attention needs at least as many keys as queries")
        precondition((queryDocuments == nil) == (keyDocuments == nil), "document ids for queries and keys go together")
        let sq = shape.queries, sk = shape.keys, d = shape.dimension, heads = shape.heads
        for pair in 0..<shape.pairs {
            let b = pair / heads, h = pair % heads
            BLAS.sgemm(transA: false, transB: true, m: sq, n: sk, k: d, alpha: shape.scale,
                       a: q + ql.offset(batch: b, head: h), lda: ql.row,
                       b: k + kl.offset(batch: b, head: shape.keyValueHead(h)), ldb: kl.row, beta: 0,
                       c: probabilities + pair * sq * sk, ldc: sk)
        }
        Parallel.forEachBlock(count: shape.pairs * sq, minimumPerBlock: Swift.max(1, 16_384 / Swift.max(1, sk))) { rows in
            for flat in rows {
                let pair = flat / sq, i = flat % sq, b = pair / heads
                let row = probabilities + flat * sk, visible = shape.visibleKeys(i)
                if let queryDocuments, let keyDocuments {
                    let doc = queryDocuments.ids[b * queryDocuments.batchStride + i]
                    keyDocuments.ids.withUnsafeBufferPointer { ids in
                        let base = b * keyDocuments.batchStride
                        for j in 0..<visible where ids[base + j] != doc { row[j] = -.infinity }
                    }
                }
                let m = RowMath.max(row, visible)
                if m == -.infinity {
                    // No visible key (impossible for self-attention: a token sees itself).
                    row.update(repeating: 0, count: sk)
                    continue
                }
                let total = RowMath.expInPlace(row, visible, shift: m)
                RowMath.scale(row, visible, by: 1 / total)
                if visible < sk { (row + visible).update(repeating: 0, count: sk - visible) }
            }
        }
        for pair in 0..<shape.pairs {
            let b = pair / heads, h = pair % heads
            BLAS.sgemm(transA: false, transB: false, m: sq, n: d, k: sk, alpha: 1, a: probabilities + pair * sq * sk, lda: sk,
                       b: v + vl.offset(batch: b, head: shape.keyValueHead(h)), ldb: vl.row, beta: 0,
                       c: out + ol.offset(batch: b, head: h), ldc: ol.row)
        }
    }

    /// Writes dQ, dK, dV (laid out like Q, K, V) from G = ∂L/∂O and the kept P.
    static func backward(gradOut g: UnsafePointer<Float>, _ gl: HeadLayout, probabilities: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, _ ql: HeadLayout, k: UnsafePointer<Float>, _ kl: HeadLayout,
                         v: UnsafePointer<Float>, _ vl: HeadLayout,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         shape: AttentionShape) {
        let sq = shape.queries, sk = shape.keys, d = shape.dimension, heads = shape.heads, scale = shape.scale
        let scratch = ScratchBuffer(count: shape.pairs * sq * sk)
        let ds = scratch.pointer
        // dP = G·Vᵀ.
        for pair in 0..<shape.pairs {
            let b = pair / heads, h = pair % heads
            BLAS.sgemm(transA: false, transB: true, m: sq, n: sk, k: d, alpha: 1, a: g + gl.offset(batch: b, head: h), lda: gl.row,
                       b: v + vl.offset(batch: b, head: shape.keyValueHead(h)), ldb: vl.row, beta: 0,
                       c: ds + pair * sq * sk, ldc: sk)
        }
        // dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place.
        Parallel.forEachBlock(count: shape.pairs * sq, minimumPerBlock: Swift.max(1, 16_384 / Swift.max(1, sk))) { rows in
            for flat in rows {
                let pr = probabilities + flat * sk, dr = ds + flat * sk, visible = shape.visibleKeys(flat % sq)
                let r = RowMath.dot(pr, UnsafePointer(dr), visible)
                for j in 0..<visible { dr[j] = pr[j] * (dr[j] - r) }
                if visible < sk { (dr + visible).update(repeating: 0, count: sk - visible) }
            }
        }
        for pair in 0..<shape.pairs {
            let b = pair / heads, h = pair % heads
            let p = probabilities + pair * sq * sk, dsp = ds + pair * sq * sk
            let gb = g + gl.offset(batch: b, head: h)
            let kvHead = shape.keyValueHead(h), beta: Float = h % shape.group == 0 ? 0 : 1
            BLAS.sgemm(transA: false, transB: false, m: sq, n: d, k: sk, alpha: scale, a: dsp, lda: sk,
                       b: k + kl.offset(batch: b, head: kvHead), ldb: kl.row, beta: 0,
                       c: dq + ql.offset(batch: b, head: h), ldc: ql.row)
            BLAS.sgemm(transA: true, transB: false, m: sk, n: d, k: sq, alpha: scale, a: dsp, lda: sk,
                       b: q + ql.offset(batch: b, head: h), ldb: ql.row, beta: beta,
                       c: dk + kl.offset(batch: b, head: kvHead), ldc: kl.row)
            BLAS.sgemm(transA: true, transB: false, m: sk, n: d, k: sq, alpha: 1, a: p, lda: sk,
                       b: gb, ldb: gl.row, beta: beta, c: dv + vl.offset(batch: b, head: kvHead), ldc: vl.row)
        }
    }

    /// Self-attention (Sq = Sk), as one autograd node: queries laid out as `queryLayout`,
    /// keys and values (one shape) as `keyLayout`.
    static func selfAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, queryLayout: HeadLayout, keyLayout: HeadLayout,
                              shape: AttentionShape, documents: DocumentIDs?) -> Tensor {
        let layout = queryLayout
        let qf = q.float32Values(), kf = k.float32Values(), vf = v.float32Values()
        let probabilities = Tensor.uninitialized([shape.pairs, shape.queries, shape.keys], dtype: .float32)
        let out = Tensor.makeFloat(q.shape) { o in
            forward(q: qf.floatPointer, layout, k: kf.floatPointer, keyLayout, v: vf.floatPointer, keyLayout,
                    out: o, layout, probabilities: probabilities.floatPointer, shape: shape,
                    queryDocuments: documents, keyDocuments: documents)
        }.rounded(to: DType.promoted(q.dtype, DType.promoted(k.dtype, v.dtype)))
        let qShape = q.shape, kShape = k.shape
        return out.recording([q, k, v]) { g in
            let gf = g.float32Values()
            let dq = Tensor.uninitialized(qShape, dtype: .float32)
            let dk = Tensor.uninitialized(kShape, dtype: .float32)
            let dv = Tensor.uninitialized(kShape, dtype: .float32)
            backward(gradOut: gf.floatPointer, layout, probabilities: probabilities.floatPointer,
                     q: qf.floatPointer, layout, k: kf.floatPointer, keyLayout, v: vf.floatPointer, keyLayout,
                     dq: dq.floatPointer, dk: dk.floatPointer, dv: dv.floatPointer, shape: shape)
            return [dq, dk, dv]
        }
    }
}

/// Causal multi-head attention `softmax(q·kᵀ/√d + mask)·v`, where token i attends to
/// tokens j ≤ i of its own document, as one fused autograd node.
///
/// With fewer key/value heads g than query heads n (grouped-query attention), query head
/// h reads key/value head h / (n/g).
///
/// - Parameters:
///   - q: `[B, n, S, d]`, floating point.
///   - k, v: `[B, g, S, d]` with g dividing n, floating point.
///   - seqIdx: integer document ids `[B, S]` (or `[1, S]`); nil means one document per row
///     (plain causal attention).
/// - Returns: `[B, heads, S, d]`.
/// - Throws: ``Tensors/TensorError`` for mismatched shapes or dtypes.
///
/// Edge cases: a token always sees itself, so no row is empty; documents need not be
/// contiguous (a token sees every earlier token with its id).
public func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, seqIdx: Tensor? = nil) throws -> Tensor {
    guard q.rank == 4, k.rank == 4, v.shape == k.shape, k.shape[0] == q.shape[0], k.shape[2] == q.shape[2],
          k.shape[3] == q.shape[3], k.shape[1] > 0, q.shape[1] % k.shape[1] == 0 else {
        throw TensorError.shapeMismatch("scaledDotProductAttention needs q [B, n, S, d] and k, v [B, g, S, d] with g dividing n, got \(q.shape), \(k.shape), \(v.shape)")
    }
    guard q.dtype.isFloatingPoint, k.dtype.isFloatingPoint, v.dtype.isFloatingPoint else {
        throw TensorError.unsupportedDType("scaledDotProductAttention needs floating-point q, k, v, got \(q.dtype), \(k.dtype), \(v.dtype)")
    }
    let (b, heads, groups, s, d) = (q.shape[0], q.shape[1], k.shape[1], q.shape[2], q.shape[3])
    let documents = try seqIdx.map { try DocumentIDs($0, batch: b, length: s) }
    return AttentionKernel.selfAttention(q, k, v, queryLayout: .headsFirst(heads: heads, length: s, dimension: d),
                                         keyLayout: .headsFirst(heads: groups, length: s, dimension: d),
                                         shape: AttentionShape(batch: b, heads: heads, keyValueHeads: groups, queries: s,
                                                               keys: s, dimension: d),
                                         documents: documents)
}
