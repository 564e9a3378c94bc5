// Rotary embedding: the HF rotate_half formula in float64, arbitrary (rolled)
// positions, and the backward by finite differences.

import NN
import Tensors
import TestSupport
import XCTest

final class RotaryEmbeddingTests: XCTestCase {
    func testValuesMatchHuggingFaceFormula() throws {
        let rope = try RotaryEmbedding(headDimension: 8)
        let x = randomTensor([2, 3, 4, 8], seed: 41)
        // Arbitrary ints: rolled (wrapped) positions, large and negative ones.
        let positions = [0, 1, 2, 3, 3, 0, 1, 2 + 5000]
        let y = try rope(x, positions: intTensor(positions, [2, 4]))
        assertClose(y, Naive.rope(doubles(x), batch: 2, heads: 3, length: 4, dim: 8, positions: positions), rtol: 1e-5, atol: 2e-6)
        let negative = [-7, 0, 12, 100_000]
        let shared = try rope(x, positions: try Tensor(negative.map { Int32($0) }, shape: [1, 4]))
        assertClose(shared, Naive.rope(doubles(x), batch: 2, heads: 3, length: 4, dim: 8, positions: negative), rtol: 1e-5, atol: 2e-6)
        let base500 = try RotaryEmbedding(headDimension: 8, base: 500)
        assertClose(try base500(x, positions: intTensor(positions, [2, 4])),
                    Naive.rope(doubles(x), batch: 2, heads: 3, length: 4, dim: 8, positions: positions, base: 500), rtol: 1e-5, atol: 2e-6)
    }

    func testPositionZeroIsIdentityAndNormsArePreserved() throws {
        let rope = try RotaryEmbedding(headDimension: 6)
        let x = randomTensor([1, 2, 3, 6], seed: 42)
        let y = try rope(x, positions: intTensor([0, 0, 0], [1, 3]))
        XCTAssertEqual(y.floats, x.floats)
        let z = try rope(x, positions: intTensor([5, 17, 900], [1, 3]))
        let nx = try (x * x).sum(axis: -1).floats, nz = try (z * z).sum(axis: -1).floats
        for (a, b) in zip(nx, nz) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testGradientByFiniteDifferences() throws {
        let rope = try RotaryEmbedding(headDimension: 4)
        let x = randomTensor([2, 2, 3, 4], seed: 43)
        let positions = intTensor([2, 0, 1, 9, 4, 3], [2, 3])
        XCTAssertNil(try gradientCheck([x]) { try rope($0[0], positions: positions) })
    }

    func testShapeAndDTypeErrors() throws {
        let rope = try RotaryEmbedding(headDimension: 4)
        XCTAssertThrowsError(try RotaryEmbedding(headDimension: 5))
        XCTAssertThrowsError(try rope(Tensor.zeros([1, 1, 3, 6]), positions: intTensor([0, 1, 2], [1, 3])))
        XCTAssertThrowsError(try rope(Tensor.zeros([1, 1, 3, 4]), positions: intTensor([0, 1], [1, 2])))
        XCTAssertThrowsError(try rope(Tensor.zeros([1, 1, 3, 4]), positions: Tensor.zeros([1, 3])))
    }
}
