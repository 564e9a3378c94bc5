// Context-parallel attention: every row's S tokens are split over C ranks, and rank c
// computes the attention of its own queries — the all-gather form of context parallelism
// used to train Llama 3.
//
// Letters: B rows, S tokens a row, C ranks, m = S / 2C, H width, n heads, d = H / n.
// The split (SequenceSplit) is Megatron-LM's load-balanced "zigzag": the row is cut into 2C
// chunks of m tokens and rank c holds chunks c and 2C−1−c, so with causal attention every
// rank has the same work ((c + 1) + (2C − c) chunks of keys), where contiguous chunks would
// give the last rank C times the first's.
// Forward: q, k, v of the local 2m tokens (rotary at their global positions); one all-gather
// of [k | v] over the group, put back in global order [B, S, H]; then for each local chunk a
// its m queries against the first (a + 1)·m keys — the queries are the last m of those key
// positions, exactly the shape the fused kernel (ScaledDotProductAttention.swift) takes. The
// document mask compares the query's and the key's ids in the *global* seqIdx [B, S].
// Backward: the kernel gives dq (local) and dK, dV for the keys each chunk saw; chunk j of
// their sum belongs to the rank holding chunk j, so one reduce-scatter (sum) returns each
// rank the gradient of its own keys and values.

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

