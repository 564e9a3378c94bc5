// RMSNorm: the fused node against a float64 loop, and its hand-written backward
// against finite differences.

import NN
import Tensors
import TestSupport
import XCTest

final class RMSNormTests: XCTestCase {
    func testValuesMatchNaiveReference() throws {
        for (shape, eps) in [([7], Float(1e-6)), ([3, 5], 1e-5), ([2, 3, 16], 1e-6), ([4, 19], 0.1)] {
            let norm = RMSNorm(dimension: shape.last!, epsilon: eps)
            norm.weight.value = randomTensor([shape.last!], 0.5, 1.5, seed: 31)
            let x = randomTensor(shape, -3, 3, seed: 32)
            let y = try norm(x)
            XCTAssertEqual(y.shape, shape)
            assertClose(y, Naive.rmsNorm(doubles(x), doubles(norm.weight.value), eps: Double(eps)), rtol: 1e-5, atol: 1e-6)
        }
    }

    func testGradientsWithRespectToInputAndWeight() throws {
        // Sizes around the SIMD width and across several row chunks.
        for shape in [[3, 5], [2, 3, 9], [40, 8]] {
            let norm = RMSNorm(dimension: shape.last!, epsilon: 1e-5)
            norm.weight.value = randomTensor([shape.last!], 0.5, 1.5, seed: 33)
            let x = randomTensor(shape, seed: 34)
            XCTAssertNil(try layerGradientCheck([x], parameters: norm.parameters) { try norm($0[0]) }, "\(shape)")
        }
    }

    func testBackwardAgainstAnalyticReferenceOverManyRowChunks() throws {
        // 3000 rows split into several fixed chunks whose weight-gradient partials are summed.
        let (rows, d) = (3000, 4)
        let norm = RMSNorm(dimension: d, epsilon: 1e-6)
        norm.weight.value = randomTensor([d], 0.5, 1.5, seed: 35)
        let x = randomTensor([rows, d], seed: 36).requiringGrad()
        let g = randomTensor([rows, d], seed: 37)
        try norm(x).backward(g)
        let xs = doubles(x), gs = doubles(g), w = doubles(norm.weight.value)
        var dx = [Double](repeating: 0, count: rows * d), dw = [Double](repeating: 0, count: d)
        for r in 0..<rows {
            let row = Array(xs[(r * d)..<(r * d + d)]), gr = Array(gs[(r * d)..<(r * d + d)])
            let inv = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(d) + 1e-6).squareRoot()
            let a = (0..<d).map { gr[$0] * w[$0] }
            let ax = (0..<d).map { a[$0] * row[$0] }.reduce(0, +)
            for j in 0..<d {
                dx[r * d + j] = inv * a[j] - pow(inv, 3) * row[j] * ax / Double(d)
                dw[j] += gr[j] * row[j] * inv
            }
        }
        assertClose(x.grad!, dx, rtol: 1e-4, atol: 1e-5)
        assertClose(norm.weight.grad!, dw, rtol: 1e-4, atol: 1e-4)
    }

    func testEdgeCases() throws {
        let norm = RMSNorm(dimension: 4)
        // A zero row stays zero; scaling a row does not change its output (for ms ≫ ε).
        let x = try Tensor([0, 0, 0, 0, 1, 2, 3, 4, 10, 20, 30, 40] as [Float], shape: [3, 4])
        let y = try norm(x).floats
        XCTAssertEqual(Array(y[0..<4]), [0, 0, 0, 0])
        for j in 0..<4 { XCTAssertEqual(y[4 + j], y[8 + j], accuracy: 1e-5) }
        // The result takes the promoted dtype of input and weight, as in PyTorch.
        XCTAssertEqual(try norm(x.cast(to: .bfloat16)).dtype, .float32)
        norm.weight.value = norm.weight.value.cast(to: .bfloat16)
        XCTAssertEqual(try norm(x.cast(to: .bfloat16)).dtype, .bfloat16)
        XCTAssertThrowsError(try norm(Tensor.zeros([2, 5])))
        XCTAssertThrowsError(try norm(Tensor.zeros([2, 4], dtype: .int32)))
    }
}
