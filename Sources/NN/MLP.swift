// The SwiGLU feed-forward block (Shazeer 2020) of Llama and DeepSeek-V3 dense
// layers: down(silu(gate(x)) ⊙ up(x)).
//
// The gate is one fused autograd node. With σ = 1/(1+e⁻ᵃ), for y = a·σ(a)·u:
//   ∂y/∂u = a·σ(a)
//   ∂y/∂a = u · σ(a) · (1 + a·(1 − σ(a)))

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
        try downProj(swiGLU(gate: gateProj(x), up: upProj(x)))
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
        forEachSIMDBlock(n) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let av = RowMath.load(ap + i)
                let s = 1 / (1 + RowMath.exp(-av))
                RowMath.store(s, sp + i)
                RowMath.store(av * s * RowMath.load(up + i), out + i)
                i += 8
            }
            while i < hi {
                let s = 1 / (1 + RowMath.exp(SIMD8(repeating: -ap[i]))[0])
                sp[i] = s
                out[i] = ap[i] * s * up[i]
                i += 1
            }
        }
    }.rounded(to: DType.promoted(gate.dtype, up.dtype))
    return y.recording([gate, up]) { g in
        let gf = g.float32Values()
        let dGate = Tensor.uninitialized(gf.shape, dtype: .float32)
        let dUp = Tensor.uninitialized(gf.shape, dtype: .float32)
        let gp = UnsafePointer(gf.floatPointer), ap = UnsafePointer(a.floatPointer), up = UnsafePointer(u.floatPointer)
        let sp = UnsafePointer(sigma.pointer), da = dGate.floatPointer, du = dUp.floatPointer
        forEachSIMDBlock(n) { lo, hi in
            var i = lo
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
        return [dGate, dUp]
    }
}

/// Splits `0..<n` into 8-aligned blocks of about 16K elements and runs them in parallel.
func forEachSIMDBlock(_ n: Int, _ body: (Int, Int) -> Void) {
    let block = 16_384
    Parallel.forEachBlock(count: (n + block - 1) / block, minimumPerBlock: 2) { r in
        body(r.lowerBound * block, Swift.min(n, r.upperBound * block))
    }
}
