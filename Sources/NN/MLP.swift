// The SwiGLU feed-forward block (Shazeer 2020) of Llama and DeepSeek-V3 dense
// layers: down(silu(gate(x)) ⊙ up(x)).
//
// The gate is one fused autograd node. With σ = 1/(1+e⁻ᵃ), for y = a·σ(a)·u:
//   ∂y/∂u = a·σ(a)
//   ∂y/∂a = u · σ(a) · (1 + a·(1 − σ(a)))
// The elementwise forward is one kernel, `swiGLUForward` (SIMD8 exp), in the autograd node
// (which also keeps σ); the inference path (``MLP/Frozen``, in place) runs the same formula
// in CRowKernels at the CPU's vector width, with an exp in fused multiply-adds (equal within
// rounding: half the instructions of the SIMD8 exp, a tenth of a decoding step on AVX2).

import CRowKernels
@_spi(Kernels) import Tensors

/// The SwiGLU multi-layer perceptron.
///
/// Parameter names: `gate_proj.weight` and `up_proj.weight` (`[I, H]`), `down_proj.weight` (`[H, I]`).
public final class MLP: Layer {
    /// `gate_proj`, H → I.
    public let gateProj: Linear
    /// `up_proj`, H → I.
    public let upProj: Linear
    /// `down_proj`, I → H.
    public let downProj: Linear

    /// An MLP with weights drawn from `generator` (gate, up, down in that order).
    ///
    /// - Parameters:
    ///   - hiddenSize: H (positive).
    ///   - intermediateSize: I (positive).
    ///   - std: the standard deviation of the normal initialisation.
    ///   - generator: the seeded source of the initial weights.
    public init(hiddenSize: Int, intermediateSize: Int, std: Float = 0.02, generator: inout SplitMix64) {
        gateProj = Linear(inFeatures: hiddenSize, outFeatures: intermediateSize, std: std, generator: &generator)
        upProj = Linear(inFeatures: hiddenSize, outFeatures: intermediateSize, std: std, generator: &generator)
        downProj = Linear(inFeatures: intermediateSize, outFeatures: hiddenSize, std: std, generator: &generator)
    }

    /// The projections under their Hugging Face keys: `gate_proj`, `up_proj`, `down_proj`.
    public var children: [(key: String, layer: any Layer)] {
        [("gate_proj", gateProj), ("up_proj", upProj), ("down_proj", downProj)]
    }

    /// `down(silu(gate(x)) ⊙ up(x))`.
    ///
    /// - Parameter x: `[..., H]`.
    /// - Returns: `[..., H]`.
    /// - Throws: ``Tensors/TensorError/shapeMismatch(_:)`` when the last axis is not H.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1, x.shape[x.rank - 1] == gateProj.inFeatures else {
            throw TensorError.shapeMismatch("MLP(H: \(gateProj.inFeatures)) applied to shape \(x.shape)")
        }
        // One GEMM for gate and up, side by side on each row.
        let gateUp = try Tensor.fusedLinear(x, weights: [gateProj.weight.value, upProj.weight.value])
        return try downProj(packedSwiGLU(gateUp))
    }
}

