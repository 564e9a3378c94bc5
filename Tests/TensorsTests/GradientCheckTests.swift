import XCTest
@testable import Tensors
import TestSupport

extension XCTestCase {
    /// Fails when `gradientCheck` finds an element whose analytic and numeric gradients disagree.
    func assertGradient(_ inputs: [Tensor], _ label: @autoclosure () -> String = "",
                        step: Double = 3e-3, rtol: Double = 1e-2, atol: Double = 1e-3,
                        file: StaticString = #filePath, line: UInt = #line,
                        _ f: ([Tensor]) throws -> Tensor) {
        do {
            if let failure = try gradientCheck(inputs, step: step, rtol: rtol, atol: atol, f) {
                XCTFail("\(label()): \(failure)", file: file, line: line)
            }
        } catch {
            XCTFail("\(label()): threw \(error)", file: file, line: line)
        }
    }
}

/// The checker itself: it must catch a wrong pullback, or every other gradient test proves nothing.
final class GradientCheckTests: XCTestCase {
    /// `value` as the output of a hand-made op on `input` with the given pullback.
    func withPullback(_ value: Tensor, of input: Tensor, _ pullback: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        var t = value.detached()
        t.gradNode = GradNode(inputs: [input.gradNode], pullback: pullback, shape: t.shape, dtype: t.dtype)
        return t
    }

    func testCatchesAWrongPullback() throws {
        let x = randomTensor([3], seed: 3)
        // y = 2x with a pullback that claims dy/dx = 3.
        let failure = try gradientCheck([x]) { xs in
            withPullback(xs[0] * 2, of: xs[0]) { g in [g * 3] }
        }
        XCTAssertNotNil(failure)
    }

    func testAcceptsARightPullback() throws {
        let x = randomTensor([3], seed: 3)
        let failure = try gradientCheck([x]) { xs in
            withPullback(xs[0] * 2, of: xs[0]) { g in [g * 2] }
        }
        XCTAssertNil(failure)
    }

    func testCatchesAMissingGradient() throws {
        let x = randomTensor([2], seed: 4)
        let failure = try gradientCheck([x]) { xs in
            withPullback(try xs[0] * xs[0], of: xs[0]) { _ in [nil] }
        }
        XCTAssertNotNil(failure)
    }
}
