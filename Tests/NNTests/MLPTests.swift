// The SwiGLU MLP and its fused gate.

import NN
import Tensors
import TestSupport
import XCTest

final class MLPTests: XCTestCase {
    func testValuesMatchNaiveReference() throws {
        var g = SplitMix64(seed: 81)
        let mlp = MLP(hiddenSize: 6, intermediateSize: 10, std: 0.5, generator: &g)
        let x = randomTensor([2, 3, 6], -2, 2, seed: 82)
        assertClose(try mlp(x), Naive.mlp(doubles(x), mlp), rtol: 1e-5, atol: 1e-6)
    }

    func testGradientsWithRespectToInputAndWeights() throws {
        var g = SplitMix64(seed: 83)
        let mlp = MLP(hiddenSize: 4, intermediateSize: 9, std: 0.5, generator: &g)
        let x = randomTensor([2, 3, 4], -2, 2, seed: 84)
        XCTAssertNil(try layerGradientCheck([x], parameters: mlp.parameters) { try mlp($0[0]) })
    }

    func testSwiGLUValuesAndGradients() throws {
        // 19 elements: two SIMD blocks of 8 and a tail of 3.
        let a = randomTensor([19], -6, 6, seed: 85), u = randomTensor([19], -2, 2, seed: 86)
        let y = try swiGLU(gate: a, up: u)
        assertClose(y, zip(doubles(a), doubles(u)).map { $0 / (1 + Foundation.exp(-$0)) * $1 }, rtol: 1e-5, atol: 1e-6)
        XCTAssertNil(try gradientCheck([a, u]) { try swiGLU(gate: $0[0], up: $0[1]) })
        // Saturated gates: silu(−100) = 0, silu(100) = 100.
        let big = try swiGLU(gate: Tensor([-100, 100] as [Float], shape: [2]), up: Tensor([3, 3] as [Float], shape: [2]))
        XCTAssertEqual(big.floats[0], 0, accuracy: 1e-30)
        XCTAssertEqual(big.floats[1], 300, accuracy: 1e-4)
        XCTAssertThrowsError(try swiGLU(gate: Tensor.zeros([3]), up: Tensor.zeros([4])))
    }
}