/// `silu(gate) ⊙ up` of rows that hold the gate in their first half and up in the second
/// (`[..., 2I]` → `[..., I]`), as one fused autograd node whose gradient is packed alike.
func packedSwiGLU(_ gateUp: Tensor) -> Tensor {
    let width = gateUp.shape[gateUp.rank - 1], half = width / 2
    let rows = gateUp.count / Swift.max(width, 1)
    let x = gateUp.float32Values()
    let sigma = ScratchBuffer(count: rows * half)
    let y = Tensor.makeFloat(Array(gateUp.shape.dropLast()) + [half]) { out in
        let xp = UnsafePointer(x.floatPointer), sp = sigma.pointer
        Parallel.forEachBlock(count: rows, minimumPerBlock: Swift.max(1, 16_384 / Swift.max(1, half))) { block in
            for r in block {
                swiGLUForward(gate: xp + r * width, up: xp + r * width + half, into: out + r * half,
                              sigma: sp + r * half, 0..<half)
            }
        }
    }.rounded(to: gateUp.dtype)
    let shape = gateUp.shape
    return y.recording([gateUp]) { g in
        let gf = g.float32Values()
        let grad = Tensor.uninitialized(shape, dtype: .float32)
        let gp = UnsafePointer(gf.floatPointer), xp = UnsafePointer(x.floatPointer), sp = UnsafePointer(sigma.pointer)
        let dp = grad.floatPointer
        Parallel.forEachBlock(count: rows, minimumPerBlock: Swift.max(1, 16_384 / Swift.max(1, half))) { block in
            for r in block {
                swiGLUBackward(gradOut: gp + r * half, gate: xp + r * width, up: xp + r * width + half, sigma: sp + r * half,
                               gateGradient: dp + r * width, upGradient: dp + r * width + half, 0..<half)
            }
        }
        return [grad]
    }
}

/// `silu(gate) ⊙ up`, elementwise, as one fused autograd node.
///
/// - Parameters:
///   - gate, up: floating-point tensors of one shape.
/// - Returns: the same shape, in the promoted dtype (computed in Float32).
/// - Throws: ``Tensors/TensorError`` when the shapes differ or a dtype is not floating point.
///
/// Edge cases: for gates below about −88, σ saturates near 3e−39 instead of underflowing
/// (the result is ≈ 0 for finite gates); gates above about 17 give σ = 1, so silu(a) = a exactly.
public func swiGLU(gate: Tensor, up: Tensor) throws -> Tensor {
    guard gate.shape == up.shape else {
        throw TensorError.shapeMismatch("swiGLU: gate \(gate.shape) and up \(up.shape) differ")
    }
    guard gate.dtype.isFloatingPoint, up.dtype.isFloatingPoint else {
        throw TensorError.unsupportedDType("swiGLU needs floating-point inputs, got \(gate.dtype) and \(up.dtype)")
    }
    let a = gate.float32Values(), u = up.float32Values()
    let n = a.count
    let sigma = ScratchBuffer(count: n)
    let y = Tensor.makeFloat(gate.shape) { out in
        let ap = UnsafePointer(a.floatPointer), up = UnsafePointer(u.floatPointer), sp = sigma.pointer
        forEachSIMDBlock(n) { lo, hi in swiGLUForward(gate: ap, up: up, into: out, sigma: sp, lo..<hi) }
    }.rounded(to: DType.promoted(gate.dtype, up.dtype))
    return y.recording([gate, up]) { g in
        let gf = g.float32Values()
        let dGate = Tensor.uninitialized(gf.shape, dtype: .float32)
        let dUp = Tensor.uninitialized(gf.shape, dtype: .float32)
        let gp = UnsafePointer(gf.floatPointer), ap = UnsafePointer(a.floatPointer), up = UnsafePointer(u.floatPointer)
        let sp = UnsafePointer(sigma.pointer), da = dGate.floatPointer, du = dUp.floatPointer
        forEachSIMDBlock(n) { lo, hi in
            swiGLUBackward(gradOut: gp, gate: ap, up: up, sigma: sp, gateGradient: da, upGradient: du, lo..<hi)
        }
        return [dGate, dUp]
    }
}

/// The gradients of `y = a·σ(a)·u` for i in `range`, from the upstream gradient and the kept σ:
/// `∂u = g·a·σ`, `∂a = g·u·σ·(1 + a·(1 − σ))`.
@inline(__always)
func swiGLUBackward(gradOut gp: UnsafePointer<Float>, gate ap: UnsafePointer<Float>, up: UnsafePointer<Float>,
                    sigma sp: UnsafePointer<Float>, gateGradient da: UnsafeMutablePointer<Float>,
                    upGradient du: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    var i = range.lowerBound
    let hi = range.upperBound
    while i + 8 <= hi {
        let gv = RowMath.load(gp + i), av = RowMath.load(ap + i), s = RowMath.load(sp + i)
        RowMath.store(gv * av * s, du + i)
        RowMath.store(gv * RowMath.load(up + i) * s * (1 + av * (1 - s)), da + i)
        i += 8
    }
    while i < hi {
        let s = sp[i]
        du[i] = gp[i] * ap[i] * s
        da[i] = gp[i] * up[i] * s * (1 + ap[i] * (1 - s))
        i += 1
    }
}

