// The SwiGLU feed-forward block (Shazeer 2020) of Llama and DeepSeek-V3 dense
// layers: down(silu(gate(x)) ⊙ up(x)).
//
// The gate is one fused autograd node. With σ = 1/(1+e⁻ᵃ), for y = a·σ(a)·u:
//   ∂y/∂u = a·σ(a)
//   ∂y/∂a = u · σ(a) · (1 + a·(1 − σ(a)))
// The elementwise work is CRowKernels' (the CPU's vector width, an exp in fused multiply-adds):
// the autograd node runs `mtp_swiglu_forward` (which also keeps σ) and `mtp_swiglu_backward`,
// the inference path (``MLP/Frozen``, in place) `mtp_swiglu`, one loop with the forward's, so
// training and decoding gate alike, bit for bit, on every instruction set.

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
    let perBlock = Swift.max(1, 16_384 / Swift.max(1, half))
    let y = Tensor.makeFloat(Array(gateUp.shape.dropLast()) + [half]) { out in
        let xp = UnsafePointer(x.floatPointer), sp = sigma.pointer
        Parallel.forEachBlock(count: rows, minimumPerBlock: perBlock) { block in
            let r = block.lowerBound
            mtp_swiglu_forward(xp + r * width, xp + r * width + half, block.count, half, width, out + r * half, sp + r * half)
        }
    }.rounded(to: gateUp.dtype)
    let shape = gateUp.shape
    return y.recording([gateUp]) { g in
        let gf = g.float32Values()
        let grad = Tensor.uninitialized(shape, dtype: .float32)
        let gp = UnsafePointer(gf.floatPointer), xp = UnsafePointer(x.floatPointer), sp = UnsafePointer(sigma.pointer)
        let dp = grad.floatPointer
        Parallel.forEachBlock(count: rows, minimumPerBlock: perBlock) { block in
            let r = block.lowerBound
            mtp_swiglu_backward(gp + r * half, xp + r * width, xp + r * width + half, sp + r * half, block.count, half, width,
                                dp + r * width, dp + r * width + half)
        }
        return [grad]
    }
}

/// `silu(gate) ⊙ up`, elementwise, as one fused autograd node (CRowKernels' `mtp_swiglu_forward`
/// and `mtp_swiglu_backward`: the bits of decoding's `mtp_swiglu`, on every instruction set).
///
/// - Parameters:
///   - gate, up: floating-point tensors of one shape.
/// - Returns: the same shape, in the promoted dtype (computed in Float32).
/// - Throws: ``Tensors/TensorError`` when the shapes differ or a dtype is not floating point.
///
/// Edge cases: gates below about −88.72 give σ = 0 (e^(−a) overflows), so silu(a) = ±0; between
/// −88.72 and −88, σ ≈ 6e−39 (the exp's argument is clamped to 88); gates above about 17 give
/// σ = 1, so silu(a) = a exactly.
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
        forEachBlock(n) { lo, hi in mtp_swiglu_forward(ap + lo, up + lo, 1, hi - lo, hi - lo, out + lo, sp + lo) }
    }.rounded(to: DType.promoted(gate.dtype, up.dtype))
    return y.recording([gate, up]) { g in
        let gf = g.float32Values()
        let dGate = Tensor.uninitialized(gf.shape, dtype: .float32)
        let dUp = Tensor.uninitialized(gf.shape, dtype: .float32)
        let gp = UnsafePointer(gf.floatPointer), ap = UnsafePointer(a.floatPointer), up = UnsafePointer(u.floatPointer)
        let sp = UnsafePointer(sigma.pointer), da = dGate.floatPointer, du = dUp.floatPointer
        forEachBlock(n) { lo, hi in
            mtp_swiglu_backward(gp + lo, ap + lo, up + lo, sp + lo, 1, hi - lo, hi - lo, da + lo, du + lo)
        }
        return [dGate, dUp]
    }
}

/// Splits `0..<n` into blocks of 16K elements and runs them in parallel.
private func forEachBlock(_ n: Int, _ body: (Int, Int) -> Void) {
    let block = 16_384
    Parallel.forEachBlock(count: (n + block - 1) / block, minimumPerBlock: 2) { r in
        body(r.lowerBound * block, Swift.min(n, r.upperBound * block))
    }
}

// MARK: - Inference

extension MLP {
    /// A frozen Float32 copy of the MLP for inference on raw rows (no autograd). Its SwiGLU is
    /// the CRowKernels row kernel, bit for bit the autograd forward's (`SwiGLURowKernelTests`),
    /// the same bits on every instruction set.
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
