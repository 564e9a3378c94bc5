// The buffers of incremental decoding: a growable Float32 buffer, the rotary cos/sin
// table, and the per-layer key/value cache of the decoding engine.
//
// Legend: n heads, d head dimension, H = n·d, L cached positions, C capacity (≥ L, a
// multiple of 8).
//
// Why not NN's KVCache: a decoding step attends each query row to the L cached keys of
// every head. With keys token-major ([L, H], as KVCache holds them) every score is a
// d-long dot product ending in a horizontal sum. Stored per head and per dimension
// ([n, d, C]), eight consecutive keys' components sit side by side, so eight scores are
// d vector multiply-adds (Σ_c q[c] · Kᵀ[c, j..<j+8]), and a main step got about a
// quarter faster. Values stay token-major ([C, H]): each key adds its weight times one
// contiguous d-long row.

import Foundation

/// A growable Float32 buffer reused across calls (new storage is zero-filled).
final class DecodingBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(capacity: Int = 0) {
        self.capacity = capacity
        pointer = .allocate(capacity: Swift.max(1, capacity))
        pointer.initialize(repeating: 0, count: Swift.max(1, capacity))
    }

    deinit { pointer.deallocate() }

    /// Makes room for `count` floats; the first `keeping` are preserved across a move.
    func reserve(_ count: Int, keeping: Int = 0) {
        guard count > capacity else { return }
        let newCapacity = Swift.max(count, 2 * capacity, 64)
        let fresh = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity)
        fresh.initialize(repeating: 0, count: newCapacity)
        if keeping > 0 { fresh.update(from: pointer, count: Swift.min(keeping, capacity)) }
        pointer.deallocate()
        pointer = fresh
        capacity = newCapacity
    }
}

/// The cos/sin of every position used so far (`[position, d/2]`), formed as the NN
/// module's rotary table forms them (angles in Double), grown on demand.
final class RotaryCache {
    let half: Int
    let inverseFrequencies: [Double]
    private(set) var positions = 0
    let cos = DecodingBuffer()
    let sin = DecodingBuffer()

    init(headDimension: Int, base: Double) {
        half = headDimension / 2
        inverseFrequencies = (0..<half).map { Foundation.pow(base, -Double(2 * $0) / Double(headDimension)) }
    }

    /// Makes positions `0 ..< count` available.
    func reserve(_ count: Int) {
        guard count > positions else { return }
        let target = Swift.max(count, 2 * positions, 64)
        cos.reserve(target * half, keeping: positions * half)
        sin.reserve(target * half, keeping: positions * half)
        for p in positions..<target {
            for i in 0..<half {
                let angle = Double(p) * inverseFrequencies[i]
                cos.pointer[p * half + i] = Float(Foundation.cos(angle))
                sin.pointer[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        positions = target
    }
}

/// One attention layer's cached keys (per head and dimension, `[n, d, C]`) and values
/// (token-major, `[C, H]`) for a single sequence.
final class DecodingCache {
    let heads: Int
    let headDimension: Int
    /// The number of cached positions L.
    private(set) var length = 0
    /// Positions the storage holds (a multiple of 8, so 8-wide reads of the last block stay inside).
    private(set) var capacity = 0
    private(set) var keys = DecodingBuffer()
    private(set) var values = DecodingBuffer()

    init(heads: Int, headDimension: Int) {
        self.heads = heads
        self.headDimension = headDimension
    }

    var width: Int { heads * headDimension }

    /// `Kᵀ` of `head`: `d` rows of ``capacity`` floats, row c holding component c of every position.
    func keys(head: Int) -> UnsafePointer<Float> { UnsafePointer(keys.pointer + head * headDimension * capacity) }

    /// Appends `count` positions from token-major `[count, H]` rows (keys already rotated).
    func append(keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count: Int) {
        reserve(length + count)
        let d = headDimension, h = width
        for t in 0..<count {
            let row = k + t * h, position = length + t
            for head in 0..<heads {
                let base = keys.pointer + head * d * capacity + position
                for c in 0..<d { base[c * capacity] = row[head * d + c] }
            }
        }
        (values.pointer + length * h).update(from: v, count: count * h)
        length += count
    }

    /// Keeps the first `newLength` positions. Precondition: `0 ≤ newLength ≤ length`.
    func truncate(to newLength: Int) {
        precondition(newLength >= 0 && newLength <= length, "DecodingCache.truncate(to: \(newLength)) outside 0...\(length)")
        length = newLength
    }

    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = (Swift.max(needed, 2 * capacity, 64) + 7) / 8 * 8
        let d = headDimension, h = width
        let newKeys = DecodingBuffer(capacity: heads * d * newCapacity)
        for row in 0..<(heads * d) where length > 0 {
            (newKeys.pointer + row * newCapacity).update(from: keys.pointer + row * capacity, count: length)
        }
        values.reserve(newCapacity * h, keeping: length * h)
        keys = newKeys
        capacity = newCapacity
    }
}
