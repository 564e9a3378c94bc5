// The one place that talks to BLAS: OpenBLAS (CBLAS) on Linux, Accelerate on Apple.

import Dispatch
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Single-precision GEMM on row-major matrices: `C = alpha · op(A) · op(B) + beta · C`.
public enum BLAS {
    /// - Parameters:
    ///   - transA, transB: whether A (stored `[k, m]` when true, else `[m, k]`) and B
    ///     (stored `[n, k]` when true, else `[k, n]`) are transposed.
    ///   - m, n, k: the product's sizes; `lda`, `ldb`, `ldc` the row strides.
    @inlinable
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make it explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let timed = Timing.enabled
        let start = timed ? DispatchTime.now().uptimeNanoseconds : 0
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        if timed { Timing.add(since: start, shape: Timing.byShape ? Timing.Shape(transA, transB, m, n, k) : nil) }
    }
}
