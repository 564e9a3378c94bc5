// Several bias-free projections of one input as one GEMM: y = x·[W₀; W₁; …]ᵀ, the
// outputs side by side on the last axis (the fused Q/K/V and gate/up projections of
// Megatron-LM and llm.c; the weights stay separate parameters, as checkpoints name them).
//
// Legend: R rows (all leading axes of x folded), K input features, Oᵢ the outputs of Wᵢ
// (`[Oᵢ, K]`), O = ΣOᵢ, offᵢ = Σ_{j<i} Oⱼ.
// Forward:  W = [W₀; W₁; …] (`[O, K]`, a copy of the weights)   Y = X·Wᵀ   [R, O]   one sgemm
// Backward, G = ∂L/∂Y:
//   dX  = G·W                      [R, K]   one sgemm (k = O)
//   dW  = Gᵀ·X                     [O, K]   one sgemm, then rows offᵢ ..< offᵢ+Oᵢ are dWᵢ

extension Tensor {
    /// `x·[W₀; W₁; …]ᵀ` over the last axis: the projections of `x` by every weight, side by side.
    ///
    /// - Parameters:
    ///   - x: `[..., K]`, floating point.
    ///   - weights: one or more `[Oᵢ, K]` floating-point matrices.
    /// - Returns: `[..., ΣOᵢ]`, in the promoted dtype (computed in Float32).
    /// - Throws: ``TensorError`` when a weight is not `[·, K]` or a dtype is not floating point.
    public static func fusedLinear(_ x: Tensor, weights: [Tensor]) throws -> Tensor {
        guard x.rank >= 1, !weights.isEmpty else {
            throw TensorError.shapeMismatch("fusedLinear needs an input of rank >= 1 and at least one weight, got \(x.shape) and \(weights.count) weights")
        }
        let k = x.shape[x.rank - 1]
        for w in weights where w.rank != 2 || w.shape[1] != k || w.shape[0] < 1 {
            throw TensorError.shapeMismatch("fusedLinear: weight \(w.shape) does not map \(k) input features")
        }
        guard x.dtype.isFloatingPoint, weights.allSatisfy({ $0.dtype.isFloatingPoint }) else {
            throw TensorError.unsupportedDType("fusedLinear needs floating-point operands, got \(x.dtype) and \(weights.map(\.dtype))")
        }
        let outs = weights.map { $0.shape[0] }, o = outs.reduce(0, +)
        let offsets = outs.indices.map { outs[..<$0].reduce(0, +) }
        let rows = x.count / Swift.max(k, 1)
        let xf = x.float32Values()
        let w = Tensor.makeFloat([o, k]) { c in
            for (i, weight) in weights.enumerated() {
                let wf = weight.float32Values()
                (c + offsets[i] * k).update(from: wf.floatPointer, count: outs[i] * k)
            }
        }
        let dtype = weights.reduce(x.dtype) { DType.promoted($0, $1.dtype) }
        let y = Tensor.makeFloat(Array(x.shape.dropLast()) + [o]) { c in
            BLAS.sgemm(transA: false, transB: true, m: rows, n: o, k: k, alpha: 1, a: xf.floatPointer, lda: k,
                       b: w.floatPointer, ldb: k, beta: 0, c: c, ldc: o)
        }.rounded(to: dtype)
        let needX = x.requiresGrad, needW = weights.map(\.requiresGrad)
        let xShape = x.shape
        return y.recording([x] + weights) { g in
            let gf = g.float32Values()
            defer { withExtendedLifetime(gf) {} }
            let gp = gf.floatPointer
            let dx = needX ? Tensor.makeFloat(xShape) { d in
                BLAS.sgemm(transA: false, transB: false, m: rows, n: k, k: o, alpha: 1, a: gp, lda: o,
                           b: w.floatPointer, ldb: k, beta: 0, c: d, ldc: k)
            } : nil
            guard needW.contains(true) else { return [dx] + needW.map { _ in nil } }
            // All weight gradients as one GEMM (a taller product runs faster than several
            // short ones), then cut into the parameters' tensors.
            let all = ScratchBuffer(count: o * k)
            BLAS.sgemm(transA: true, transB: false, m: o, n: k, k: rows, alpha: 1, a: gp, lda: o,
                       b: xf.floatPointer, ldb: k, beta: 0, c: all.pointer, ldc: k)
            let dw: [Tensor?] = outs.indices.map { i in
                guard needW[i] else { return nil }
                return Tensor.makeFloat([outs[i], k]) { d in d.update(from: all.pointer + offsets[i] * k, count: outs[i] * k) }
            }
            return [dx] + dw
        }
    }
}
