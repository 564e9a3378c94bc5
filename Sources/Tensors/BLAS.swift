// The one place that talks to BLAS: OpenBLAS (CBLAS) on Linux, Accelerate on Apple.

import Dispatch
import Foundation
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Single-precision GEMM on row-major matrices: `C = alpha · op(A) · op(B) + beta · C`.
///
/// Engine: each product goes to ``engine`` (oneDNN's `dnnl_sgemm` where it loads, else
/// OpenBLAS's `cblas_sgemm`; see ``Engine``), or to the engine a call names.
///
/// Threads: the engine runs single-threaded and ``sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:engine:)``
/// splits each product itself, into up to ``Split/maximumWays`` blocks along C's longer side
/// (rows or columns), computed at once on ``Parallel``'s threads — the same threads as every
/// other parallel loop of a step. OpenBLAS's own pool would spin its idle threads in
/// `sched_yield` between products, competing with that work for the same cores (a fifth
/// of the CPU time of a small training step). An `OPENBLAS_NUM_THREADS` in the environment
/// keeps OpenBLAS's pool instead (and no split), as does `MTP_BLAS_SPLIT=0`; both also make
/// OpenBLAS the default engine. oneDNN's products are always split (each call single-threaded).
public enum BLAS {
    /// - Parameters:
    ///   - transA, transB: whether A (stored `[k, m]` when true, else `[m, k]`) and B
    ///     (stored `[n, k]` when true, else `[k, n]`) are transposed.
    ///   - m, n, k: the product's sizes; `lda`, `ldb`, `ldc` the row strides.
    ///   - engine: the library that computes it (an unavailable one falls back to OpenBLAS).
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, engine: Engine = BLAS.engine) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make it explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let timed = Timing.enabled
        let start = timed ? DispatchTime.now().uptimeNanoseconds : 0
        // oneDNN is always split by us (each call single-threaded); OpenBLAS unless its own pool is kept.
        let ways = Split.enabled || engine == .oneDNN ? Split.ways(m: m, n: n, k: k) : 1
        if ways > 1 {
            split(ways: ways, engine: engine, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            // One call: a small product on this thread, or OpenBLAS's own pool when the split is off.
            product(engine: engine, transA: transA, transB: transB,
                    m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
        if timed { Timing.add(since: start, shape: Timing.byShape ? Timing.Shape(transA, transB, m, n, k) : nil) }
    }

    /// The product as `ways` single-threaded BLAS calls at once, each on a block of C's rows
    /// (multiples of 16) or of its columns. Every call packs all of the operand it does not
    /// split, so the split is along C's longer side (rows: each call packs all of op(B),
    /// k × n; columns: all of op(A), m × k), unless that side has fewer than 16 per block.
    /// Each element of C is still one call's dot product over all of k.
    private static func split(ways: Int, engine: Engine, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let byRows = m >= n ? (m >= 16 * ways || n < 16 * ways) : n < 16 * ways
        let extent = byRows ? m : n
        let units = (extent + 15) / 16
        let per = (units + ways - 1) / ways
        let left = UncheckedSendable(a), right = UncheckedSendable(b), out = UncheckedSendable(c)
        Parallel.forEachBlock(count: (units + per - 1) / per) { blocks in
            for block in blocks {
                let lo = block * per * 16, hi = Swift.min(extent, lo + per * 16)
                guard lo < hi else { continue }
                if byRows {  // rows lo..<hi of C: op(A)'s rows lo..<hi
                    product(engine: engine, transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                            a: left.value + (transA ? lo : lo * lda), lda: lda, b: right.value, ldb: ldb,
                            beta: beta, c: out.value + lo * ldc, ldc: ldc)
                } else {     // columns lo..<hi of C: op(B)'s columns lo..<hi
                    product(engine: engine, transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha,
                            a: left.value, lda: lda, b: right.value + (transB ? lo * ldb : lo), ldb: ldb,
                            beta: beta, c: out.value + lo, ldc: ldc)
                }
            }
        }
    }

    /// One engine call: oneDNN on this thread alone; OpenBLAS with its pool size as set
    /// (single-threaded while ``Split/enabled``). OpenBLAS computes what oneDNN refuses.
    private static func product(engine: Engine, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if engine == .oneDNN, let oneDNN = OneDNN.loaded,
           oneDNN.product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc) {
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// How ``sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:engine:)`` splits products.
    public enum Split {
        /// Whether products are split (OpenBLAS single-threaded): decided once, at the first
        /// product — true with OpenBLAS unless `OPENBLAS_NUM_THREADS` or `MTP_BLAS_SPLIT=0`
        /// is in the environment.
        public static let enabled: Bool = {
            let env = ProcessInfo.processInfo.environment
            guard env["OPENBLAS_NUM_THREADS"] == nil, env["MTP_BLAS_SPLIT"] != "0", setThreads(1) else { return false }
            return true
        }()

        /// The most blocks a product is split into: the core count, or a share of it set by
        /// ``BLAS/shareThreads(among:)`` (ranks or pipeline stages sharing a host's cores).
        public static var maximumWays: Int {
            get { lock.withLock { storedWays } }
            set { lock.withLock { storedWays = Swift.max(1, newValue) } }
        }
        nonisolated(unsafe) private static var storedWays = Parallel.width
        private static let lock = NSLock()

        /// The blocks for an m × n × k product: one below about a million multiply-adds
        /// (the split would cost more than it saves), else ``maximumWays``.
        static func ways(m: Int, n: Int, k: Int) -> Int {
            guard m * n * k >= 1 << 20, m >= 32 || n >= 32 else { return 1 }
            return Swift.min(maximumWays, Swift.max(m, n) / 16)
        }
    }
}
