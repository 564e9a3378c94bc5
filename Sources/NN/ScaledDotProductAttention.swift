// Causal scaled dot-product attention with a document mask, as one fused
// autograd node (forward and backward side by side).
//
// Legend: B batch, n heads, g key/value heads (n a multiple of g), Sq queries, Sk keys
// (Sk ≥ Sq: the queries are the last Sq of the Sk positions), d head dimension, c = 1/√d.
// Grouped-query attention: query head h reads key/value head h / (n/g); g = n is plain
// multi-head attention. Query i sits at key position
// i + Sk − Sq and may see key j when j ≤ i + Sk − Sq and doc(j) = doc(i).
// Forward, per (batch, head), as FlashAttention: a block of query rows walks the key tiles
// its rows may see with a running max and sum, so S = c·Q·Kᵀ and P = softmax(S) never
// exist beyond one tile:
//   O = P·V                               [Sq, d]
//   lse = log Σ_j exp(S_ij) over the visible keys        [Sq], kept for the backward
// Backward, with G = ∂L/∂O (FlashAttention-2), per (batch, key/value head):
//   P = exp(S − lse) again, tile by tile;  dP = G·Vᵀ;  D = rowsum(G ⊙ O)
//   dS = P ⊙ (dP − D)                     (softmax Jacobian; masked entries have P = 0)
//   dQ = c · dS·K,  dK = c · dSᵀ·Q,  dV = Pᵀ·G
// A key/value head shared by a group of query heads gets the sum of the group's dK, dV,
// added in head order by the one thread that owns it: results do not depend on threads.
// The tile loops are C (CRowKernels/attention_kernels.c: AVX-512, AVX2 or generic, chosen
// at run time). Which keys a block may see comes from per-row spans (KeySpans): causality
// bounds each row's keys above, and a row's document bounds them below by its first key,
// so tiles outside every span are skipped; inside a span, keys of other documents
// (non-contiguous ids) are masked one by one.
//
// Memory kept from forward to backward: O (the output itself) and lse, B·n·Sq floats.

import CRowKernels
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

/// For every query row, the keys its mask can leave visible: `[lo, hi)`, and whether all of
/// them are (`pure`; otherwise the kernel compares document ids key by key).
///
/// hi is one past the row's own key position (causality); lo is the first key of the row's
/// document (0 without documents; hi when no key of it comes first). A row is pure when
/// every key in `[lo, hi)` has its id, as for contiguous documents.
final class KeySpans: @unchecked Sendable {
    let lo: UnsafeMutablePointer<Int32>
    let hi: UnsafeMutablePointer<Int32>
    /// nil: every row is pure.
    let pure: UnsafeMutablePointer<UInt8>?
    let queryIDs: UnsafeMutablePointer<Int64>?
    let keyIDs: UnsafeMutablePointer<Int64>?
    /// Offsets of batch row b: spans at b·rowStride, query ids at b·queryStride, key ids at b·keyStride.
    let rowStride: Int
    let queryStride: Int
    let keyStride: Int

