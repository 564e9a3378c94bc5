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
// CRowKernels' rotation (the pairs turned at the CPU's vector width, the same bits on every
// instruction set). The autograd node (RotaryTable) turns by the tables of a small cache keyed
// by the positions' content, so the layers of a step share one table, with `mtp_rotate_heads`
// (from the input into the output, forward or inverse); the inference path
// (``RotaryEmbedding/PositionTable``, grown over the positions decoding reaches, rotating rows
// in place) uses `writeAngles` and `mtp_rotate_rows`, the same loop: a position turns alike in
// training and decoding, bit for bit (`RotaryRowKernelTests`).

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

/// cos and sin of every (positions row, token, frequency) of one positions tensor, `[rows, S, h]`
/// each, immutable once formed (so any number of layers and backward passes may read them).
final class RotaryAngles: @unchecked Sendable {
    let cos: UnsafeMutablePointer<Float>
    let sin: UnsafeMutablePointer<Float>
    /// rows · S · h.
    let count: Int

    /// Every angle of `positions` (`rows · S` ids, row-major) for `rope`.
    init(_ rope: RotaryEmbedding, positions p: UnsafeBufferPointer<Int64>) {
        let h = rope.headDimension / 2
        count = p.count * h
        cos = .allocate(capacity: Swift.max(count, 1))
        sin = .allocate(capacity: Swift.max(count, 1))
        for t in 0..<p.count { rope.writeAngles(position: p[t], cos: cos + t * h, sin: sin + t * h) }
    }

    deinit {
        cos.deallocate()
        sin.deallocate()
    }
}

/// The angle tables of the last few positions tensors, by content: every attention layer of a
/// step (and the MTP depths, and the backward) turns by the same positions, so the cos/sin
/// (libm, per token and frequency) are formed once per distinct positions tensor rather than
/// once per layer. At most `capacity` tables and `floatBudget` floats are kept, the least
/// recently used evicted first; a tensor larger than the budget is not kept. The tables are
/// not counted by ``Tensors/AllocationMeter`` (they outlive any one step).
private final class RotaryAngleCache: @unchecked Sendable {
    struct Key: Equatable {
        let headDimension: Int
        let base: Double
        let rows: Int
        let positions: [Int64]
    }

    static let shared = RotaryAngleCache()
    private let lock = NSLock()
    private var entries: [(key: Key, angles: RotaryAngles)] = []
    private let capacity = 8
    private let floatBudget = 8 << 20

    /// The table of `positions` (`rows · S` ids) for `rope`, formed on a miss.
    func angles(_ rope: RotaryEmbedding, rows: Int, positions: [Int64]) -> RotaryAngles {
        let key = Key(headDimension: rope.headDimension, base: rope.base, rows: rows, positions: positions)
        if let hit = lock.withLock({ () -> RotaryAngles? in
            guard let i = entries.firstIndex(where: { $0.key == key }) else { return nil }
            let entry = entries.remove(at: i)
            entries.append(entry)
            return entry.angles
        }) {
            return hit
        }
        let angles = positions.withUnsafeBufferPointer { RotaryAngles(rope, positions: $0) }
        guard 2 * angles.count <= floatBudget else { return angles }
        lock.withLock {
            entries.append((key, angles))
            var total = entries.reduce(0) { $0 + 2 * $1.angles.count }
            while entries.count > capacity || total > floatBudget {
                total -= 2 * entries.removeFirst().angles.count
            }
        }
        return angles
    }
}

/// The cos/sin of every (row, token, frequency) of one call, shared by q and k.
struct RotaryTable {
    let angles: RotaryAngles   // [Bp, S, h]
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
        angles = RotaryAngleCache.shared.angles(rope, rows: rows, positions: positions.withInt64Buffer { Array($0) })
    }

    /// `x` (laid out as `layout`, `[B, n, S, d]` logically) rotated forward, as one autograd node.
    func apply(_ x: Tensor, layout: HeadLayout) -> Tensor {
        let xf = x.float32Values()
        let y = Tensor.makeFloat(x.shape) { out in
            rotate(UnsafePointer(xf.floatPointer), into: out, layout: layout, inverse: false, copy: 0)
        }.rounded(to: x.dtype)
        return y.recording([x]) { g in
            let gf = g.float32Values()
            return [Tensor.makeFloat(g.shape) { out in
                rotate(UnsafePointer(gf.floatPointer), into: out, layout: layout, inverse: true, copy: 0)
            }]
        }
    }

    /// `x` with the heads `layout` names rotated forward and every other element copied, as
    /// one autograd node: the queries and keys of a packed `[B, S, (n+2g)·d]` projection
    /// (`layout` covering its first n + g heads, one token row `layout.row` wide) rotated, its
    /// values passed through — each element written once, no copy first.
    func applyPacked(_ x: Tensor, layout: HeadLayout) -> Tensor {
        let xf = x.float32Values()
        let copy = layout.row - layout.heads * 2 * half
        precondition(layout.head == 2 * half && copy >= 0, "applyPacked needs heads packed at the start of each token row")
        let y = Tensor.makeFloat(x.shape) { out in
            rotate(UnsafePointer(xf.floatPointer), into: out, layout: layout, inverse: false, copy: copy)
        }.rounded(to: x.dtype)
        return y.recording([x]) { g in
            let gf = g.float32Values()
            return [Tensor.makeFloat(g.shape) { out in
                rotate(UnsafePointer(gf.floatPointer), into: out, layout: layout, inverse: true, copy: copy)
            }]
        }
    }

    /// Turns every pair (i, i + h) of every head by +angle (or −angle when `inverse`) with
    /// CRowKernels' `mtp_rotate_heads`; with `copy` > 0 (heads at the start of each token row
    /// only), the `copy` floats after a row's last head are copied too.
    func rotate(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, layout: HeadLayout, inverse: Bool, copy: Int) {
        let h = half, d = 2 * half, length = length, batchStride = batchStride, heads = layout.heads
        let c = UnsafePointer(angles.cos), sn = UnsafePointer(angles.sin)
        let turn: Int32 = inverse ? 1 : 0
        Parallel.forEachBlock(count: batch * length, minimumPerBlock: Swift.max(1, 8192 / Swift.max(1, heads * d))) { tokens in
            var token = tokens.lowerBound
            while token < tokens.upperBound {
                // The tokens of this block in batch row b.
                let b = token / length, t = token % length, n = Swift.min(tokens.upperBound - token, length - t)
                let ct = c + b * batchStride + t * h, st = sn + b * batchStride + t * h
                if layout.head == d || heads == 1 {
                    // Token rows `layout.row` apart, heads d apart within a row.
                    let o = b * layout.batch + t * layout.row
                    mtp_rotate_heads(x + o, y + o, n, layout.row, heads, d, d, ct, st, turn, copy)
                } else {
                    // One head's rows at a time (`[B, n, S, d]`).
                    for head in 0..<heads {
                        let o = b * layout.batch + head * layout.head + t * layout.row
                        mtp_rotate_heads(x + o, y + o, n, layout.row, 1, d, d, ct, st, turn, 0)
                    }
                }
                token += n
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
        /// The CRowKernels rotation is the training forward's loop, so the bits are the
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
