// Root-mean-square layer norm (Zhang & Sennrich 2019), as one fused autograd node.
//
// Legend: N rows (every leading axis folded), D the normalised axis.
// Forward, per row x (length D), weight w:
//   r   = 1 / √(Σⱼ xⱼ² / D + ε)
//   yⱼ  = xⱼ · r · wⱼ
// Backward, with g = ∂L/∂y and a = g ⊙ w:
//   ∂r/∂xⱼ = −r³ · xⱼ / D, so
//   ∂L/∂xⱼ = r·aⱼ + Σᵢ aᵢ·xᵢ · (−r³·xⱼ / D) = r · (aⱼ − xⱼ · r² · (a·x) / D)
//   ∂L/∂wⱼ = Σ_rows gⱼ · xⱼ · r
// The forward keeps r per row; rows run in parallel, and the weight gradient is
// summed per fixed row chunk, then over chunks in order (deterministic).
// The row loops are CRowKernels' (the CPU's vector width, the same bits on every instruction
// set): the autograd node runs `mtp_rmsnorm_forward` and `mtp_rmsnorm_backward` on each
// chunk, the inference path (``RMSNorm/Frozen``) `mtp_rmsnorm_rows`, the forward's loop, so
// training and decoding normalise alike, bit for bit.

import CRowKernels
@_spi(Kernels) import Tensors

/// RMS normalisation of the last axis with a learned scale.
///
/// Parameter name: `weight` (`[dimension]`, ones at first).
public final class RMSNorm: Layer {
    /// `[dimension]`, initialised to ones.
    public let weight: Parameter
    /// The extent of the normalised (last) axis.
    public let dimension: Int
    /// Added to the mean square before the square root.
    public let epsilon: Float

    /// A norm with unit scale.
    ///
    /// - Parameters:
    ///   - dimension: the extent of the normalised axis (precondition: positive).
    ///   - epsilon: added to the mean square (DeepSeek-V3 and Llama use 1e-6).
    public init(dimension: Int, epsilon: Float = 1e-6) {
        precondition(dimension > 0, "RMSNorm needs a positive dimension, got \(dimension)")
        self.dimension = dimension
        self.epsilon = epsilon
        weight = Parameter(Tensor.ones([dimension]))
    }

    /// The scale, under the key `weight`.
    public var ownParameters: [(key: String, parameter: Parameter)] { [("weight", weight)] }

    /// `x · rsqrt(mean(x², −1) + ε) · weight`.
    ///
    /// - Parameter x: `[..., dimension]`, floating point.
    /// - Returns: the same shape, in the promoted dtype of `x` and the weight (computed in Float32).
    /// - Throws: ``Tensors/TensorError`` when the last axis is not `dimension` or `x` is not floating point.
    ///
    /// Edge cases: an all-zero row gives zeros (r = 1/√ε); NaN or inf in a row spreads over that row only.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try rmsNorm(x, weight: weight.value, epsilon: epsilon)
    }
}

/// The fused RMSNorm of the last axis of `x` scaled by `weight` (see ``RMSNorm``).
///
/// - Throws: ``Tensors/TensorError`` when `weight` is not `[x.shape.last]` or `x` is not floating point.
public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float) throws -> Tensor {
    guard x.dtype.isFloatingPoint, weight.dtype.isFloatingPoint else {
        throw TensorError.unsupportedDType("rmsNorm needs floating-point input and weight, got \(x.dtype) and \(weight.dtype)")
    }
    guard x.rank >= 1, weight.shape == [x.shape[x.rank - 1]] else {
        throw TensorError.shapeMismatch("rmsNorm: weight \(weight.shape) does not match the last axis of \(x.shape)")
    }
    let d = weight.count, n = x.count / Swift.max(d, 1)
    let xf = x.float32Values(), wf = weight.float32Values()
    let rstd = ScratchBuffer(count: n)
    let chunks = RowChunks(count: n, minimumRows: Swift.max(1, 4096 / Swift.max(d, 1)))
    let y = Tensor.makeFloat(x.shape) { out in
        let xp = UnsafePointer(xf.floatPointer), wp = UnsafePointer(wf.floatPointer), rp = rstd.pointer
        chunks.forEach { _, rows in
            let lo = rows.lowerBound
            mtp_rmsnorm_forward(xp + lo * d, rows.count, d, wp, epsilon, out + lo * d, rp + lo)
        }
    }.rounded(to: DType.promoted(x.dtype, weight.dtype))
    return y.recording([x, weight]) { g in
        let gf = g.float32Values()
        let partial = ScratchBuffer(count: chunks.chunks * d)
        let dx = Tensor.makeFloat(x.shape) { dxp in
            let xp = UnsafePointer(xf.floatPointer), wp = UnsafePointer(wf.floatPointer)
            let gp = UnsafePointer(gf.floatPointer), rp = UnsafePointer(rstd.pointer)
            chunks.forEach { c, rows in
                let dw = partial.pointer + c * d, lo = rows.lowerBound
                dw.update(repeating: 0, count: d)
                mtp_rmsnorm_backward(xp + lo * d, gp + lo * d, wp, rp + lo, rows.count, d, dxp + lo * d, dw)
            }
        }
        let dw = Tensor.makeFloat([d]) { out in
            out.update(from: partial.pointer, count: d)
            for c in 1..<Swift.max(1, chunks.chunks) {
                let p = partial.pointer + c * d
                for j in 0..<d { out[j] += p[j] }
            }
        }
        return [dx, dw]
    }
}

// MARK: - Inference

extension RMSNorm {
    /// A frozen Float32 copy of a norm for inference on raw rows (no autograd), through
    /// CRowKernels' `mtp_rmsnorm_rows`: the autograd forward's loop, bit for bit
    /// (`InferenceTests`, `RMSNormRowKernelTests`).
    public struct Frozen {
        /// The extent of a row.
        public let dimension: Int
        /// Added to the mean square before the square root.
        public let epsilon: Float
        /// `[dimension]`.
        let weight: RowBuffer

        /// A snapshot of `norm`'s weight (later changes to the layer are not seen).
        public init(_ norm: RMSNorm) {
            dimension = norm.dimension
            epsilon = norm.epsilon
            weight = RowBuffer(copying: norm.weight.value)
        }

        /// Normalises `m` rows of `x` (`dimension` floats apart) into `y`.
        ///
        /// - Parameters:
        ///   - x: `m` contiguous rows.
        ///   - m: the number of rows.
        ///   - y: the output; row r starts at `y + r · outputStride` (`dimension` when nil),
        ///     so a row can land in half of a wider concatenation.
        @inline(__always)
        public func callAsFunction(_ x: UnsafePointer<Float>, rows m: Int, into y: UnsafeMutablePointer<Float>,
                                   outputStride: Int? = nil) {
            mtp_rmsnorm_rows(x, m, dimension, weight.pointer, epsilon, y, outputStride ?? dimension)
        }
    }
}
