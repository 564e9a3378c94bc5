// The batch-invariant decoding kernel of `Linear.Frozen` (CRowKernels): for every row
// count 1 … 8, every shape the default model and the tests' models use and every
// instruction set this CPU runs, a row's bits are the same alone as in a batch (with and
// without accumulation), equal a fused multiply-add chain computed here in Swift, and
// equal across instruction sets. Also: calls of up to 64 rows run the kernel 8 rows at a
// time (each row's bits as alone), larger calls (BLAS) stay close to it.
// This replaces the run-time probe of the BLAS that decoding once used.

import NN
import Tensors
import TestSupport
import XCTest

final class RowKernelTests: XCTestCase {
    /// `(in, out)` of every projection: the default model (H = 96, I = 256, V = 64 or 24, D = 2:
    /// q/k/v/o, gate/up, down, eh_proj, LM head), the byte-level LM head (V = 256), and the
    /// odd sizes of the tests' small models (tails of a vector).
    static let shapes = [(96, 96), (96, 256), (256, 96), (192, 96), (96, 64), (96, 24), (96, 11),
                         (16, 16), (16, 24), (24, 16), (32, 16), (16, 11), (8, 5), (8, 16), (1, 1), (7, 33), (40, 17)]

    private func frozen(_ inFeatures: Int, _ outFeatures: Int, seed: UInt64) -> Linear.Frozen {
        var g = SplitMix64(seed: seed)
        return Linear.Frozen(Linear(inFeatures: inFeatures, outFeatures: outFeatures, std: 0.5, generator: &g))
    }

    private func random(_ count: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<count).map { _ in g.nextUniform() * 2 - 1 }
    }

    func testRowsAreBitIdenticalAloneAndBatchedForEveryRowCountShapeAndVariant() {
        let variants = Linear.KernelVariant.supported
        XCTAssertTrue(variants.contains(.generic))
        print("row kernel: running \(Linear.KernelVariant.current), testing \(variants)")
        for (i, (inputs, outputs)) in Self.shapes.enumerated() {
            let layer = frozen(inputs, outputs, seed: UInt64(i))
            let weight = layer.weightValues
            let rows = Linear.Frozen.kernelRows
            let x = random(rows * inputs, seed: 100 + UInt64(i))
            let start = random(rows * outputs, seed: 200 + UInt64(i))
            // The contract: s = fma(x[r, k], w[k, j], s) over k from +0, then y + s when accumulating.
            var reference = [Float](repeating: 0, count: rows * outputs)
            for r in 0..<rows {
                for j in 0..<outputs {
                    var s: Float = 0
                    for k in 0..<inputs { s.addProduct(x[r * inputs + k], weight[k * outputs + j]) }
                    reference[r * outputs + j] = s
                }
            }
            for accumulate in [false, true] {
                let expected = accumulate ? zip(start, reference).map { $0 + $1 } : reference
                for variant in variants {
                    for m in 1...rows {
                        var y = start
                        x.withUnsafeBufferPointer { xp in
                            y.withUnsafeMutableBufferPointer { layer.kernel(variant, xp.baseAddress!, rows: m, into: $0.baseAddress!,
                                                                            accumulate: accumulate) }
                        }
                        let batched = Array(y[0..<(m * outputs)]).map(\.bitPattern)
                        XCTAssertEqual(batched, expected[0..<(m * outputs)].map(\.bitPattern),
                                       "\(variant), \(m) rows, \(inputs)→\(outputs), accumulate \(accumulate)")
                        XCTAssertEqual(Array(y[(m * outputs)...]), Array(start[(m * outputs)...]),
                                       "\(variant) wrote past \(m) rows")
                        // Each row alone, from a buffer holding only that row (nothing to read past it).
                        for r in 0..<m {
                            let row = Array(x[(r * inputs)..<((r + 1) * inputs)])
                            var alone = Array(start[(r * outputs)..<((r + 1) * outputs)])
                            row.withUnsafeBufferPointer { xp in
                                alone.withUnsafeMutableBufferPointer { layer.kernel(variant, xp.baseAddress!, rows: 1, into: $0.baseAddress!,
                                                                                    accumulate: accumulate) }
                            }
                            XCTAssertEqual(alone.map(\.bitPattern), Array(batched[(r * outputs)..<((r + 1) * outputs)]),
                                           "\(variant), row \(r) of \(m), \(inputs)→\(outputs)")
                        }
                    }
                }
            }
        }
    }

    func testTheLayerRunsTheKernelUpTo64RowsAndBLASBeyond() {
        let layer = frozen(96, 256, seed: 3)
        for m in [1, 3, 8, 9, 20, 64, 65, 80] {
            let x = random(m * 96, seed: UInt64(m))
            var y = [Float](repeating: 0, count: m * 256)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { layer(xp.baseAddress!, rows: m, into: $0.baseAddress!) } }
            if m <= Linear.Frozen.chunkedKernelRows {
                // Every row as the kernel computes it alone.
                for r in 0..<m {
                    var alone = [Float](repeating: 0, count: 256)
                    x.withUnsafeBufferPointer { xp in
                        alone.withUnsafeMutableBufferPointer { layer.kernel(.current, xp.baseAddress! + r * 96, rows: 1, into: $0.baseAddress!) }
                    }
                    XCTAssertEqual(Array(y[(r * 256)..<((r + 1) * 256)]).map(\.bitPattern), alone.map(\.bitPattern), "row \(r) of \(m)")
                }
            } else {
                // BLAS: same values up to rounding.
                for r in 0..<m {
                    for j in 0..<256 {
                        var s = 0.0
                        for c in 0..<96 { s += Double(x[r * 96 + c]) * Double(layer.weightValues[c * 256 + j]) }
                        XCTAssertEqual(Double(y[r * 256 + j]), s, accuracy: 1e-4)
                    }
                }
            }
        }
    }
}
