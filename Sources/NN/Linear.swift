// A fully connected layer, y = x·Wᵀ + b, with the weight stored [out, in] as
// PyTorch and Hugging Face checkpoints store it.
//
// Inference (``Linear/Frozen``): a frozen copy of Wᵀ, `[in, out]`, so M rows multiply it
// as `x[M, in] · W[in, out]`. It is kept twice: row-major for BLAS, and in the row kernel's
// panels (16 output columns per panel, one 64-byte line per input index k; see
// CRowKernels' row_kernels.c), where every pass of the kernel streams its own panels front to
// back and a matrix's bytes arrive while the passes compute.
//
// Batch invariance: greedy speculative decoding gives plain decoding's output only if a
// row's bits do not depend on how many rows share the call. BLAS GEMMs do not promise
// that (OpenBLAS 0.3.21's Haswell kernels round a row differently for different M), so
// the M ≤ 8 rows of a decoding call run our own kernel (CRowKernels): every output is
// the fused multiply-add chain over k = 0, 1, … from +0, on every CPU, alone or batched.
// It also streams the weights once for all rows. Calls of up to 64 rows (a prompt's
// prefill, a context window's recompute) run it 8 rows at a time, which streams the
// weights once per 8 rows and still beat OpenBLAS 0.3.21's GEMM on the default model (32
// rows: 0.41 against 0.59 ms on the AVX-512 Xeon, 0.83 against 0.96 ms with AVX2; 64
// rows about even with AVX2); larger calls go to BLAS. Either way a prefill is the same
// call in plain and speculative decoding.

import CRowKernels
@_spi(Kernels) import Tensors

/// An affine map of the last axis: `y = x·Wᵀ (+ b)`.
///
/// Parameter names: `weight` (`[outFeatures, inFeatures]`) and, when present, `bias`
/// (`[outFeatures]`).
public final class Linear: Layer {
    /// `[outFeatures, inFeatures]`, initialised normal(0, std).
    public let weight: Parameter
    /// `[outFeatures]`, initialised to zeros; nil for a layer without bias.
    public let bias: Parameter?
    /// The extent of the input's last axis.
    public let inFeatures: Int
    /// The extent of the output's last axis.
    public let outFeatures: Int

    /// A layer with weights drawn from `generator`.
    ///
    /// - Parameters:
    ///   - inFeatures, outFeatures: the sizes (precondition: positive).
    ///   - bias: whether to add a bias (zeros at first).
    ///   - std: the standard deviation of the normal weight initialisation.
    ///   - generator: the seeded source of the initial weights; advanced by the weight's size.
    public init(inFeatures: Int, outFeatures: Int, bias: Bool = false, std: Float = 0.02, generator: inout SplitMix64) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear needs positive sizes, got \(inFeatures) → \(outFeatures)")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(Tensor.normal([outFeatures, inFeatures], std: std, generator: &generator))
        self.bias = bias ? Parameter(Tensor.zeros([outFeatures])) : nil
    }

    /// A layer around existing parameters (for tied weights or loaded values).
    ///
    /// - Parameters:
    ///   - weight: `[outFeatures, inFeatures]`.
    ///   - bias: `[outFeatures]`, or nil.
    /// - Throws: ``Tensors/TensorError/shapeMismatch(_:)`` when the weight is not 2-D or the bias does not fit it.
    public init(weight: Parameter, bias: Parameter? = nil) throws {
        guard weight.shape.count == 2, weight.shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.shapeMismatch("Linear weight must be [out, in] with positive sizes, got \(weight.shape)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError.shapeMismatch("Linear bias \(bias.shape) does not fit weight \(weight.shape)")
        }
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        self.weight = weight
        self.bias = bias
    }

    /// `weight`, then `bias` when the layer has one.
    public var ownParameters: [(key: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// `x·Wᵀ (+ b)` over the last axis.
    ///
    /// - Parameter x: `[..., inFeatures]`, any number of leading axes.
    /// - Returns: `[..., outFeatures]`.
    /// - Throws: ``Tensors/TensorError/shapeMismatch(_:)`` when the last axis is not `inFeatures`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1, x.shape[x.rank - 1] == inFeatures else {
            throw TensorError.shapeMismatch("Linear(\(inFeatures) → \(outFeatures)) applied to shape \(x.shape)")
        }
        // Folding the leading axes into rows makes this one GEMM (and the weight is never broadcast).
        let rows = try x.reshaped([-1, inFeatures])
        var y = try Tensor.matmul(rows, weight.value, transposeB: true)
        if let bias { y = try y + bias.value }
        return try y.reshaped(Array(x.shape.dropLast()) + [outFeatures])
    }
}

// MARK: - Inference

extension Linear {
    /// A frozen Float32 copy of a bias-free layer for inference on raw rows (no autograd):
    /// the weight transposed to `[inFeatures, outFeatures]` (see the file header).
    public struct Frozen {
        /// The extent of an input row.
        public let inFeatures: Int
        /// The extent of an output row.
        public let outFeatures: Int
        /// Wᵀ, `[inFeatures, outFeatures]` row-major (for BLAS).
        let weight: RowBuffer
        /// Wᵀ in the row kernel's panels (`mtp_rows_pack`).
        let panels: RowBuffer

