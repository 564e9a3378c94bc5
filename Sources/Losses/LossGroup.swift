// The ranks a vocabulary-parallel loss spans, and which rows of the vocabulary each holds.
//
// Letters: V vocabulary, T ranks in the group, r a rank, q = ⌊V/T⌋, e = V mod T.
// The vocabulary is split into T contiguous blocks of rows, the first e one row longer:
//   offset(r) = r·q + min(r, e),   count(r) = q + [r < e]
// so a vocabulary not divisible by T is handled, not padded: no rank holds a row that
// is not a real token, and the single-process weight is the concatenation of the shards.
// (Megatron-LM pads the vocabulary to a multiple of T instead; padding would change the
// checkpoint layout and add dead logits that must be masked out of the softmax.)
//
// The loss module needs only this protocol, not MPI: `Distributed` adapts a communicator.

@_spi(Kernels) import Tensors

/// The group of ranks one vocabulary-parallel loss spans (a sub-communicator).
///
/// Every collective must be called by every rank of the group in the same order with
/// buffers of the same size (MPI's rule); a rank that deviates hangs the group.
public protocol LossGroup: AnyObject, Sendable {
    /// This process's index in the group, `0 ..< size`.
    var rank: Int { get }
    /// The number of ranks T.
    var size: Int { get }
    /// Rank r's `values` at `[r·n ..< (r+1)·n]` of the result, for every r (n = `values.count`,
    /// the same on every rank).
    func allGather(_ values: [Float]) throws -> [Float]
    /// Replaces `buffer` on every rank by the element-wise sum over the ranks.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
}

/// Which contiguous rows `[offset, offset + count)` of a `V`-row vocabulary one rank of `T` holds.
///
/// Edge cases: `V` not divisible by `T` gives the first `V mod T` ranks one row more;
/// `V < T` is refused (a rank would hold nothing).
public struct VocabularyShard: Sendable, Equatable {
    /// The whole vocabulary V.
    public let vocabularySize: Int
    /// The number of shards T.
    public let parts: Int
    /// This shard's rank r.
    public let rank: Int

    /// The shard of `rank` among `parts`.
    ///
    /// - Throws: ``LossError/invalidArgument(_:)`` unless `1 <= parts <= vocabularySize` and
    ///   `0 <= rank < parts`.
    public init(vocabularySize: Int, parts: Int, rank: Int) throws {
        guard parts >= 1, vocabularySize >= parts else {
            throw LossError.invalidArgument("a vocabulary of \(vocabularySize) rows cannot be split over \(parts) ranks (need 1 <= T <= V)")
        }
        guard rank >= 0, rank < parts else {
            throw LossError.invalidArgument("vocabulary shard rank \(rank) is outside 0..<\(parts)")
        }
        self.vocabularySize = vocabularySize
        self.parts = parts
        self.rank = rank
    }

    /// The shard this rank of `group` holds.
    ///
    /// - Throws: as ``init(vocabularySize:parts:rank:)``.
    public init(vocabularySize: Int, group: any LossGroup) throws {
        try self.init(vocabularySize: vocabularySize, parts: group.size, rank: group.rank)
    }

    /// The first row of rank `r`'s shard.
    public func offset(of r: Int) -> Int {
        let q = vocabularySize / parts, e = vocabularySize % parts
        return r * q + Swift.min(r, e)
    }

    /// The rows rank `r` holds.
    public func range(of r: Int) -> Range<Int> { offset(of: r) ..< offset(of: r + 1) }

    /// This rank's rows.
    public var range: Range<Int> { range(of: rank) }
    /// This rank's first row.
    public var offset: Int { offset(of: rank) }
    /// This rank's row count.
    public var count: Int { range.count }
    /// The longest shard, ⌈V/T⌉: sizes every rank must agree on (chunk rows) derive from it.
    public var maxCount: Int { (vocabularySize + parts - 1) / parts }

    /// The rank whose shard holds `id`.
    public func owner(of id: Int) -> Int {
        let q = vocabularySize / parts, e = vocabularySize % parts
        let long = e * (q + 1)
        return id < long ? id / (q + 1) : e + (id - long) / q
    }

    /// Rows `range` of `tensor` along `axis` (a copy): this rank's shard of a full tensor.
    ///
    /// - Throws: ``TensorError`` when `tensor.shape[axis] != vocabularySize`.
    public func slice(_ tensor: Tensor, axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + tensor.rank : axis
        guard a >= 0, a < tensor.rank, tensor.shape[a] == vocabularySize else {
            throw LossError.shapeMismatch("cannot take vocabulary shard \(rank)/\(parts) of shape \(tensor.shape) along axis \(axis): expected \(vocabularySize) entries")
        }
        return try tensor.sliced(axis: a, range)
    }
}

extension Tensor {
    /// This tensor unchanged, whose gradient is summed over `group` in backward (Megatron-LM's
    /// "copy to tensor-parallel region"): the input of a vocabulary-parallel head, whose
    /// partial gradients `dlogits_r · W_r` add up to the full one.
    ///
    /// - Parameter group: the ranks that each hold one vocabulary shard of the head.
    /// - Returns: the same values; every rank must back-propagate through it.
    public func summingGradient(over group: any LossGroup) -> Tensor {
        detached().recording([self]) { g in
            var values = g.floats
            try values.withUnsafeMutableBufferPointer { try group.allReduceSum($0) }
            return [Tensor.makeFloat(g.shape) { p in for i in values.indices { p[i] = values[i] } }]
        }
    }
}
