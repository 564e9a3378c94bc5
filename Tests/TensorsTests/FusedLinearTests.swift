import XCTest
@testable import Tensors
import TestSupport

/// `Tensor.fusedLinear`: values against a Double loop over each weight, gradients by finite
/// differences, dtype promotion and the thrown errors.
final class FusedLinearTests: XCTestCase {
    /// x·Wᵢᵀ for every weight, side by side, in Double.
    func reference(_ x: Tensor, _ weights: [Tensor]) -> [Double] {
        let k = x.shape[x.rank - 1], rows = x.count / k, xv = x.floats
        var out: [Double] = []
        for r in 0..<rows {
            for w in weights {
                let wv = w.floats
                for o in 0..<w.shape[0] {
                    out.append((0..<k).reduce(0.0) { $0 + Double(xv[r * k + $1]) * Double(wv[o * k + $1]) })
                }
            }
        }
        return out
    }

    func testValuesAreEveryProjectionSideBySide() throws {
        let x = randomTensor([2, 3, 5], seed: 1)
        let weights = [randomTensor([4, 5], seed: 2), randomTensor([2, 5], seed: 3), randomTensor([3, 5], seed: 4)]
        let y = try Tensor.fusedLinear(x, weights: weights)
        XCTAssertEqual(y.shape, [2, 3, 9])
        XCTAssertNil(closeness(y.floats, reference(x, weights)))
        // One weight is a plain bias-free linear layer.
        XCTAssertNil(closeness(try Tensor.fusedLinear(x, weights: [weights[0]]).floats, reference(x, [weights[0]])))
    }

    func testGradientsOfInputAndEveryWeight() throws {
        let x = randomTensor([3, 4], seed: 5)
        let weights = [randomTensor([2, 4], seed: 6), randomTensor([3, 4], seed: 7)]
        XCTAssertNil(try gradientCheck([x] + weights) { try Tensor.fusedLinear($0[0], weights: Array($0[1...])) })
    }

    func testOnlyOperandsThatNeedGradientsGetThem() throws {
        let x = randomTensor([2, 3], seed: 8)
        let w0 = randomTensor([2, 3], seed: 9).requiringGrad(), w1 = randomTensor([1, 3], seed: 10)
        try Tensor.fusedLinear(x, weights: [w0, w1]).sum().backward()
        // d(Σ y)/dW₀[o, k] = Σ_rows x[r, k].
        let xv = x.floats
        let columnSums = (0..<3).map { k in Double(xv[k] + xv[3 + k]) }
        XCTAssertNil(closeness(try XCTUnwrap(w0.grad).floats, columnSums + columnSums))
        XCTAssertNil(w1.grad)
    }

    func testHalfPrecisionOperandsPromote() throws {
        let x = randomTensor([2, 3], seed: 11).cast(to: .bfloat16), w = randomTensor([2, 3], seed: 12)
        XCTAssertEqual(try Tensor.fusedLinear(x, weights: [w]).dtype, .float32)
        XCTAssertEqual(try Tensor.fusedLinear(x, weights: [w.cast(to: .bfloat16)]).dtype, .bfloat16)
    }

    func testMismatchedOperandsThrow() {
        let x = randomTensor([2, 3], seed: 13)
        XCTAssertThrowsError(try Tensor.fusedLinear(x, weights: [])) { XCTAssert("\($0)".contains("at least one weight")) }
        XCTAssertThrowsError(try Tensor.fusedLinear(x, weights: [randomTensor([2, 4])])) { XCTAssert("\($0)".contains("[2, 4]")) }
        XCTAssertThrowsError(try Tensor.fusedLinear(x, weights: [randomTensor([3])]))
        XCTAssertThrowsError(try Tensor.fusedLinear(Tensor.zeros([2, 3], dtype: .int32), weights: [randomTensor([2, 3])]))
    }
}
