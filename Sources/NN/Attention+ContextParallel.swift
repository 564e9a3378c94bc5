// Context-parallel attention: every row's S tokens are split over C ranks in contiguous
// chunks of L = S / C, and rank c computes the attention of its own queries — the all-gather
// form of context parallelism used to train Llama 3.
//
// Letters: B rows, S = C·L tokens a row, H width, n heads, d = H / n, c this rank.
// Forward: q, k, v of the local chunk (rotary at the tokens' global positions); one
// all-gather of [k | v] over the group; rank c keeps the first Sk = (c + 1)·L keys (causality:
// no query of chunk c sees a later chunk), so its queries are the last L of the Sk key
// positions, exactly the shape the fused kernel (ScaledDotProductAttention.swift) takes.
// The document mask compares the query's and the key's ids in the *global* seqIdx [B, S].
// Backward: the kernel gives dq (local) and dK, dV for all Sk gathered keys; chunk r of them
// belongs to rank r, so one reduce-scatter (sum) of [dK | dV] padded with zeros for the
// chunks c never saw returns each rank the gradient of its own keys and values.
//
// Contiguous chunks, not Megatron-LM's load-balanced "zigzag" split (chunks c and 2C−1−c):
// with causal attention rank C−1 does C times the attention work of rank 0, which zigzag
// would even out; it needs a kernel whose queries are not a suffix of the keys (left).

@_spi(Kernels) import Tensors

/// The ranks one row's tokens are split over, as context-parallel attention needs them.
///
/// Every collective must be called by every rank in the same order with the same sizes.
public protocol SequenceGroup: AnyObject, Sendable {
    /// This rank's chunk c, `0 ..< size`.
    var rank: Int { get }
    /// The number of chunks C.
    var size: Int { get }
    /// Rank r's `values` at `[r·n ..< (r+1)·n]` of the result for every r.
    func allGather(_ values: [Float]) throws -> [Float]
    /// The element-wise sum over the ranks of `values` (C·n elements), block `rank` of it (n elements).
    func reduceScatterSum(_ values: [Float]) throws -> [Float]
}

extension Attention {
    /// Whether this call takes the context-parallel path: a group of more than one rank and a
    /// global `seqIdx` C times as long as the local chunk `x`.
    func isContextParallel(_ x: Tensor, seqIdx: Tensor?) -> Bool {
        guard let group = contextGroup, group.size > 1, let s = seqIdx?.shape.last else { return false }
        return s == group.size * x.shape[1]
    }

    /// The attention of this rank's chunk `x` `[B, L, H]` (its `positions` `[B, L]` global)
    /// over the keys of every chunk up to its own, masked by the global `seqIdx` `[B, C·L]`.
    ///
    /// - Throws: ``Tensors/TensorError`` for mismatched shapes; the group's communication errors.
    func contextParallelAttention(_ x: Tensor, positions: Tensor, seqIdx: Tensor, group: any SequenceGroup) throws -> Tensor {
        let (b, l, d, h) = (x.shape[0], x.shape[1], headDimension, hiddenSize)
        let c = group.rank, sk = (c + 1) * l, s = group.size * l
        let table = try RotaryTable(rotary, positions: positions, batch: b, length: l)
        let local = HeadLayout.tokensFirst(heads: heads, length: l, dimension: d)
        let gathered = HeadLayout.tokensFirst(heads: heads, length: sk, dimension: d)
        let q = table.apply(try qProj(x), layout: local)
        let k = table.apply(try kProj(x), layout: local)
        let v = try vProj(x)
        let queryDocuments = try DocumentIDs(try seqIdx.sliced(axis: 1, (c * l)..<(c * l + l)), batch: b, length: l)
        let keyDocuments = try DocumentIDs(seqIdx, batch: b, length: s)
        let block = b * l * h
        let all = try group.allGather(k.float32Values().floats + v.float32Values().floats)
        // [B, Sk, H] keys and values in global order: chunk r of row i from rank r's block.
        let keys = Tensor.makeFloat([b, sk, h]) { kp in
            for r in 0...c { copyChunk(from: all, at: r * 2 * block, to: kp, chunk: r, rows: b, l: l, h: h, sk: sk) }
        }
        let values = Tensor.makeFloat([b, sk, h]) { vp in
            for r in 0...c { copyChunk(from: all, at: r * 2 * block + block, to: vp, chunk: r, rows: b, l: l, h: h, sk: sk) }
        }
        let shape = AttentionShape(batch: b, heads: heads, queries: l, keys: sk, dimension: d)
        let qf = q.float32Values()
        let probabilities = Tensor.uninitialized([shape.pairs, l, sk], dtype: .float32)
        let out = Tensor.makeFloat([b, l, h]) { o in
            AttentionKernel.forward(q: qf.floatPointer, local, k: keys.floatPointer, gathered, v: values.floatPointer, gathered,
                                    out: o, local, probabilities: probabilities.floatPointer, shape: shape,
                                    queryDocuments: queryDocuments, keyDocuments: keyDocuments)
        }.rounded(to: DType.promoted(q.dtype, DType.promoted(k.dtype, v.dtype)))
        let attended = out.recording([q, k, v]) { g in
            let gf = g.float32Values()
            let dq = Tensor.uninitialized([b, l, h], dtype: .float32)
            let dk = Tensor.uninitialized([b, sk, h], dtype: .float32)
            let dv = Tensor.uninitialized([b, sk, h], dtype: .float32)
            AttentionKernel.backward(gradOut: gf.floatPointer, local, probabilities: probabilities.floatPointer,
                                     q: qf.floatPointer, local, k: keys.floatPointer, gathered, v: values.floatPointer, gathered,
                                     dq: dq.floatPointer, dk: dk.floatPointer, dv: dv.floatPointer, shape: shape)
            // Block r of the reduce-scatter is rank r's [dK | dV]; chunks after c stay zero here.
            var send = [Float](repeating: 0, count: group.size * 2 * block)
            send.withUnsafeMutableBufferPointer { sp in
                for r in 0...c {
                    for i in 0..<b {
                        let src = i * sk * h + r * l * h, dst = r * 2 * block + i * l * h
                        (sp.baseAddress! + dst).update(from: dk.floatPointer + src, count: l * h)
                        (sp.baseAddress! + dst + block).update(from: dv.floatPointer + src, count: l * h)
                    }
                }
            }
            let mine = try group.reduceScatterSum(send)
            return [dq, try Tensor(Array(mine[0..<block]), shape: [b, l, h]), try Tensor(Array(mine[block...]), shape: [b, l, h])]
        }
        return try oProj(attended)
    }
}

/// Copies chunk `r` (`[B, L, H]` at `offset` of a gathered buffer) into rows `[r·L, (r+1)·L)` of `[B, Sk, H]`.
private func copyChunk(from all: [Float], at offset: Int, to out: UnsafeMutablePointer<Float>, chunk r: Int,
                       rows b: Int, l: Int, h: Int, sk: Int) {
    all.withUnsafeBufferPointer { src in
        for i in 0..<b {
            (out + i * sk * h + r * l * h).update(from: src.baseAddress! + offset + i * l * h, count: l * h)
        }
    }
}
