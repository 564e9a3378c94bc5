// Linear: values against a float64 loop, gradients by finite differences.

import NN
import Tensors
import TestSupport
import XCTest

final class LinearTests: XCTestCase {
    func testValuesMatchNaiveReferenceForAnyLeadingShape() throws {
        var g = SplitMix64(seed: 11)
        let layer = Linear(inFeatures: 5, outFeatures: 3, bias: true, std: 0.5, generator: &g)
        layer.bias!.value = randomTensor([3], seed: 12)
        for shape in [[5], [4, 5], [2, 3, 5], [2, 1, 2, 5]] {
            let x = randomTensor(shape, seed: 13)
            let y = try layer(x)
            XCTAssertEqual(y.shape, Array(shape.dropLast()) + [3])
            assertClose(y, Naive.linear(doubles(x), doubles(layer.weight.value), bias: doubles(layer.bias!.value), inF: 5, outF: 3))
        }
    }

    func testGradientsWithRespectToInputWeightAndBias() throws {
        var g = SplitMix64(seed: 14)
        let layer = Linear(inFeatures: 4, outFeatures: 3, bias: true, std: 0.5, generator: &g)
        let x = randomTensor([2, 3, 4], seed: 15)
        XCTAssertNil(try layerGradientCheck([x], parameters: layer.parameters) { try layer($0[0]) })
        let noBias = Linear(inFeatures: 4, outFeatures: 6, generator: &g)
        XCTAssertNil(try layerGradientCheck([x], parameters: noBias.parameters) { try noBias($0[0]) })
    }

    func testWrongInputWidthThrows() {
        var g = SplitMix64(seed: 16)
        let layer = Linear(inFeatures: 4, outFeatures: 3, generator: &g)
        XCTAssertThrowsError(try layer(Tensor.zeros([2, 5]))) { error in
            XCTAssertTrue("\(error)".contains("[2, 5]"), "\(error)")
        }
    }
}
