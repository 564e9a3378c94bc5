import XCTest
@testable import Tensors

/// Choosing the GEMM engine: MTP_GEMM's values, what the default is, and that the engines
/// agree with each other on a training step's shapes (each against a Double reference is
/// BLASSplitTests).
final class BLASEngineTests: XCTestCase {
    func testTheVariableNamesAnEngineOrIsRefusedWithItsValue() throws {
        XCTAssertNil(try BLAS.requestedEngine(in: [:]))
        XCTAssertNil(try BLAS.requestedEngine(in: ["MTP_GEMM": " "]))
        XCTAssertEqual(try BLAS.requestedEngine(in: ["MTP_GEMM": "OpenBLAS"]), .openBLAS)
        XCTAssertThrowsError(try BLAS.requestedEngine(in: ["MTP_GEMM": "mkl"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("MTP_GEMM=mkl") && text.contains("openblas or onednn"), text)
        }
        if BLAS.Engine.oneDNN.isAvailable {
            XCTAssertEqual(try BLAS.requestedEngine(in: ["MTP_GEMM": "onednn"]), .oneDNN)
        } else {
            XCTAssertThrowsError(try BLAS.requestedEngine(in: ["MTP_GEMM": "onednn"])) { error in
                XCTAssertTrue("\(error)".contains("could not be loaded"), "\(error)")
            }
        }
    }

    func testTheDefaultRule() {
        func rule(_ environment: [String: String], loads: Bool) -> BLAS.Engine {
            BLAS.defaultEngine(in: environment, oneDNNLoads: { loads })
        }
        XCTAssertEqual(rule([:], loads: true), .oneDNN)
        XCTAssertEqual(rule([:], loads: false), .openBLAS)
        XCTAssertEqual(rule(["MTP_GEMM": "openblas"], loads: true), .openBLAS)
        XCTAssertEqual(rule(["MTP_GEMM": " ONEDNN\n", "OPENBLAS_NUM_THREADS": "2"], loads: true), .oneDNN)
        XCTAssertEqual(rule(["MTP_GEMM": "onednn"], loads: false), .openBLAS, "an unloadable request falls back")
        XCTAssertEqual(rule(["MTP_GEMM": "mkl"], loads: true), .oneDNN, "an unknown value is ignored here (mtp refuses it)")
        XCTAssertEqual(rule(["OPENBLAS_NUM_THREADS": "2"], loads: true), .openBLAS, "OpenBLAS's own pool asked for")
        XCTAssertEqual(rule(["MTP_BLAS_SPLIT": "0"], loads: true), .openBLAS)
        XCTAssertEqual(rule(["MTP_BLAS_SPLIT": "1"], loads: true), .oneDNN)
        XCTAssertTrue(BLAS.engineName.hasPrefix(BLAS.engine.rawValue) || BLAS.engineName == "accelerate", BLAS.engineName)
        XCTAssertTrue(BLAS.engineReport().hasPrefix("GEMM: "), BLAS.engineReport())
        #if os(Linux)
        XCTAssertTrue(BLAS.Engine.oneDNN.isAvailable, "oneDNN did not load: \(OneDNN.loadFailure)")
        XCTAssertEqual(OneDNN.loaded?.version.split(separator: ".").count, 3)
        #endif
    }

    /// oneDNN itself computes every layout (no silent fallback to OpenBLAS): each call is
    /// accepted, and C matches a Double reference, with padded leading dimensions.
    func testOneDNNAcceptsEveryLayoutAndComputesIt() throws {
        #if os(Linux)
        let oneDNN = try XCTUnwrap(OneDNN.loaded, OneDNN.loadFailure)
        let m = 7, n = 5, k = 9, pad = 2
        var g = SplitMix64(seed: 11)
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad
            let a = (0..<((ta ? k : m) * lda)).map { _ in Float(g.next() % 201) / 100 - 1 }
            let b = (0..<((tb ? n : k) * ldb)).map { _ in Float(g.next() % 201) / 100 - 1 }
            let c0 = (0..<(m * ldc)).map { _ in Float(g.next() % 201) / 100 - 1 }
            var c = c0
            let accepted = oneDNN.product(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                                          beta: 2, c: &c, ldc: ldc)
            XCTAssertTrue(accepted, "oneDNN refused \(ta)\(tb)")
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k { s += Double(ta ? a[p * lda + i] : a[i * lda + p]) * Double(tb ? b[j * ldb + p] : b[p * ldb + j]) }
                    XCTAssertEqual(Double(c[i * ldc + j]), 0.5 * s + 2 * Double(c0[i * ldc + j]), accuracy: 1e-5, "\(ta)\(tb) (\(i), \(j))")
                }
                for j in n..<ldc { XCTAssertEqual(c[i * ldc + j].bitPattern, c0[i * ldc + j].bitPattern, "padding written") }
            }
        }
        #else
        throw XCTSkip("oneDNN is loaded on Linux only")
        #endif
    }

    /// The engines compute the same products to Float rounding on a projection's three GEMMs
    /// (forward, input gradient, weight gradient), split over the cores.
    func testTheEnginesAgreeOnAProjectionsProducts() throws {
        let engines = BLASSplitTests.engines()
        try XCTSkipIf(engines.count < 2, "one engine here")
        let tokens = 192, hidden = 64, out = 160  // about 2M multiply-adds each: split
        let x = Tensor.uniform([tokens, hidden], low: -1, high: 1, seed: 3).floats
        let w = Tensor.uniform([out, hidden], low: -1, high: 1, seed: 4).floats
        let dy = Tensor.uniform([tokens, out], low: -1, high: 1, seed: 5).floats
        func run(_ engine: BLAS.Engine) -> [[Float]] {
            var y = [Float](repeating: .nan, count: tokens * out)
            var dx = [Float](repeating: .nan, count: tokens * hidden)
            var dw = [Float](repeating: 1, count: out * hidden)
            BLAS.sgemm(transA: false, transB: true, m: tokens, n: out, k: hidden, alpha: 1, a: x, lda: hidden, b: w, ldb: hidden,
                       beta: 0, c: &y, ldc: out, engine: engine)
            BLAS.sgemm(transA: false, transB: false, m: tokens, n: hidden, k: out, alpha: 1, a: dy, lda: out, b: w, ldb: hidden,
                       beta: 0, c: &dx, ldc: hidden, engine: engine)
            BLAS.sgemm(transA: true, transB: false, m: out, n: hidden, k: tokens, alpha: 1, a: dy, lda: out, b: x, ldb: hidden,
                       beta: 1, c: &dw, ldc: hidden, engine: engine)
            return [y, dx, dw]
        }
        let results = engines.map(run)
        for (index, name) in ["y", "dx", "dw"].enumerated() {
            let a = results[0][index], b = results[1][index]
            let worst = zip(a, b).map { abs($0 - $1) / Swift.max(1, abs($0)) }.max() ?? .nan
            XCTAssertLessThan(worst, 1e-5, "\(name): \(engines[0]) and \(engines[1]) differ by \(worst)")
            XCTAssertFalse(a.contains(where: \.isNaN) || b.contains(where: \.isNaN), "\(name) left unwritten")
        }
    }
}
