// The per-row merge of a vocabulary-parallel cross-entropy.
//
// Rank r holds logits z_j for j in its shard V_r. For a row with global target t:
//   m_r = max_{j∈V_r} z_j        s_r = Σ_{j∈V_r} exp(z_j − m_r)        ẑ_r = z_t if t ∈ V_r else 0
// and the row's loss over the whole vocabulary is
//   M = max_r m_r,   S = Σ_r s_r · exp(m_r − M),   loss = (M − z_t) + log S
// with z_t = ẑ_{owner(t)}. Its gradient on rank r's logits needs only (M, log S):
//   ∂loss/∂z_j = exp((z_j − M) − log S) − [j = t]                 (j ∈ V_r)
// so backward is local and the merge runs once per row in forward.
//
// Why one all-gather of (m_r, s_r, ẑ_r) rather than Megatron-LM's all-reduce MAX of m and
// two all-reduce SUMs (of s·exp(m − M) and ẑ): one collective instead of three per chunk
// (one latency, which dominates at the small messages of a chunk of rows: 12 bytes a row),
// and every rank then merges the T triples itself in rank order, so every rank gets the same
// bits whatever order the MPI library reduces in. The cost is (T − 1)·12 bytes a row
// received instead of ≈ 3·2(T − 1)/T·4: the same for T = 2, 1.5× for T = 4 — tens of KiB a
// step at these sizes, against the head's MiBs that never move.

@_spi(Kernels) import Tensors

/// Per-row statistics of a vocabulary shard and their merge over the group.
enum VocabularyParallelMerge {
    /// The rows' merged softmax normaliser and losses.
    struct Rows {
        /// M per row (0 at rows that were not merged).
        var max: [Float]
        /// log S per row.
        var logSum: [Float]
        /// (M − z_t) + log S per row.
        var loss: [Float]
    }

    /// Rank r's partials of one row, `(m_r, s_r, ẑ_r)`, written at `out[0...2]`.
    /// `z` holds the (already softcapped) shard logits; `localTarget < 0` when another rank owns t.
    @inline(__always)
    static func partials(_ z: UnsafeMutablePointer<Float>, _ v: Int, localTarget: Int, into out: UnsafeMutablePointer<Float>) {
        let m = CrossEntropyKernel.rowMax(z, v)
        out[0] = m
        out[1] = CrossEntropyKernel.sumExp(z, v, m, store: false)
        out[2] = localTarget >= 0 ? z[localTarget] : 0
    }

    /// Gathers every rank's partials (`3·rows` floats, rows in the same order on every rank)
    /// and merges them in rank order. Every rank returns the same bits.
    ///
    /// - Parameters:
    ///   - partials: this rank's `(m, s, ẑ)` per row; rows with `targets[i] < 0` are skipped.
    ///   - targets: the global target of each row, or −1 for a row to skip.
    /// - Throws: the group's communication errors.
    static func merge(_ partials: [Float], targets: [Int32], shard: VocabularyShard, group: any LossGroup) throws -> Rows {
        let n = targets.count
        precondition(partials.count == 3 * n, "partials of \(partials.count) floats for \(n) rows")
        let all = try group.size == 1 ? partials : group.allGather(partials)
        let stride = 3 * n, t = shard.parts
        var rows = Rows(max: [Float](repeating: 0, count: n), logSum: [Float](repeating: 0, count: n),
                        loss: [Float](repeating: 0, count: n))
        for i in 0..<n where targets[i] >= 0 {
            // M first (max is exact and order-free), then S in rank order.
            var m = all[3 * i]
            for r in 1..<t { m = Swift.max(m, all[r * stride + 3 * i]) }
            // A NaN logit makes its rank's s_r NaN, so it reaches S and the loss, as in one process.
            var s: Float = 0
            for r in 0..<t {
                let base = r * stride + 3 * i
                s += all[base + 1] * VectorMath.exp(all[base] - m)
            }
            let ls = VectorMath.log(s)
            let zt = all[shard.owner(of: Int(targets[i])) * stride + 3 * i + 2]
            rows.max[i] = m
            rows.logSum[i] = ls
            rows.loss[i] = (m - zt) + ls
        }
        return rows
    }
}
