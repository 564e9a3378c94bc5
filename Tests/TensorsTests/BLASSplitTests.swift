import XCTest
@testable import Tensors

/// BLAS.sgemm's split of a product over the cores (each engine single-threaded): every layout,
/// split by rows and by columns, with alpha, beta 0 and 1 and padded leading dimensions,
/// with each GEMM engine, against a Double triple loop; nothing outside C's m × n elements is written.
final class BLASSplitTests: XCTestCase {
    /// The engines this host must have: OpenBLAS, and oneDNN on Linux (scripts/ensure-deps.sh installs it).
    static func engines(file: StaticString = #filePath, line: UInt = #line) -> [BLAS.Engine] {
        #if os(Linux)
        XCTAssertTrue(BLAS.Engine.oneDNN.isAvailable, "oneDNN did not load: \(OneDNN.loadFailure)", file: file, line: line)
        #endif
        return BLAS.Engine.allCases.filter(\.isAvailable)
    }

    func product(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float, ways: Int,
                 engine: BLAS.Engine = BLAS.engine) {
        let pad = 3
        let lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
        var g = SplitMix64(seed: UInt64(m * 31 + n * 7 + k))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let a = values((transA ? k : m) * lda), b = values((transB ? n : k) * ldb), c0 = values(m * ldc)
        var c = c0
        let saved = BLAS.Split.maximumWays
        BLAS.Split.maximumWays = ways
        defer { BLAS.Split.maximumWays = saved }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda,
                               b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc, engine: engine)
                }
            }
        }
        for i in 0..<m {
            for j in 0..<ldc {
                let got = c[i * ldc + j]
                guard j < n else {
                    XCTAssertEqual(got.bitPattern, c0[i * ldc + j].bitPattern, "padding (\(i), \(j)) written")
                    continue
                }
                var s = 0.0
                for kk in 0..<k {
                    let x = Double(transA ? a[kk * lda + i] : a[i * lda + kk])
                    let y = Double(transB ? b[j * ldb + kk] : b[kk * ldb + j])
                    s += x * y
                }
                let want = Double(alpha) * s + Double(beta) * Double(c0[i * ldc + j])
                XCTAssertEqual(Double(got), want, accuracy: 1e-5 * Double(k),
                               "\(engine) \(transA)\(transB) \(m)x\(n)x\(k) ways \(ways) at (\(i), \(j))")
            }
        }
    }

    func testSplitByRowsAndByColumnsMatchesADoubleReference() {
        XCTAssertGreaterThanOrEqual(BLAS.Split.ways(m: 200, n: 70, k: 100), Swift.min(2, BLAS.Split.maximumWays))
        for engine in Self.engines() {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                // 1.4M multiply-adds, rows ≥ 16 per block: split by rows (the last block short).
                product(transA: ta, transB: tb, m: 203, n: 70, k: 100, alpha: 1, beta: 0, ways: 3, engine: engine)
                // 1.2M, 20 rows and 600 columns: split by columns.
                product(transA: ta, transB: tb, m: 20, n: 600, k: 100, alpha: 0.5, beta: 1, ways: 2, engine: engine)
                // Unsplit (below a million multiply-adds), beta 0.5, a single row and column.
                product(transA: ta, transB: tb, m: 37, n: 29, k: 53, alpha: -1, beta: 0.5, ways: 2, engine: engine)
                product(transA: ta, transB: tb, m: 1, n: 1, k: 300, alpha: 1, beta: 0, ways: 2, engine: engine)
            }
        }
    }

    func testSmallProductsAreNotSplit() {
        XCTAssertEqual(BLAS.Split.ways(m: 64, n: 64, k: 64), 1, "262K multiply-adds: one call")
        XCTAssertEqual(BLAS.Split.ways(m: 8, n: 8, k: 100_000), 1, "neither side reaches two blocks of 16")
    }

    func testSharingTheCoresSetsTheSplit() throws {
        try XCTSkipUnless(BLAS.Split.enabled, "OpenBLAS keeps its own pool here (OPENBLAS_NUM_THREADS or MTP_BLAS_SPLIT=0)")
        let saved = BLAS.Split.maximumWays
        defer { BLAS.Split.maximumWays = saved }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        XCTAssertEqual(BLAS.shareThreads(among: 2), Swift.max(1, cores / 2))
        XCTAssertEqual(BLAS.Split.maximumWays, Swift.max(1, cores / 2))
        XCTAssertEqual(BLAS.threads, 1, "OpenBLAS stays single-threaded")
    }
}
