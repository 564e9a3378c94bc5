// Rotary position embedding (Su et al. 2021) in the Hugging Face "rotate_half"
// convention, as one fused autograd node.
//
// Legend: B batch, S sequence, n heads, d head dimension, h = d/2.
// For position p and frequency θᵢ = base^(−2i/d), i < h, the pair (xᵢ, xᵢ₊ₕ) turns by p·θᵢ:
//   yᵢ   = xᵢ·cos − xᵢ₊ₕ·sin
//   yᵢ₊ₕ = xᵢ₊ₕ·cos + xᵢ·sin
// (HF: y = x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁], cos/sin = [c, c]).
// A rotation's Jacobian is the rotation itself, so the backward turns the gradient by −p·θᵢ.
// Angles are formed in Double, so any integer position (MTP rolls them) is exact enough.
// Two kernels hold the maths once: `writeAngles` (the cos/sin of one position) and
// `rotateHalf` (one head's pairs turned). The autograd node (RotaryTable, one table per
// call) uses both; the inference path (``RotaryEmbedding/PositionTable``, grown over the
// positions decoding reaches, rotating rows in place) uses `writeAngles` and turns the
// pairs with CRowKernels' `mtp_rotate_rows`, `rotateHalf`'s operations at the CPU's vector
// width (bit for bit: `RotaryRowKernelTests`).

import CRowKernels
import Foundation
@_spi(Kernels) import Tensors

/// Rotary position embedding of query and key heads.
///
/// Has no parameters; the frequencies are fixed by `headDimension` and `base`.
public struct RotaryEmbedding: Sendable {
    /// The per-head dimension d (even).
    public let headDimension: Int
    /// The frequency base (10 000 in Llama; DeepSeek-V3 and others may differ).
    public let base: Double
    /// θᵢ = base^(−2i/d) for i < d/2.
    let inverseFrequencies: [Double]

