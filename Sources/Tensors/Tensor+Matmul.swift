// Matrix products through BLAS.sgemm (oneDNN or OpenBLAS), batched over leading axes with broadcasting.

extension Tensor {
    /// The matrix product of the last two axes, broadcasting leading (batch) axes
    /// like torch.matmul. A 1-D operand is treated as a row (left) or column (right)
    /// vector and that axis is dropped from the result.
    ///
    /// - Parameters:
    ///   - transposeA, transposeB: use the transpose of an operand's last two axes
    ///     without copying it (BLAS reads it transposed).
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when inner extents or batch axes disagree.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        guard a.rank >= 1, b.rank >= 1 else {
            throw TensorError.shapeMismatch("matmul needs rank >= 1 operands, got \(a.shape) and \(b.shape)")
        }
        // b first: for vector · vector the inner call then squeezes [1, 1] → [1] and this one → [].
        if b.rank == 1 { return try matmul(a, b.unsqueezed(axis: -1), transposeA: transposeA, transposeB: false).squeezed(axis: -1) }
        if a.rank == 1 { return try matmul(a.unsqueezed(axis: 0), b, transposeA: false, transposeB: transposeB).squeezed(axis: -2) }
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (k2, n) = transposeB ? (bc, br) : (br, bc)
        guard k == k2 else {
            throw TensorError.shapeMismatch("matmul: inner extents differ, \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        }
        if b.rank == 2 && !transposeA && a.rank > 2 {
            return try rowsTimesMatrix(a, b, transposeB: transposeB, n: n)
        }
        let batch = try broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)))
        let af = try a.float32Values().expanded(to: batch + [ar, ac])
        let bf = try b.float32Values().expanded(to: batch + [br, bc])
        let count = elementCount(batch)
        let out = Tensor.makeFloat(batch + [m, n]) { c in
            for i in 0..<count {
                BLAS.sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                           alpha: 1, a: af.floatPointer + i * ar * ac, lda: ac,
                           b: bf.floatPointer + i * br * bc, ldb: bc,
                           beta: 0, c: c + i * m * n, ldc: n)
            }
        }.rounded(to: DType.promoted(a.dtype, b.dtype).isFloatingPoint ? DType.promoted(a.dtype, b.dtype) : .float32)
        let needA = a.requiresGrad, needB = b.requiresGrad
        return out.recording([a, b]) { g in
            // C = op(A)·op(B):  dop(A) = G·op(B)ᵀ,  dop(B) = op(A)ᵀ·G.
            var ga: Tensor?, gb: Tensor?
            if needA {
                let d = transposeA ? try matmul(bf, g, transposeA: transposeB, transposeB: true)
                                   : try matmul(g, bf, transposeB: !transposeB)
                ga = try d.summed(toShape: a.shape)
            }
            if needB {
                let d = transposeB ? try matmul(g, af, transposeA: true, transposeB: transposeA)
                                   : try matmul(af, g, transposeA: !transposeA)
                gb = try d.summed(toShape: b.shape)
            }
            return [ga, gb]
        }
    }

    /// `[..., M, K] · op(B)` with a 2-D `B`: every leading axis folds into the rows, so
    /// this is one GEMM of `[Π, K] · op(B)` (the layer case, x·Wᵀ), not one per batch
    /// entry with B copied for each.
    private static func rowsTimesMatrix(_ a: Tensor, _ b: Tensor, transposeB: Bool, n: Int) throws -> Tensor {
        let k = a.shape[a.rank - 1]
        let rows = a.count / Swift.max(k, 1)
        let af = a.float32Values(), bf = b.float32Values()
        let outShape = Array(a.shape.dropLast()) + [n]
        let out = Tensor.makeFloat(outShape) { c in
            BLAS.sgemm(transA: false, transB: transposeB, m: rows, n: n, k: k, alpha: 1, a: af.floatPointer, lda: k,
                       b: bf.floatPointer, ldb: b.shape[1], beta: 0, c: c, ldc: n)
        }.rounded(to: DType.promoted(a.dtype, b.dtype).isFloatingPoint ? DType.promoted(a.dtype, b.dtype) : .float32)
        let needA = a.requiresGrad, needB = b.requiresGrad
        return out.recording([a, b]) { g in
            // C = A·op(B): dA = G·op(B)ᵀ; dop(B) = Aᵀ·G, summed over all rows by the GEMM itself.
            var ga: Tensor?, gb: Tensor?
            if needA {
                ga = Tensor.makeFloat(a.shape) { d in
                    BLAS.sgemm(transA: false, transB: !transposeB, m: rows, n: k, k: n, alpha: 1, a: g.floatPointer, lda: n,
                               b: bf.floatPointer, ldb: b.shape[1], beta: 0, c: d, ldc: k)
                }
            }
            if needB {
                gb = Tensor.makeFloat(b.shape) { d in
                    if transposeB {  // B is [n, k]: dB = Gᵀ·A
                        BLAS.sgemm(transA: true, transB: false, m: n, n: k, k: rows, alpha: 1, a: g.floatPointer, lda: n,
                                   b: af.floatPointer, ldb: k, beta: 0, c: d, ldc: k)
                    } else {         // B is [k, n]: dB = Aᵀ·G
                        BLAS.sgemm(transA: true, transB: false, m: k, n: n, k: rows, alpha: 1, a: af.floatPointer, lda: k,
                                   b: g.floatPointer, ldb: n, beta: 0, c: d, ldc: n)
                    }
                }
            }
            return [ga, gb]
        }
    }
}
