import XCTest
@testable import Tensors
import TestSupport

/// Finite-difference checks of the shape ops (and their values: a shape op only moves elements).
final class ShapeGradientTests: XCTestCase {
    func testReshaped() {
        let cases: [([Int], [Int])] = [
            ([2, 3], [3, 2]), ([2, 3], [6]), ([6], [-1, 2]), ([2, 3], [1, 6, 1]), ([], [1]), ([1], []),
            ([0, 3], [3, 0]), ([2, 0], [-1, 4]),
        ]
        for (k, (from, to)) in cases.enumerated() {
            assertGradient([randomTensor(from, seed: UInt64(k))], "reshaped \(from) → \(to)") { try $0[0].reshaped(to) }
        }
    }

    func testSqueezedAndUnsqueezed() {
        let x = randomTensor([1, 3, 1], seed: 1)
        for axis in [0, 2, -1, -3] {
            assertGradient([x], "squeezed(axis: \(axis))") { try $0[0].squeezed(axis: axis) }
        }
        assertGradient([x], "squeezed()") { $0[0].squeezed() }
        for axis in [0, 1, 3, -1, -4] {
            assertGradient([x], "unsqueezed(axis: \(axis))") { try $0[0].unsqueezed(axis: axis) }
        }
        assertGradient([randomTensor([], seed: 2)], "unsqueezed rank 0") { try $0[0].unsqueezed(axis: 0) }
        assertGradient([randomTensor([0, 1], seed: 2)], "squeezed empty") { try $0[0].squeezed(axis: 1) }
    }

    func testSqueezedAndUnsqueezedShapes() throws {
        let x = Tensor.zeros([1, 3, 1])
        XCTAssertEqual(try x.squeezed(axis: -1).shape, [1, 3])
        XCTAssertEqual(x.squeezed().shape, [3])
        XCTAssertEqual(try x.unsqueezed(axis: -1).shape, [1, 3, 1, 1])
        XCTAssertEqual(try x.unsqueezed(axis: 1).shape, [1, 1, 3, 1])
    }

    func testExpanded() {
        let cases: [([Int], [Int])] = [
            ([3], [2, 3]), ([2, 1], [2, 4]), ([1, 1], [3, 2]), ([], [2, 2]), ([1], [0]), ([2, 1, 3], [4, 2, 2, 3]),
            ([2, 3], [2, 3]),
        ]
        for (k, (from, to)) in cases.enumerated() {
            assertGradient([randomTensor(from, seed: UInt64(k))], "expanded \(from) → \(to)") { try $0[0].expanded(to: to) }
        }
    }

    func testPermutedAndTransposed() throws {
        let x = randomTensor([2, 3, 4], seed: 4)
        for p in [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0], [-1, 0, 1]] {
            assertGradient([x], "permuted \(p)") { try $0[0].permuted(p) }
        }
        assertGradient([x], "transposed(0, 2)") { try $0[0].transposed(0, 2) }
        assertGradient([x], "transposed()") { try $0[0].transposed() }
        assertGradient([randomTensor([3, 0, 2], seed: 5)], "permuted empty") { try $0[0].permuted([2, 0, 1]) }
        for dt in [DType.bfloat16, .int64, .bool, .int32] {
            let y = try Tensor([1, 2, 3, 4, 5, 6] as [Int64], shape: [2, 3]).cast(to: dt)
            XCTAssertEqual(try y.transposed().int64s, try Tensor([1, 4, 2, 5, 3, 6] as [Int64], shape: [3, 2]).cast(to: dt).int64s, "\(dt)")
        }
        // Values against an index-by-index reference.
        let v = x.floats, t = try x.permuted([2, 0, 1]).floats
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { XCTAssertEqual(t[k * 6 + i * 3 + j], v[i * 12 + j * 4 + k]) } } }
    }

    func testConcatenated() throws {
        let cases: [([[Int]], Int)] = [
            ([[2, 3], [1, 3]], 0), ([[2, 3], [2, 1], [2, 2]], 1), ([[2, 3], [2, 2]], -1), ([[2, 0], [2, 3]], 1),
            ([[0, 3], [2, 3]], 0), ([[4]], 0), ([[1, 2, 2], [1, 1, 2]], 1),
        ]
        for (k, (shapes, axis)) in cases.enumerated() {
            let xs = shapes.enumerated().map { randomTensor($0.element, seed: UInt64(10 * k + $0.offset)) }
            assertGradient(xs, "concatenated \(shapes) axis \(axis)") { try Tensor.concatenated($0, axis: axis) }
        }
        let a = try Tensor([Float(1), 2, 3, 4], shape: [2, 2]), b = try Tensor([Float(5), 6], shape: [2, 1])
        XCTAssertEqual(try Tensor.concatenated([a, b], axis: 1).floats, [1, 2, 5, 3, 4, 6])
    }

    func testStacked() throws {
        for axis in [0, 1, 2, -1, -3] {
            let xs = (0..<3).map { randomTensor([2, 2], seed: UInt64($0)) }
            assertGradient(xs, "stacked axis \(axis)") { try Tensor.stacked($0, axis: axis) }
        }
        let a = Tensor([Float(1), 2]), b = Tensor([Float(3), 4])
        XCTAssertEqual(try Tensor.stacked([a, b], axis: 1).floats, [1, 3, 2, 4])
        XCTAssertEqual(try Tensor.stacked([a, b], axis: 1).shape, [2, 2])
        assertGradient([randomTensor([], seed: 1), randomTensor([], seed: 2)], "stacked scalars") { try Tensor.stacked($0) }
    }

    func testSliced() throws {
        let x = randomTensor([3, 4], seed: 6)
        for (axis, range) in [(0, 1..<3), (1, 0..<2), (1, 3..<4), (-1, 1..<3), (0, 0..<3), (0, 2..<2)] {
            assertGradient([x], "sliced axis \(axis) \(range)") { try $0[0].sliced(axis: axis, range) }
        }
        assertGradient([randomTensor([2, 3, 2], seed: 7)], "sliced middle axis") { try $0[0].sliced(axis: 1, 1..<2) }
        let v = try Tensor([Float(0), 1, 2, 3, 4, 5], shape: [2, 3])
        XCTAssertEqual(try v.sliced(axis: 1, 1..<3).floats, [1, 2, 4, 5])
        XCTAssertEqual(try v.sliced(axis: 1, 1..<1).shape, [2, 0])
    }

    func testSubscript() throws {
        let x = randomTensor([3, 2], seed: 8)
        for i in [0, 2, -1, -3] {
            assertGradient([x], "subscript [\(i)]") { try $0[0][i] }
        }
        let v = try Tensor([Float(0), 1, 2, 3, 4, 5], shape: [3, 2])
        XCTAssertEqual(try v[-1].floats, [4, 5])
        XCTAssertEqual(try v[1][0].item(as: Float.self), 2)
        XCTAssertEqual(try v[1][0].shape, [])
    }
}
