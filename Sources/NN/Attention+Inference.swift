// The inference path of Attention: a few new rows of one sequence against its
// KVCache, on raw Float32 rows, without autograd. The training path (Attention.swift,
// ScaledDotProductAttention.swift) is one fused node over whole [B, S] batches; this
// is the same maths for one query row at a time.
//
// Legend: M new rows of a call, H hidden size, n heads, d = H/n, c = 1/√d,
// g key/value heads (query head h reads key/value head h / (n/g)), L0 positions cached
// before the call. The cache holds g heads, so grouped-query attention caches n/g times less.
//
// For M new rows (x already normalised) at positions p0 ..< p0 + M, of which the last
// `outputs` are wanted:
//   k, v = x·Wkᵀ, x·Wvᵀ (all M rows), k rotated, both appended to the cache
//   for the last `outputs` rows only (row r, 0-based among the M):
//     q = rope(x_r·Wqᵀ);  o = softmax(c · q·Kᵀ[0 ..< L0 + r + 1]) · V;  residual_r += o·Woᵀ
// Rows before the last `outputs` are still cached (later tokens attend to them) but skip
// everything that only feeds their own output.
//
// Batch invariance: one query row's attention depends on that row and its visible
// length alone, computed in a fixed order (CRowKernels' attention_row.c, the same on
// every instruction set), so a position's output is bit-identical whether its row is
// decoded alone or among others (speculative verification rests on it).

import CRowKernels
import Tensors

extension Attention {
    /// A frozen Float32 copy of an attention layer for decoding one sequence on raw rows
    /// (no autograd), against a ``KVCache``.
    public struct Frozen {
        /// `q_proj`.
        public let qProj: Linear.Frozen
        /// `k_proj`.
        public let kProj: Linear.Frozen
        /// `v_proj`.
        public let vProj: Linear.Frozen
        /// `o_proj`.
        public let oProj: Linear.Frozen
        /// The number of query heads n.
        public let heads: Int
        /// The number of key/value heads g.
        public let keyValueHeads: Int
        /// d = H / n.
        public let headDimension: Int
        /// The cos/sin of the positions decoded so far.
        public let positions: RotaryEmbedding.PositionTable

        /// A snapshot of `attention`'s weights (later changes to the layer are not seen).
        public init(_ attention: Attention) {
            qProj = Linear.Frozen(attention.qProj)
            kProj = Linear.Frozen(attention.kProj)
            vProj = Linear.Frozen(attention.vProj)
            oProj = Linear.Frozen(attention.oProj)
            heads = attention.heads
            keyValueHeads = attention.keyValueHeads
            headDimension = attention.headDimension
            positions = RotaryEmbedding.PositionTable(attention.rotary)
        }

        /// The hidden size H.
        public var hiddenSize: Int { heads * headDimension }

        /// An empty cache that fits this layer.
        public func makeCache() -> KVCache { KVCache(heads: keyValueHeads, headDimension: headDimension) }

        /// Appends `m` new rows to `cache` and adds the attention output of the last `outputs`
        /// of them to `residual` (see the file header).
        ///
        /// - Parameters:
        ///   - x: `m` normalised rows of H floats, plus a spare row (see ``Linear/Frozen``).
        ///   - m: the number of new rows (positive).
        ///   - outputs: how many of the last rows to compute outputs for, `1 ... m`.
        ///   - firstPosition: the rotary position of row 0.
        ///   - cache: this layer's cache; it gains the `m` rows.
        ///   - residual: `outputs` rows of H floats (plus a spare row), added to.
        ///   - scratch: the working buffers.
        public func callAsFunction(_ x: UnsafePointer<Float>, rows m: Int, outputs: Int, firstPosition: Int, cache: KVCache,
                                   addingInto residual: UnsafeMutablePointer<Float>, scratch: InferenceScratch) {
            precondition(m > 0 && outputs >= 1 && outputs <= m, "Attention.Frozen: \(outputs) outputs of \(m) rows")
            precondition(cache.heads == keyValueHeads && cache.headDimension == headDimension,
                         "Attention.Frozen: a cache of \(cache.heads)×\(cache.headDimension) for \(keyValueHeads)×\(headDimension) heads")
            let h = hiddenSize, first = m - outputs
            scratch.reserve(rows: m, hidden: h, intermediate: 0)
            let q = scratch.q.pointer, k = scratch.k.pointer, v = scratch.v.pointer, attended = scratch.attended.pointer
            kProj(x, rows: m, into: k)
            vProj(x, rows: m, into: v)
            positions.rotate(k, rows: m, heads: keyValueHeads, firstPosition: firstPosition)
            let cached = cache.length
            cache.append(keys: k, values: v, count: m)
            qProj(x + first * h, rows: outputs, into: q)
            positions.rotate(q, rows: outputs, heads: heads, firstPosition: firstPosition + first)
            for r in 0..<outputs {
                Attention.attend(q + r * h, heads: heads, cache: cache, visible: cached + first + r + 1, scores: scratch.scores,
                                 into: attended + r * h)
            }
            oProj(attended, rows: outputs, into: residual, accumulate: true)
        }
    }

    /// One query row of `heads` heads against the first `visible` cached positions of
    /// their key/value heads: softmax(c · q·Kᵀ) · V with c = 1/√d, by the CRowKernels row
    /// kernel. Everything depends on this row and `visible` alone, in a fixed order that
    /// every instruction set follows (see the file header).
    @inline(__always)
    static func attend(_ query: UnsafePointer<Float>, heads: Int, cache: KVCache, visible: Int, scores: RowBuffer,
                       into out: UnsafeMutablePointer<Float>) {
        scores.reserve(mtp_attend_scores_capacity(heads, visible))
        let d = cache.headDimension
        mtp_attend_row(query, heads, cache.heads, d, cache.keys(head: 0), cache.capacity, cache.values, visible,
                       1 / Float(d).squareRoot(), scores.pointer, out)
    }
}