        /// A snapshot of `linear`'s weight (later changes to the layer are not seen).
        ///
        /// Precondition: the layer has no bias (every projection of the model is bias-free).
        public init(_ linear: Linear) {
            precondition(linear.bias == nil, "Linear.Frozen supports bias-free layers only")
            let w = linear.weight.value.float32Values()
            let (out, inp) = (linear.outFeatures, linear.inFeatures)
            let t = RowBuffer(capacity: out * inp)
            let src = w.floatPointer
            for o in 0..<out {
                for i in 0..<inp { t.pointer[i * out + o] = src[o * inp + i] }
            }
            self.init(transposed: t, inFeatures: inp, outFeatures: out)
        }

        /// Wᵀ given as `[inFeatures, outFeatures]` row-major (the buffer is kept, not copied).
        init(transposed: RowBuffer, inFeatures: Int, outFeatures: Int) {
            self.inFeatures = inFeatures
            self.outFeatures = outFeatures
            weight = transposed
            panels = RowBuffer(capacity: mtp_rows_packed_count(inFeatures, outFeatures))
            mtp_rows_pack(transposed.pointer, inFeatures, outFeatures, panels.pointer)
        }

        /// A copy of Wᵀ, `[inFeatures, outFeatures]` row-major.
        public var weightValues: [Float] { Array(UnsafeBufferPointer(start: weight.pointer, count: inFeatures * outFeatures)) }

        /// The most rows one call of the batch-invariant kernel takes.
        public static let kernelRows = Int(MTP_ROWS_MAX)

        /// The most rows that run the kernel (``kernelRows`` at a time); larger calls use BLAS.
        public static let chunkedKernelRows = 64

        /// `y[M, out] = x[M, in] · Wᵀ` (`y +=` when accumulating).
        ///
        /// For M ≤ ``chunkedKernelRows`` every output is `fma(x[r, k], Wᵀ[k, j], ·)` chained over
        /// k = 0 … in − 1 from +0 (then added to `y` when accumulating): row r's bits depend on
        /// input row r alone, never on M. Larger M runs a BLAS GEMM.
        ///
        /// - Parameters:
        ///   - x: M rows of `inFeatures` floats.
        ///   - m: the number of rows M (positive).
        ///   - y: M rows of `outFeatures` floats.
        ///   - accumulate: whether to add to `y` instead of overwriting it.
        @inline(__always)
        public func callAsFunction(_ x: UnsafePointer<Float>, rows m: Int, into y: UnsafeMutablePointer<Float>,
                                   accumulate: Bool = false) {
            if m <= Self.kernelRows {
                mtp_rows_matmul(x, m, inFeatures, panels.pointer, outFeatures, y, accumulate ? 1 : 0)
            } else if m <= Self.chunkedKernelRows {
                for r in stride(from: 0, to: m, by: Self.kernelRows) {
                    mtp_rows_matmul(x + r * inFeatures, Swift.min(Self.kernelRows, m - r), inFeatures, panels.pointer,
                                    outFeatures, y + r * outFeatures, accumulate ? 1 : 0)
                }
            } else {
                BLAS.sgemm(transA: false, transB: false, m: m, n: outFeatures, k: inFeatures, alpha: 1, a: x,
                           lda: inFeatures, b: weight.pointer, ldb: outFeatures, beta: accumulate ? 1 : 0, c: y,
                           ldc: outFeatures)
            }
        }

        /// The batch-invariant kernel with a chosen instruction set (for tests and benchmarks).
        ///
        /// - Parameters: as ``callAsFunction(_:rows:into:accumulate:)``, with M in 1 ... ``kernelRows``.
        /// - Parameter variant: one of ``KernelVariant/supported``.
        public func kernel(_ variant: KernelVariant, _ x: UnsafePointer<Float>, rows m: Int, into y: UnsafeMutablePointer<Float>,
                           accumulate: Bool = false) {
            precondition(m >= 1 && m <= Self.kernelRows, "Linear.Frozen.kernel: \(m) rows outside 1...\(Self.kernelRows)")
            precondition(variant.isSupported, "Linear.Frozen.kernel: \(variant) does not run on this CPU")
            mtp_rows_matmul_variant(variant.rawValue, x, m, inFeatures, panels.pointer, outFeatures, y, accumulate ? 1 : 0)
        }
    }

    /// The instruction sets of the decoding kernel; all give the same bits.
    public enum KernelVariant: Int32, CaseIterable, Sendable, CustomStringConvertible {
        /// Scalar `fmaf`, any CPU.
        case generic = 0
        /// 8-lane AVX2 with FMA.
        case avx2 = 1
        /// 16-lane AVX-512.
        case avx512 = 2

        /// Whether this CPU runs the variant.
        public var isSupported: Bool { mtp_rows_supported(rawValue) != 0 }

        /// The variants this CPU runs.
        public static var supported: [KernelVariant] { allCases.filter(\.isSupported) }

        /// The variant decoding uses: the widest supported, or a narrower one named by
        /// `MTP_ROW_KERNEL` (generic, avx2, avx512) in the environment.
        public static var current: KernelVariant { KernelVariant(rawValue: mtp_rows_variant()) ?? .generic }

        /// `generic`, `avx2` or `avx512`.
        public var description: String { ["generic", "avx2", "avx512"][Int(rawValue)] }
    }
}
