// Embedding: rows picked by id; the weight gradient adds into repeated rows.

import NN
import Tensors
import TestSupport
import XCTest

final class EmbeddingTests: XCTestCase {
    func testPicksRows() throws {
        var g = SplitMix64(seed: 21)
        let layer = Embedding(vocabularySize: 6, dimension: 3, generator: &g)
        let ids = intTensor([5, 0, 2, 2], [2, 2])
        let y = try layer(ids)
        XCTAssertEqual(y.shape, [2, 2, 3])
        let w = layer.weight.value.floats
        XCTAssertEqual(y.floats, [5, 0, 2, 2].flatMap { Array(w[($0 * 3)..<($0 * 3 + 3)]) })
        XCTAssertEqual(try layer(try Tensor([Int32(1)], shape: [1])).floats, Array(w[3..<6]))
    }

    func testWeightGradientByFiniteDifferences() throws {
        var g = SplitMix64(seed: 22)
        let layer = Embedding(vocabularySize: 5, dimension: 4, std: 1, generator: &g)
        let ids = intTensor([1, 3, 1, 4, 1, 0], [2, 3])
        XCTAssertNil(try layerGradientCheck([], parameters: layer.parameters) { _ in try layer(ids) })
        // Row 2 is never picked: its gradient is exactly zero.
        try layer(ids).sum().backward()
        XCTAssertEqual(Array(layer.weight.grad!.floats[8..<12]), [0, 0, 0, 0])
        XCTAssertEqual(Array(layer.weight.grad!.floats[4..<8]), [3, 3, 3, 3])
    }

    func testOutOfRangeIDsThrow() {
        var g = SplitMix64(seed: 23)
        let layer = Embedding(vocabularySize: 5, dimension: 2, generator: &g)
        XCTAssertThrowsError(try layer(intTensor([5], [1])))
        XCTAssertThrowsError(try layer(intTensor([-1], [1])))
        XCTAssertThrowsError(try layer(Tensor.zeros([2])))
    }
}