/// How context parallelism cuts a row of S tokens over C ranks: 2C chunks of S / 2C tokens,
/// rank c holding chunks c and 2C−1−c (Megatron-LM's load-balanced "zigzag" split).
public struct SequenceSplit: Sendable, Equatable {
    /// The ranks C.
    public let ranks: Int
    /// The row length S.
    public let length: Int

    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` unless `ranks >= 1` and `length`
    ///   is a positive multiple of `2 · ranks`.
    public init(ranks: Int, length: Int) throws {
        guard ranks >= 1, length > 0, length % (2 * ranks) == 0 else {
            throw TensorError.invalidArgument("a row of \(length) tokens cannot be split into 2 × \(ranks) equal chunks for context parallelism")
        }
        self.ranks = ranks
        self.length = length
    }

    /// Tokens in one chunk, S / 2C.
    public var chunk: Int { length / (2 * ranks) }

    /// The two token ranges rank `r` holds, in the order it holds them.
    public func ranges(of r: Int) -> [Range<Int>] {
        let m = chunk
        return [(r * m)..<(r * m + m), ((2 * ranks - 1 - r) * m)..<((2 * ranks - r) * m)]
    }

    /// Rank `r`'s tokens of `tensor` along `axis` (its two chunks, concatenated).
    ///
    /// - Throws: ``Tensors/TensorError`` when the axis is not S long.
    public func local(_ tensor: Tensor, rank r: Int, axis: Int = 1) throws -> Tensor {
        guard tensor.shape[axis] == length else {
            throw TensorError.shapeMismatch("context split of \(length) tokens applied to shape \(tensor.shape) along axis \(axis)")
        }
        return try Tensor.concatenated(ranges(of: r).map { try tensor.sliced(axis: axis, $0) }, axis: axis)
    }
}

extension Attention {
    /// Whether this call takes the context-parallel path: a group of more than one rank and a
    /// global `seqIdx` C times as long as the local tokens `x`.
    func isContextParallel(_ x: Tensor, seqIdx: Tensor?) -> Bool {
        guard let group = contextGroup, group.size > 1, let s = seqIdx?.shape.last else { return false }
        return s == group.size * x.shape[1]
    }

    /// The attention of this rank's tokens `x` `[B, 2m, H]` (its ``SequenceSplit`` chunks; their
    /// `positions` `[B, 2m]` global) over the keys of every earlier token, masked by the global
    /// `seqIdx` `[B, S]`.
    ///
    /// - Throws: ``Tensors/TensorError`` for mismatched shapes; the group's communication errors.
    func contextParallelAttention(_ x: Tensor, positions: Tensor, seqIdx: Tensor, group: any SequenceGroup) throws -> Tensor {
        // The key/value exchange below lays out full-width keys: grouped-query attention is not
        // supported on this path yet.
        guard keyValueHeads == heads else {
            throw TensorError.invalidArgument("context parallelism needs as many key/value heads as heads, got \(keyValueHeads) of \(heads)")
        }
        let (b, l, d, h) = (x.shape[0], x.shape[1], headDimension, hiddenSize)
        let split = try SequenceSplit(ranks: group.size, length: group.size * l)
        let s = split.length, m = split.chunk, mine = split.ranges(of: group.rank)
        let table = try RotaryTable(rotary, positions: positions, batch: b, length: l)
        let local = HeadLayout.tokensFirst(heads: heads, length: l, dimension: d)
        let global = HeadLayout.tokensFirst(heads: heads, length: s, dimension: d)
        let q = table.apply(try qProj(x), layout: local)
        let k = table.apply(try kProj(x), layout: local)
        let v = try vProj(x)
        let keyDocuments = try DocumentIDs(seqIdx, batch: b, length: s)
        let ids = keyDocuments.ids, rowStride = keyDocuments.batchStride
        let queryDocuments = mine.map { range in
            DocumentIDs(ids: (0..<b).flatMap { i in ids[(i * rowStride + range.lowerBound)..<(i * rowStride + range.upperBound)] },
                        batchStride: m)
        }
        let block = b * l * h
        let all = try group.allGather(k.float32Values().floats + v.float32Values().floats)
        // [B, S, H] keys and values in global order: rank r's half j is chunk ranges(of: r)[j].
        func globalOrder(_ part: Int) -> Tensor {
            Tensor.makeFloat([b, s, h]) { out in
                all.withUnsafeBufferPointer { src in
                    for r in 0..<group.size {
                        for (j, range) in split.ranges(of: r).enumerated() {
                            for i in 0..<b {
                                (out + (i * s + range.lowerBound) * h)
                                    .update(from: src.baseAddress! + r * 2 * block + part * block + (i * l + j * m) * h, count: m * h)
                            }
                        }
                    }
                }
            }
        }
        let keys = globalOrder(0), values = globalOrder(1)
        let shapes = mine.map { AttentionShape(batch: b, heads: heads, keyValueHeads: heads, queries: m, keys: $0.upperBound, dimension: d) }
        let qf = q.float32Values()
        let logSumExp = shapes.map { Tensor.uninitialized([$0.pairs, m], dtype: .float32) }
        let exact = Tensor.makeFloat([b, l, h]) { o in
            for j in 0..<2 {
                AttentionKernel.forward(q: qf.floatPointer + j * m * h, local, k: keys.floatPointer, global,
                                        v: values.floatPointer, global, out: o + j * m * h, local,
                                        logSumExp: logSumExp[j].floatPointer, shape: shapes[j],
                                        queryDocuments: queryDocuments[j], keyDocuments: keyDocuments)
            }
        }
        let out = exact.rounded(to: DType.promoted(q.dtype, DType.promoted(k.dtype, v.dtype)))
        let attended = out.recording([q, k, v]) { g in
            let gf = g.float32Values()
            let dq = Tensor.uninitialized([b, l, h], dtype: .float32)
            // Each chunk's call writes the first keys.count rows of its own buffers; their sum is dK, dV.
            let dk = (0..<2).map { _ in Tensor.zeros([b, s, h]) }, dv = (0..<2).map { _ in Tensor.zeros([b, s, h]) }
            for j in 0..<2 {
                AttentionKernel.backward(gradOut: gf.floatPointer + j * m * h, local, out: exact.floatPointer + j * m * h, local,
                                         logSumExp: logSumExp[j].floatPointer,
                                         q: qf.floatPointer + j * m * h, local, k: keys.floatPointer, global,
                                         v: values.floatPointer, global, dq: dq.floatPointer + j * m * h,
                                         dk: dk[j].floatPointer, dv: dv[j].floatPointer, shape: shapes[j],
                                         queryDocuments: queryDocuments[j], keyDocuments: keyDocuments)
            }
            // Block r of the reduce-scatter is rank r's [dK | dV], its two chunks in its order.
            var send = [Float](repeating: 0, count: group.size * 2 * block)
            send.withUnsafeMutableBufferPointer { sp in
                for r in 0..<group.size {
                    for (j, range) in split.ranges(of: r).enumerated() {
                        for i in 0..<b {
                            let dst = sp.baseAddress! + r * 2 * block + (i * l + j * m) * h, src = (i * s + range.lowerBound) * h
                            for e in 0..<(m * h) {
                                dst[e] = dk[0].floatPointer[src + e] + dk[1].floatPointer[src + e]
                                dst[e + block] = dv[0].floatPointer[src + e] + dv[1].floatPointer[src + e]
                            }
                        }
                    }
                }
            }
            let back = try group.reduceScatterSum(send)
            return [dq, try Tensor(Array(back[0..<block]), shape: [b, l, h]), try Tensor(Array(back[block...]), shape: [b, l, h])]
        }
        return try oProj(attended)
    }
}