    /// - Parameters:
    ///   - headDimension: the per-head dimension; must be even and positive.
    ///   - base: the frequency base (positive).
    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` for an odd or non-positive dimension or a non-positive base.
    public init(headDimension: Int, base: Double = 10_000) throws {
        guard headDimension > 0, headDimension % 2 == 0 else {
            throw TensorError.invalidArgument("RotaryEmbedding: head dimension must be even and positive, got \(headDimension)")
        }
        guard base > 0, base.isFinite else {
            throw TensorError.invalidArgument("RotaryEmbedding: base must be positive and finite, got \(base)")
        }
        self.headDimension = headDimension
        self.base = base
        inverseFrequencies = (0..<(headDimension / 2)).map { Foundation.pow(base, -Double(2 * $0) / Double(headDimension)) }
    }

    /// `x` with every head rotated by its token's position.
    ///
    /// - Parameters:
    ///   - x: `[B, heads, S, headDimension]`, floating point.
    ///   - positions: integer position ids `[B, S]` (or `[1, S]`, shared by every row); any values.
    /// - Returns: the same shape and dtype.
    /// - Throws: ``Tensors/TensorError`` for mismatched shapes or non-integer positions.
    public func callAsFunction(_ x: Tensor, positions: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[3] == headDimension else {
            throw TensorError.shapeMismatch("RotaryEmbedding(d: \(headDimension)) needs [B, heads, S, \(headDimension)], got \(x.shape)")
        }
        let (b, heads, s) = (x.shape[0], x.shape[1], x.shape[2])
        let table = try RotaryTable(self, positions: positions, batch: b, length: s)
        return table.apply(x, layout: HeadLayout.headsFirst(heads: heads, length: s, dimension: headDimension))
    }
}

extension RotaryEmbedding {
    /// cos(p·θᵢ) and sin(p·θᵢ) for i < d/2 into `c` and `s`, the angle formed in Double.
    @inline(__always)
    func writeAngles(position p: Int64, cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>) {
        let pos = Double(p)
        for i in 0..<inverseFrequencies.count {
            let angle = pos * inverseFrequencies[i]
            c[i] = Float(Foundation.cos(angle))
            s[i] = Float(Foundation.sin(angle))
        }
    }
}

/// Turns every pair (xᵢ, xᵢ₊ₕ) of one head by the angles whose cos and sin are given
/// (by minus them when `sign` is −1); `x` may be `y` (in place).
@inline(__always)
func rotateHalf(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, cos c: UnsafePointer<Float>,
                sin sn: UnsafePointer<Float>, half h: Int, sign: Float) {
    for i in 0..<h {
        let x1 = x[i], x2 = x[i + h], cs = c[i], s = sign * sn[i]
        y[i] = x1 * cs - x2 * s
        y[i + h] = x2 * cs + x1 * s
    }
}

/// The cos/sin of every (row, token, frequency) of one call, shared by q and k.
struct RotaryTable {
    let cos: ScratchBuffer   // [Bp, S, h]
    let sin: ScratchBuffer
    let batch: Int
    /// 0 when one row of positions serves every batch row.
    let batchStride: Int
    let length: Int
    let half: Int

    /// - Throws: when `positions` is not integer `[batch, length]` or `[1, length]`.
    init(_ rope: RotaryEmbedding, positions: Tensor, batch: Int, length: Int) throws {
        guard !positions.dtype.isFloatingPoint, positions.dtype != .bool else {
            throw TensorError.unsupportedDType("position ids must be int32 or int64, got \(positions.dtype)")
        }
        guard positions.shape == [batch, length] || positions.shape == [1, length] else {
            throw TensorError.shapeMismatch("position ids \(positions.shape) do not match [\(batch), \(length)]")
        }
        let rows = positions.shape[0], h = rope.headDimension / 2
        self.batch = batch
        self.length = length
        self.half = h
        batchStride = rows == 1 ? 0 : length * h
        cos = ScratchBuffer(count: rows * length * h)
        sin = ScratchBuffer(count: rows * length * h)
        let c = cos.pointer, sn = sin.pointer
        positions.withInt64Buffer { p in
            for t in 0..<(rows * length) { rope.writeAngles(position: p[t], cos: c + t * h, sin: sn + t * h) }
        }
    }

    /// `x` (laid out as `layout`, `[B, n, S, d]` logically) rotated forward, as one autograd node.
    func apply(_ x: Tensor, layout: HeadLayout) -> Tensor {
        let xf = x.float32Values()
        let heads = layout.heads
        let y = Tensor.makeFloat(x.shape) { out in
            rotate(UnsafePointer(xf.floatPointer), into: out, layout: layout, heads: heads, inverse: false)
        }.rounded(to: x.dtype)
        return y.recording([x]) { g in
            let gf = g.float32Values()
            return [Tensor.makeFloat(g.shape) { out in
                rotate(UnsafePointer(gf.floatPointer), into: out, layout: layout, heads: heads, inverse: true)
            }]
        }
    }

    /// `x` with the heads `layout` names rotated forward and every other element copied, as
    /// one autograd node: the queries and keys of a packed `[B, S, (n+2g)·d]` projection
    /// (`layout` covering its first n + g heads) rotated, its values passed through.
    func applyPacked(_ x: Tensor, layout: HeadLayout) -> Tensor {
        let xf = x.float32Values()
        let heads = layout.heads, count = x.count
        let y = Tensor.makeFloat(x.shape) { out in
            out.update(from: xf.floatPointer, count: count)
            rotate(UnsafePointer(out), into: out, layout: layout, heads: heads, inverse: false)
        }.rounded(to: x.dtype)
        return y.recording([x]) { g in
            let gf = g.float32Values()
            return [Tensor.makeFloat(g.shape) { out in
                out.update(from: gf.floatPointer, count: count)
                rotate(UnsafePointer(out), into: out, layout: layout, heads: heads, inverse: true)
            }]
        }
    }

    /// Turns every pair (i, i + h) of every head by +angle (or −angle when `inverse`).
    func rotate(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, layout: HeadLayout, heads: Int, inverse: Bool) {
        let h = half, d = 2 * half, length = length, batchStride = batchStride
        let c = UnsafePointer(cos.pointer), sn = UnsafePointer(sin.pointer)
        let sign: Float = inverse ? -1 : 1
        Parallel.forEachBlock(count: batch * length, minimumPerBlock: Swift.max(1, 8192 / Swift.max(1, heads * d))) { tokens in
            for token in tokens {
                let b = token / length, t = token % length
                let ct = c + b * batchStride + t * h, st = sn + b * batchStride + t * h
                for head in 0..<heads {
                    let o = b * layout.batch + head * layout.head + t * layout.row
                    rotateHalf(x + o, into: y + o, cos: ct, sin: st, half: h, sign: sign)
                }
            }
        }
    }
}

// MARK: - Inference

extension RotaryEmbedding {
    /// The cos/sin of positions `0 ..< positions` (`[position, d/2]`), grown on demand, for
    /// rotating raw rows in place during decoding (no autograd). Formed exactly as the
    /// autograd path forms them, so a position turns alike in training and decoding.
    public final class PositionTable {
        /// The embedding whose frequencies the table holds.
        public let rotary: RotaryEmbedding
        /// Positions `0 ..< positions` are tabulated.
        public private(set) var positions = 0
        private let cos = RowBuffer()
        private let sin = RowBuffer()

        /// An empty table for `rotary`.
        public init(_ rotary: RotaryEmbedding) { self.rotary = rotary }

        /// Makes positions `0 ..< count` available (growing at least twofold, at least to 64).
        public func reserve(_ count: Int) {
            guard count > positions else { return }
            let half = rotary.headDimension / 2
            let target = Swift.max(count, 2 * positions, 64)
            cos.reserve(target * half, keeping: positions * half)
            sin.reserve(target * half, keeping: positions * half)
            for p in positions..<target {
                rotary.writeAngles(position: Int64(p), cos: cos.pointer + p * half, sin: sin.pointer + p * half)
            }
            positions = target
        }

        /// Rotates, in place, every head of `m` consecutive token rows of `heads · d` floats;
        /// row r sits at position `firstPosition + r` (precondition: `firstPosition ≥ 0`).
        /// The CRowKernels rotation runs the operations of `rotateHalf`, so the bits are the
        /// training forward's.
        public func rotate(_ x: UnsafeMutablePointer<Float>, rows m: Int, heads: Int, firstPosition: Int) {
            precondition(firstPosition >= 0, "PositionTable.rotate: negative position \(firstPosition)")
            reserve(firstPosition + m)
            let half = rotary.headDimension / 2
            mtp_rotate_rows(x, m, heads, rotary.headDimension, cos.pointer + firstPosition * half,
                            sin.pointer + firstPosition * half)
        }
    }
}
