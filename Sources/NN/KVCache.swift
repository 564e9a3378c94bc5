// The keys and values an attention layer has already computed, for generation:
// each call appends the new tokens' (rotated) keys and values, and the new
// queries attend to everything cached.

@_spi(Kernels) import Tensors

/// The past keys, values and document ids of one attention layer (use one cache per layer).
///
/// Storage is `[B, capacity, heads·d]` Float32 that doubles when full, so appending a
/// token costs amortised O(1) copies. Only for inference: ``Attention`` throws when
/// given a cache while gradients are being recorded.
public final class KVCache {
    /// The number of tokens cached per batch row.
    public private(set) var length = 0
    /// The batch size fixed by the first append (0 while empty).
    public private(set) var batch = 0
    /// heads · d, fixed by the first append.
    private(set) var width = 0
    private(set) var capacity = 0
    private(set) var keys = ScratchBuffer(count: 0)
    private(set) var values = ScratchBuffer(count: 0)
    /// `[B, capacity]` document ids of the cached tokens.
    private(set) var documents: [Int64] = []

    /// An empty cache.
    public init() {}

    /// Forgets every cached token (the next append may use another batch size).
    public func reset() {
        length = 0
        batch = 0
        width = 0
        capacity = 0
        keys = ScratchBuffer(count: 0)
        values = ScratchBuffer(count: 0)
        documents = []
    }

    /// Forgets the tokens from `newLength` on, keeping the first `newLength` of every row
    /// (speculative decoding rolls rejected drafts back this way). The buffers, batch size
    /// and width stay, so appending again reuses the storage.
    ///
    /// - Parameter newLength: the number of tokens to keep per row.
    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` unless `0 ≤ newLength ≤ length`.
    public func truncate(to newLength: Int) throws {
        guard newLength >= 0 && newLength <= length else {
            throw TensorError.invalidArgument("KVCache.truncate(to: \(newLength)) is outside 0...\(length)")
        }
        length = newLength
    }

    /// Appends `t` tokens per row.
    ///
    /// - Parameters:
    ///   - k, v: Float32 `[batch, t, width]` values.
    ///   - documentIDs: `[batch · t]` ids of the new tokens.
    /// - Throws: ``Tensors/TensorError/shapeMismatch(_:)`` when batch or width differ from the cached ones.
    func append(keys k: Tensor, values v: Tensor, documentIDs: [Int64]) throws {
        let (b, t, w) = (k.shape[0], k.shape[1], k.shape[2])
        if length == 0 && capacity == 0 {
            batch = b
            width = w
        }
        guard b == batch, w == width else {
            throw TensorError.shapeMismatch("KVCache holds batch \(batch) × width \(width), appending [\(b), \(t), \(w)]")
        }
        reserve(length + t)
        let kp = k.float32Values().floatPointer, vp = v.float32Values().floatPointer
        for row in 0..<b {
            (keys.pointer + (row * capacity + length) * w).update(from: kp + row * t * w, count: t * w)
            (values.pointer + (row * capacity + length) * w).update(from: vp + row * t * w, count: t * w)
            for i in 0..<t { documents[row * capacity + length + i] = documentIDs[row * t + i] }
        }
        length += t
    }

    /// Grows the buffers to hold at least `needed` tokens per row, keeping the cached ones.
    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = Swift.max(needed, 2 * capacity, 16)
        let newKeys = ScratchBuffer(count: batch * newCapacity * width)
        let newValues = ScratchBuffer(count: batch * newCapacity * width)
        var newDocuments = [Int64](repeating: 0, count: batch * newCapacity)
        for row in 0..<batch where length > 0 {
            (newKeys.pointer + row * newCapacity * width).update(from: keys.pointer + row * capacity * width, count: length * width)
            (newValues.pointer + row * newCapacity * width).update(from: values.pointer + row * capacity * width, count: length * width)
            for i in 0..<length { newDocuments[row * newCapacity + i] = documents[row * capacity + i] }
        }
        keys = newKeys
        values = newValues
        documents = newDocuments
        capacity = newCapacity
    }

    /// The layout of the cached keys and values for `heads` heads.
    func layout(heads: Int) -> HeadLayout {
        HeadLayout(batch: capacity * width, head: width / heads, row: width, heads: heads)
    }
}