    init(shape: AttentionShape, queryDocuments: DocumentIDs?, keyDocuments: DocumentIDs?) {
        let sq = shape.queries, sk = shape.keys, shift = sk - sq
        precondition(sq >= 0 && sk >= sq && sk < Int(Int32.max), "attention spans: \(sq) queries, \(sk) keys")
        guard let queryDocuments, let keyDocuments else {
            (rowStride, queryStride, keyStride) = (0, 0, 0)
            lo = .allocate(capacity: Swift.max(1, sq))
            hi = .allocate(capacity: Swift.max(1, sq))
            lo.initialize(repeating: 0, count: sq)
            for i in 0..<sq { (hi + i).initialize(to: Int32(i + shift + 1)) }
            (pure, queryIDs, keyIDs) = (nil, nil, nil)
            return
        }
        let shared = queryDocuments.batchStride == 0 && keyDocuments.batchStride == 0
        let rows = shared ? 1 : shape.batch
        (rowStride, queryStride, keyStride) = (shared ? 0 : sq, queryDocuments.batchStride, keyDocuments.batchStride)
        let qIDs = UnsafeMutablePointer<Int64>.allocate(capacity: Swift.max(1, queryDocuments.ids.count))
        let kIDs = UnsafeMutablePointer<Int64>.allocate(capacity: Swift.max(1, keyDocuments.ids.count))
        qIDs.initialize(from: queryDocuments.ids, count: queryDocuments.ids.count)
        kIDs.initialize(from: keyDocuments.ids, count: keyDocuments.ids.count)
        let lo = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(1, rows * sq))
        let hi = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(1, rows * sq))
        let pure = UnsafeMutablePointer<UInt8>.allocate(capacity: Swift.max(1, rows * sq))
        var runStart = [Int](repeating: 0, count: sk)
        for b in 0..<rows {
            let keys = kIDs + b * keyDocuments.batchStride, queries = qIDs + b * queryDocuments.batchStride
            // One dictionary entry per run of equal ids, one look-up per run of query ids.
            var first: [Int64: Int] = [:]
            for j in 0..<sk {
                if j > 0 && keys[j] == keys[j - 1] {
                    runStart[j] = runStart[j - 1]
                } else {
                    runStart[j] = j
                    if first[keys[j]] == nil { first[keys[j]] = j }
                }
            }
            var lastID: Int64?, start = 0
            for i in 0..<sq {
                let own = i + shift, id = queries[i], at = b * sq + i
                if id != lastID { (lastID, start) = (id, first[id] ?? sk) }
                let from = Swift.min(start, own + 1)
                (lo + at).initialize(to: Int32(from))
                (hi + at).initialize(to: Int32(own + 1))
                (pure + at).initialize(to: keys[own] == id && runStart[own] <= from ? 1 : 0)
            }
        }
        (self.lo, self.hi, self.pure, queryIDs, keyIDs) = (lo, hi, pure, qIDs, kIDs)
    }

    deinit {
        lo.deallocate()
        hi.deallocate()
        pure?.deallocate()
        queryIDs?.deallocate()
        keyIDs?.deallocate()
    }

    /// A unit of batch row b with these spans and sizes; the caller sets the data pointers.
    func unit(batch b: Int, heads: Int, shape: AttentionShape) -> mtp_attention_unit {
        var u = mtp_attention_unit()
        u.queries = shape.queries
        u.keys = shape.keys
        u.dim = shape.dimension
        u.heads = heads
        u.scale = shape.scale
        u.lo = UnsafePointer(lo + b * rowStride)
        u.hi = UnsafePointer(hi + b * rowStride)
        u.pure = pure.map { UnsafePointer($0 + b * rowStride) }
        u.query_ids = queryIDs.map { UnsafePointer($0 + b * queryStride) }
        u.key_ids = keyIDs.map { UnsafePointer($0 + b * keyStride) }
        return u
    }
}

/// The fused kernels; pointers are Float32, laid out as their `HeadLayout`s say (any row
/// stride: q, k, v may be column slices of one packed projection output).
///
/// The forward runs (batch, head) pairs in parallel, the backward (batch, key/value head)
/// units, each on one thread from start to end; the C kernel calls no BLAS.
enum AttentionKernel {
    /// O = softmax(c·Q·Kᵀ + mask)·V, with the log-sum-exp of every row's scores written to
    /// `logSumExp` (`[B, n, Sq]` contiguous; −inf for a row that sees no key, whose O is 0).
    /// Every element of `out`'s `[B, n, Sq, d]` is written.
    static func forward(q: UnsafePointer<Float>, _ ql: HeadLayout, k: UnsafePointer<Float>, _ kl: HeadLayout,
                        v: UnsafePointer<Float>, _ vl: HeadLayout, out: UnsafeMutablePointer<Float>, _ ol: HeadLayout,
                        logSumExp: UnsafeMutablePointer<Float>, shape: AttentionShape,
                        queryDocuments: DocumentIDs?, keyDocuments: DocumentIDs?,
                        variant: Int32 = mtp_attention_variant()) {
        precondition(shape.keys >= shape.queries, "attention needs at least as many keys as queries")
        precondition((queryDocuments == nil) == (keyDocuments == nil), "document ids for queries and keys go together")
        let spans = KeySpans(shape: shape, queryDocuments: queryDocuments, keyDocuments: keyDocuments)
        let sq = shape.queries, heads = shape.heads
        Parallel.forEachBlock(count: shape.pairs) { pairs in
            let workspace = ScratchBuffer(count: mtp_attention_workspace(shape.keys, shape.dimension))
            for pair in pairs {
                let b = pair / heads, h = pair % heads, kvHead = shape.keyValueHead(h)
                var u = spans.unit(batch: b, heads: 1, shape: shape)
                u.q = q + ql.offset(batch: b, head: h)
                u.q_row = ql.row
                u.k = k + kl.offset(batch: b, head: kvHead)
                u.k_row = kl.row
                u.v = v + vl.offset(batch: b, head: kvHead)
                u.v_row = vl.row
                u.o = out + ol.offset(batch: b, head: h)
                u.o_row = ol.row
                u.lse = logSumExp + pair * sq
                mtp_attention_forward_variant(variant, &u, workspace.pointer)
            }
        }
    }

