import XCTest
@testable import Tensors
import TestSupport

/// Finite-difference checks of the reductions and the softmax family, over every
/// axis (positive and negative) of shapes with size-1 and empty axes.
final class ReductionGradientTests: XCTestCase {
    static let shapes: [[Int]] = [[4], [1], [2, 3], [1, 3], [3, 1], [2, 3, 2], [0], [2, 0], [0, 3]]

    /// Every (shape, axis) pair, each axis once as written and once counted from the end.
    static var shapeAxes: [([Int], Int)] {
        shapes.flatMap { s in (0..<s.count).flatMap { a in [(s, a), (s, a - s.count)] } }
    }

    func testSumAndMeanOverAnAxis() {
        for (k, (shape, axis)) in Self.shapeAxes.enumerated() {
            let x = randomTensor(shape, seed: UInt64(k))
            for keep in [false, true] {
                assertGradient([x], "sum \(shape) axis \(axis) keep \(keep)") { try $0[0].sum(axis: axis, keepDims: keep) }
                assertGradient([x], "mean \(shape) axis \(axis) keep \(keep)") { try $0[0].mean(axis: axis, keepDims: keep) }
            }
        }
    }

    func testSumAndMeanOfAllElements() {
        for (k, shape) in (Self.shapes + [[]]).enumerated() {
            let x = randomTensor(shape, seed: UInt64(k))
            assertGradient([x], "sum \(shape)") { $0[0].sum() }
            if shape.reduce(1, *) > 0 {
                assertGradient([x], "mean \(shape)") { $0[0].mean() }
            }
        }
    }

    func testMaxOverAnAxisWithDistinctValues() {
        for (k, (shape, axis)) in Self.shapeAxes.enumerated() where !shape.contains(0) || shape[(axis + shape.count) % shape.count] != 0 {
            let x = gridTensor(shape, distinct: true, seed: UInt64(k))
            for keep in [false, true] {
                assertGradient([x], "max \(shape) axis \(axis) keep \(keep)") { try $0[0].max(axis: axis, keepDims: keep) }
            }
        }
        assertGradient([gridTensor([2, 3], distinct: true, seed: 5)], "max of all") { try $0[0].max() }
    }

    func testMaxGivesATiedGradientToTheFirstMaximum() throws {
        let x = Tensor([Float(1), 3, 3, 2]).requiringGrad()
        try x.max(axis: 0).backward()
        XCTAssertEqual(x.grad?.floats, [0, 1, 0, 0])
    }

    func testLogsumexp() {
        for (k, (shape, axis)) in Self.shapeAxes.enumerated() {
            let x = randomTensor(shape, -3, 3, seed: UInt64(k))
            for keep in [false, true] {
                assertGradient([x], "logsumexp \(shape) axis \(axis) keep \(keep)") { try $0[0].logsumexp(axis: axis, keepDims: keep) }
            }
        }
    }

    func testSoftmaxAndLogSoftmax() {
        for (k, (shape, axis)) in Self.shapeAxes.enumerated() {
            let x = randomTensor(shape, -3, 3, seed: UInt64(k))
            assertGradient([x], "softmax \(shape) axis \(axis)") { try $0[0].softmax(axis: axis) }
            assertGradient([x], "logSoftmax \(shape) axis \(axis)") { try $0[0].logSoftmax(axis: axis) }
        }
    }

    func testLogSoftmaxAtLargeMagnitudes() {
        // Shifted rows: the gradient must not depend on the offset. (At ±1e4 a Float32
        // step is too coarse for finite differences; the values test covers that range.)
        for offset: Float in [80, -80] {
            let x = try! randomTensor([2, 3], -1, 1, seed: 3) + Tensor(scalar: offset)
            assertGradient([x], "logSoftmax offset \(offset)", step: 1e-2, atol: 3e-3) { try $0[0].logSoftmax(axis: 1) }
        }
    }
}
