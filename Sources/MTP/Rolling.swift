// Rolling helpers of SPEC §1: rollTensor, shiftPackedTensor, seqIdx(fromCuSeqlens:length:).

import Losses
import Tensors

/// Rolls `tensor` along `dim` by `shifts` (negative = toward index 0) and zero-fills the
/// `|shifts|` positions that wrapped around, so nothing wraps (the seed's `roll_tensor`).
///
/// `shifts == 0` or an empty dim returns the tensor unchanged. Differentiable.
///
/// - Throws: ``MTPError`` for a `dim` out of range.
public func rollTensor(_ tensor: Tensor, shifts: Int = -1, dim: Int = -1) throws -> Tensor {
    let axis = try normalizedDim(dim, rank: tensor.rank)
    let n = tensor.shape[axis]
    if shifts == 0 || n == 0 { return tensor }
    // Clamp |shifts| to n before rolling: beyond that everything is zero-filled anyway,
    // and `abs`/negation of Int.min would trap.
    let k = Int(Swift.min(shifts.magnitude, UInt(n)))
    let rolled = try tensor.rolled(shifts: shifts < 0 ? -k : k, axis: axis)
    let wrapped = shifts < 0 ? Array((n - k)..<n) : Array(0..<k)
    return try rolled.indexFilled(axis: axis, index: Tensor(wrapped.map { Int64($0) }), value: 0)
}

func normalizedDim(_ dim: Int, rank: Int) throws -> Int {
    let d = dim < 0 ? dim + rank : dim
    guard d >= 0, d < rank else { throw MTPError.invalidArgument("dim \(dim) is out of range for a tensor of rank \(rank)") }
    return d
}

/// Shifts a packed tensor left by `depth` along `seqDim` without crossing sub-sequence
/// boundaries (the seed's `shift_packed_tensor`): the value at token `t` becomes the
/// value at `t + depth` when `t + depth < S` and, if `seqIdx` is given,
/// `seqIdx[t + depth] == seqIdx[t]`; otherwise `fillValue`. Differentiable.
///
/// - Parameters:
///   - seqIdx: optional `[B, S]` sub-sequence index (equality classes matter).
/// - Throws: ``MTPError`` when the rank is < 2, `depth <= 0`, `batchDim == seqDim`,
///   a dim is out of range, or `seqIdx` is not `[B, S]`.
public func shiftPackedTensor(_ tensor: Tensor, depth: Int, seqIdx: Tensor? = nil, fillValue: Double = 0,
                              batchDim: Int = 0, seqDim: Int = 1) throws -> Tensor {
    guard tensor.rank >= 2 else { throw MTPError.shapeMismatch("shiftPackedTensor needs rank >= 2, got shape \(tensor.shape)") }
    guard depth > 0 else { throw MTPError.invalidArgument("shiftPackedTensor depth must be > 0, got \(depth)") }
    let b = try normalizedDim(batchDim, rank: tensor.rank), s = try normalizedDim(seqDim, rank: tensor.rank)
    guard b != s else { throw MTPError.invalidArgument("batchDim and seqDim must differ, both are \(batchDim)") }
    let bsz = tensor.shape[b], len = tensor.shape[s]
    if let seqIdx, seqIdx.shape != [bsz, len] {
        throw MTPError.shapeMismatch("seq_idx shape \(seqIdx.shape) must be [B, S] = [\(bsz), \(len)]")
    }
    // Work in [B, S, rest...] order, then restore the caller's axis order.
    let rest = (0..<tensor.rank).filter { $0 != b && $0 != s }
    let order = [b, s] + rest
    var inverse = [Int](repeating: 0, count: order.count)
    for (i, a) in order.enumerated() { inverse[a] = i }
    let x = try tensor.permuted(order)
    var keepFlags = [Bool](repeating: false, count: bsz * len)
    let ids = seqIdx?.int64s
    for i in 0..<bsz {
        for t in 0..<len where depth < len - t {  // t + depth < len, without overflow
            keepFlags[i * len + t] = ids.map { $0[i * len + t + depth] == $0[i * len + t] } ?? true
        }
    }
    var maskShape = [bsz, len]
    maskShape += rest.map { _ in 1 }
    let keep = try Tensor(keepFlags, shape: maskShape)
    let shifted = try x.rolled(shifts: -Swift.min(depth, len), axis: 1)
    let fill = Tensor.full([], value: fillValue, dtype: tensor.dtype)
    return try Tensor.where(keep, shifted, fill).cast(to: tensor.dtype).permuted(inverse)
}

/// The per-token sub-sequence index of a packed stream of length `length` from its
/// cumulative sequence lengths `cuSeqlens` (`[n + 1]` or `[1, n + 1]`).
///
/// Position `p` gets the number of entries of `cuSeqlens[1...]` that are `<= p` (a right
/// searchsorted): a token exactly on a boundary belongs to the next sequence, and
/// positions past the last entry (tail padding) get `n`. Result: Int64 `[length]`.
///
/// - Throws: ``MTPError`` when `cuSeqlens` is not an integer `[n + 1]`/`[1, n + 1]` tensor.
public func seqIdx(fromCuSeqlens cuSeqlens: Tensor, length: Int) throws -> Tensor {
    var cu = cuSeqlens
    if cu.rank == 2 && cu.shape[0] == 1 { cu = try cu.squeezed(axis: 0) }
    guard cu.rank == 1, cu.shape[0] >= 1 else {
        throw MTPError.shapeMismatch("cu_seqlens must have shape [n+1] or [1, n+1], got \(cuSeqlens.shape)")
    }
    guard cu.dtype.isInteger else { throw MTPError.invalidDType("cu_seqlens must be an integer tensor, got \(cu.dtype)") }
    let boundaries = try cu.sliced(axis: 0, 1..<cu.shape[0])
    return try boundaries.searchsorted(Tensor.arange(0, length), right: true)
}
