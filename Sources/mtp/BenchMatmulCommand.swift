import ArgumentParser
import Foundation
import Tensors

/// `mtp bench matmul`: `Tensor.matmul` throughput on one product shape.
struct BenchMatmulCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "Time Tensor.matmul of [M, K] · [K, N] (Float32, BLAS.sgemm: oneDNN or OpenBLAS).")

    @Option(help: "Rows M.") var m = 2048
    @Option(help: "Inner size K.") var k = 1024
    @Option(help: "Columns N.") var n = 32000
    @Option(help: "Measured repeats after one warm-up.") var repeats = 5
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard m > 0, k > 0, n > 0, repeats > 0 else {
            throw ValidationError("sizes and repeats must be positive (m \(m), k \(k), n \(n), repeats \(repeats))")
        }
        try SizeLimits.checkMatmul(m: m, k: k, n: n)
    }

    func run() throws {
        let a = Tensor.uniform([m, k], low: -1, high: 1, seed: 1)
        let b = Tensor.uniform([k, n], low: -1, high: 1, seed: 2)
        _ = try Tensor.matmul(a, b)
        var times: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now()
            _ = try Tensor.matmul(a, b)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
        }
        times.sort()
        let median = times[times.count / 2]
        let gflops = 2.0 * Double(m) * Double(k) * Double(n) / median / 1e9
        print(String(format: "matmul [%d, %d] · [%d, %d]: median %.4f s, min %.4f s, %.1f GFLOP/s (%d cores, %@)",
                     m, k, k, n, median, times[0], gflops, Parallel.width, BLAS.engineName))
        if json {
            try JSONOutput.print(["seconds": JSONOutput.number(median), "gflops": JSONOutput.number(gflops),
                                  "gemm_engine": BLAS.engineName])
        }
    }
}
