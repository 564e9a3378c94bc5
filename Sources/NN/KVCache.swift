// The keys and values one attention layer has already computed for one sequence,
// for decoding (see Attention+Inference.swift for the attention that reads them).
//
// Legend: n heads, d head dimension, H = n·d, L cached positions, C capacity (≥ L, a
// multiple of 8).
//
// Layout: a decoding step attends each query row to the L cached keys of every head.
// With keys token-major ([L, H]) every score is a d-long dot product ending in a
// horizontal sum. Stored per head and per dimension ([n, d, C]), eight consecutive
// keys' components sit side by side, so eight scores are d vector multiply-adds
// (Σ_c q[c] · Kᵀ[c, j..<j+8]), and a main step got about a quarter faster. Values stay
// token-major ([C, H]): each key adds its weight times one contiguous d-long row.
// Speculative decoding rolls rejected positions back with `truncate(to:)`; the storage
// stays, so appending again reuses it.

import CRowKernels
import Tensors

/// The past keys (rotated) and values of one attention layer for one sequence (use one
/// cache per layer), read by ``Attention/Frozen``.
///
/// Storage grows at least twofold when full, so appending a position costs amortised O(1) copies.
public final class KVCache {
    /// The number of heads n.
    public let heads: Int
    /// The per-head dimension d.
    public let headDimension: Int
    /// The number of cached positions L.
    public private(set) var length = 0
    /// Positions the storage holds (a multiple of 8, so 8-wide reads of the last block stay inside).
    public private(set) var capacity = 0
    private var keyStorage = RowBuffer()
    private var valueStorage = RowBuffer()

    /// An empty cache for `heads` heads of `headDimension` (both positive).
    public init(heads: Int, headDimension: Int) {
        precondition(heads > 0 && headDimension > 0, "KVCache needs positive sizes, got \(heads) heads of \(headDimension)")
        self.heads = heads
        self.headDimension = headDimension
    }

    /// H = n · d, the floats of one position's keys (or values).
    public var width: Int { heads * headDimension }

    /// `Kᵀ` of `head`: d rows of ``capacity`` floats, row c holding component c of every position.
    public func keys(head: Int) -> UnsafePointer<Float> {
        UnsafePointer(keyStorage.pointer + head * headDimension * capacity)
    }

    /// The values, token-major: position j's H floats start at `values + j · H`.
    public var values: UnsafePointer<Float> { UnsafePointer(valueStorage.pointer) }

    /// Appends `count` positions from token-major `[count, H]` rows.
    ///
    /// - Parameters:
    ///   - k: the new positions' keys, already rotated to their positions.
    ///   - v: their values.
    ///   - count: the number of positions.
    public func append(keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count: Int) {
        reserve(length + count)
        mtp_kv_append(keyStorage.pointer, valueStorage.pointer, capacity, width, length, k, v, count)
        length += count
    }

    /// Forgets the positions from `newLength` on (speculative decoding rolls rejected drafts
    /// back this way); the storage stays.
    ///
    /// - Parameter newLength: the number of positions to keep.
    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` unless `0 ≤ newLength ≤ length`.
    public func truncate(to newLength: Int) throws {
        guard newLength >= 0 && newLength <= length else {
            throw TensorError.invalidArgument("KVCache.truncate(to: \(newLength)) is outside 0...\(length)")
        }
        length = newLength
    }

    /// Forgets every position (a new sequence); the storage stays.
    public func reset() { length = 0 }

    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = (Swift.max(needed, 2 * capacity, 64) + 7) / 8 * 8
        let d = headDimension, h = width
        let newKeys = RowBuffer(capacity: heads * d * newCapacity)
        for row in 0..<(heads * d) where length > 0 {
            (newKeys.pointer + row * newCapacity).update(from: keyStorage.pointer + row * capacity, count: length)
        }
        valueStorage.reserve(newCapacity * h, keeping: length * h)
        keyStorage = newKeys
        capacity = newCapacity
    }
}
