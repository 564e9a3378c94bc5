// The reusable Float32 buffers of the layers' inference path (decoding a few rows at
// a time, no autograd): a growable row buffer, and the scratch a decoder block's
// inference forward writes its intermediates into.
//
// Legend: M rows of a call, H hidden size, I intermediate size.
// One scratch serves every block of a model: blocks run one after another, and each
// reads only what it wrote itself. Every buffer is reserved for one row past the M
// rows of a call (the "spare row" the layers' docs ask of their callers): projections
// once padded three-row GEMMs to four there; `Linear.Frozen` no longer does, and the
// slack is kept only so callers written against that contract stay valid.

import Tensors

/// A growable Float32 buffer reused across calls (new storage is zero-filled and starts on a
/// 64-byte cache line, so the row kernel's 16-float weight lines never straddle two).
public final class RowBuffer {
    /// The storage; moves when ``reserve(_:keeping:)`` grows it.
    public private(set) var pointer: UnsafeMutablePointer<Float>
    /// The number of floats the storage holds.
    public private(set) var capacity: Int

    /// A zero-filled buffer of `capacity` floats.
    public init(capacity: Int = 0) {
        self.capacity = capacity
        pointer = Self.allocate(Swift.max(1, capacity))
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        return p.initializeMemory(as: Float.self, repeating: 0, count: count)
    }

    /// A copy of `tensor`'s values as Float32, in its row-major order.
    public convenience init(copying tensor: Tensor) {
        let values = tensor.floats
        self.init(capacity: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: $0.count) }
    }

    deinit { pointer.deallocate() }

    /// Makes room for `count` floats; the first `keeping` are preserved across a move.
    public func reserve(_ count: Int, keeping: Int = 0) {
        guard count > capacity else { return }
        let newCapacity = Swift.max(count, 2 * capacity, 64)
        let fresh = Self.allocate(newCapacity)
        if keeping > 0 { fresh.update(from: pointer, count: Swift.min(keeping, capacity)) }
        pointer.deallocate()
        pointer = fresh
        capacity = newCapacity
    }
}

/// The intermediates of a decoder block's inference forward (see ``DecoderBlock/Frozen``),
/// shared by all the blocks of a model.
public final class InferenceScratch {
    /// A norm's output rows `[M, H]`.
    let normed = RowBuffer()
    /// Rotated queries of the output rows `[M, H]`.
    let q = RowBuffer()
    /// Rotated keys `[M, H]` before they enter the cache.
    let k = RowBuffer()
    /// Values `[M, H]` before they enter the cache.
    let v = RowBuffer()
    /// Attention outputs of the output rows `[M, H]`, before the output projection.
    let attended = RowBuffer()
    /// Gate projections `[M, I]`, then silu(gate) ⊙ up in place.
    let gate = RowBuffer()
    /// Up projections `[M, I]`.
    let up = RowBuffer()
    /// One query's attention scores over the cached positions.
    let scores = RowBuffer()

    private var reserved = (rows: 0, hidden: 0, intermediate: 0)

    /// Empty scratch; the blocks grow it to the largest call.
    public init() {}

    /// Makes room for `m` rows and the spare row.
    @inline(__always)
    func reserve(rows m: Int, hidden h: Int, intermediate i: Int) {
        guard m + 1 > reserved.rows || h > reserved.hidden || i > reserved.intermediate else { return }
        reserved = (Swift.max(m + 1, reserved.rows), Swift.max(h, reserved.hidden), Swift.max(i, reserved.intermediate))
        for b in [normed, q, k, v, attended] { b.reserve(reserved.rows * reserved.hidden) }
        gate.reserve(reserved.rows * reserved.intermediate)
        up.reserve(reserved.rows * reserved.intermediate)
    }
}