/// `out[i] = a[i]·σ(a[i])·u[i]` for i in `range`, σ(a) = 1/(1 + e⁻ᵃ) with the SIMD8 exp (also in
/// the scalar tail, so every element rounds alike); σ is kept in `sigma` when given. `out`
/// may be `a` (in place).
@inline(__always)
func swiGLUForward(gate a: UnsafePointer<Float>, up u: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                   sigma sp: UnsafeMutablePointer<Float>?, _ range: Range<Int>) {
    var i = range.lowerBound
    let hi = range.upperBound
    while i + 8 <= hi {
        let av = RowMath.load(a + i)
        let s = 1 / (1 + RowMath.exp(-av))
        if let sp { RowMath.store(s, sp + i) }
        RowMath.store(av * s * RowMath.load(u + i), out + i)
        i += 8
    }
    while i < hi {
        let s = 1 / (1 + RowMath.exp(SIMD8(repeating: -a[i]))[0])
        sp?[i] = s
        out[i] = a[i] * s * u[i]
        i += 1
    }
}

/// Splits `0..<n` into 8-aligned blocks of about 16K elements and runs them in parallel.
func forEachSIMDBlock(_ n: Int, _ body: (Int, Int) -> Void) {
    let block = 16_384
    Parallel.forEachBlock(count: (n + block - 1) / block, minimumPerBlock: 2) { r in
        body(r.lowerBound * block, Swift.min(n, r.upperBound * block))
    }
}

// MARK: - Inference

extension MLP {
    /// A frozen Float32 copy of the MLP for inference on raw rows (no autograd). Its SwiGLU is
    /// the CRowKernels row kernel, the autograd forward's `swiGLUForward` within rounding
    /// (`SwiGLURowKernelTests`), the same bits on every instruction set.
    public struct Frozen {
        /// `gate_proj`, H → I.
        public let gateProj: Linear.Frozen
        /// `up_proj`, H → I.
        public let upProj: Linear.Frozen
        /// `down_proj`, I → H.
        public let downProj: Linear.Frozen

        /// A snapshot of `mlp`'s weights (later changes to the layer are not seen).
        public init(_ mlp: MLP) {
            gateProj = Linear.Frozen(mlp.gateProj)
            upProj = Linear.Frozen(mlp.upProj)
            downProj = Linear.Frozen(mlp.downProj)
        }

        /// `residual += down(silu(gate(x)) ⊙ up(x))` for `m` rows.
        ///
        /// - Parameters:
        ///   - x: `m` rows of H floats, plus a spare row (see ``Linear/Frozen``).
        ///   - m: the number of rows.
        ///   - residual: `m` rows of H floats, plus a spare row, added to.
        ///   - scratch: the gate and up buffers.
        @inline(__always)
        public func callAsFunction(_ x: UnsafePointer<Float>, rows m: Int, addingInto residual: UnsafeMutablePointer<Float>,
                                   scratch: InferenceScratch) {
            scratch.reserve(rows: m, hidden: gateProj.inFeatures, intermediate: gateProj.outFeatures)
            let gate = scratch.gate.pointer
            gateProj(x, rows: m, into: gate)
            upProj(x, rows: m, into: scratch.up.pointer)
            mtp_swiglu(gate, scratch.up.pointer, gate, m * gateProj.outFeatures)
            downProj(gate, rows: m, into: residual, accumulate: true)
        }
    }
}