    /// Writes dQ, dK, dV (laid out like Q, K, V; every element, nothing read) from
    /// G = ∂L/∂O, the forward's output O and its `logSumExp`.
    static func backward(gradOut g: UnsafePointer<Float>, _ gl: HeadLayout, out o: UnsafePointer<Float>, _ ol: HeadLayout,
                         logSumExp: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, _ ql: HeadLayout, k: UnsafePointer<Float>, _ kl: HeadLayout,
                         v: UnsafePointer<Float>, _ vl: HeadLayout,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         shape: AttentionShape, queryDocuments: DocumentIDs?, keyDocuments: DocumentIDs?,
                         variant: Int32 = mtp_attention_variant()) {
        precondition(shape.keys >= shape.queries, "attention needs at least as many keys as queries")
        precondition((queryDocuments == nil) == (keyDocuments == nil), "document ids for queries and keys go together")
        let spans = KeySpans(shape: shape, queryDocuments: queryDocuments, keyDocuments: keyDocuments)
        let sq = shape.queries, groups = shape.keyValueHeads, group = shape.group
        Parallel.forEachBlock(count: shape.batch * groups) { units in
            let workspace = ScratchBuffer(count: mtp_attention_workspace(shape.keys, shape.dimension))
            for unit in units {
                let b = unit / groups, kvHead = unit % groups, h = kvHead * group
                var u = spans.unit(batch: b, heads: group, shape: shape)
                u.q = q + ql.offset(batch: b, head: h)
                u.q_row = ql.row
                u.q_head = ql.head
                u.k = k + kl.offset(batch: b, head: kvHead)
                u.k_row = kl.row
                u.v = v + vl.offset(batch: b, head: kvHead)
                u.v_row = vl.row
                u.o = UnsafeMutablePointer(mutating: o + ol.offset(batch: b, head: h))
                u.o_row = ol.row
                u.o_head = ol.head
                u.lse = UnsafeMutablePointer(mutating: logSumExp + (b * shape.heads + h) * sq)
                u.lse_head = sq
                u.dout = g + gl.offset(batch: b, head: h)
                u.dout_row = gl.row
                u.dout_head = gl.head
                u.dq = dq + ql.offset(batch: b, head: h)
                u.dq_row = ql.row
                u.dq_head = ql.head
                u.dk = dk + kl.offset(batch: b, head: kvHead)
                u.dk_row = kl.row
                u.dv = dv + vl.offset(batch: b, head: kvHead)
                u.dv_row = vl.row
                mtp_attention_backward_variant(variant, &u, workspace.pointer)
            }
        }
    }

    /// Self-attention (Sq = Sk), as one autograd node: queries laid out as `queryLayout`,
    /// keys and values (one shape) as `keyLayout`.
    static func selfAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, queryLayout: HeadLayout, keyLayout: HeadLayout,
                              shape: AttentionShape, documents: DocumentIDs?) -> Tensor {
        let layout = queryLayout
        let qf = q.float32Values(), kf = k.float32Values(), vf = v.float32Values()
        let logSumExp = Tensor.uninitialized([shape.pairs, shape.queries], dtype: .float32)
        let exact = Tensor.makeFloat(q.shape) { o in
            forward(q: qf.floatPointer, layout, k: kf.floatPointer, keyLayout, v: vf.floatPointer, keyLayout,
                    out: o, layout, logSumExp: logSumExp.floatPointer, shape: shape,
                    queryDocuments: documents, keyDocuments: documents)
        }
        let out = exact.rounded(to: DType.promoted(q.dtype, DType.promoted(k.dtype, v.dtype)))
        let qShape = q.shape, kShape = k.shape
        return out.recording([q, k, v]) { g in
            let gf = g.float32Values()
            let dq = Tensor.uninitialized(qShape, dtype: .float32)
            let dk = Tensor.uninitialized(kShape, dtype: .float32)
            let dv = Tensor.uninitialized(kShape, dtype: .float32)
            backward(gradOut: gf.floatPointer, layout, out: exact.floatPointer, layout, logSumExp: logSumExp.floatPointer,
                     q: qf.floatPointer, layout, k: kf.floatPointer, keyLayout, v: vf.floatPointer, keyLayout,
                     dq: dq.floatPointer, dk: dk.floatPointer, dv: dv.floatPointer, shape: shape,
                     queryDocuments: documents, keyDocuments: documents)
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
