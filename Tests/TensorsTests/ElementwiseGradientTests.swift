import XCTest
@testable import Tensors
import TestSupport

/// Finite-difference checks of every elementwise op's pullback, over shapes
/// that include rank 0, size-1 and empty (0-extent) axes.
final class ElementwiseGradientTests: XCTestCase {
    static let shapes: [[Int]] = [[], [1], [5], [2, 3], [1, 1, 2], [0], [3, 0]]

    // MARK: Unary

    func testUnaryOpsOnTheWholeLine() {
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("neg", { -$0 }),
            ("exp", { $0.exp() }),
            ("tanh", { $0.tanh() }),
            ("sigmoid", { $0.sigmoid() }),
            ("silu", { $0.silu() }),
            ("pow 2", { $0.pow(2) }),
            ("pow 3", { $0.pow(3) }),
            ("cast f32→f32", { $0.cast(to: .float32) }),
        ]
        for (name, op) in ops {
            for (k, shape) in Self.shapes.enumerated() {
                assertGradient([randomTensor(shape, -2, 2, seed: UInt64(k))], "\(name) \(shape)") { try op($0[0]) }
            }
        }
    }

    func testUnaryOpsOnPositiveInputs() {
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("log", { $0.log() }),
            ("sqrt", { $0.sqrt() }),
            ("rsqrt", { $0.rsqrt() }),
            ("pow 0.5", { $0.pow(0.5) }),
            ("pow -1.5", { $0.pow(-1.5) }),
        ]
        for (name, op) in ops {
            for (k, shape) in Self.shapes.enumerated() {
                assertGradient([randomTensor(shape, 0.3, 3, seed: UInt64(k))], "\(name) \(shape)") { try op($0[0]) }
            }
        }
    }

    func testAbsAwayFromItsKink() {
        for (k, shape) in Self.shapes.enumerated() {
            assertGradient([awayFromZero(shape, seed: UInt64(k))], "abs \(shape)") { $0[0].abs() }
        }
    }

    func testAbsGradientIsZeroAtZero() throws {
        let x = Tensor([Float(0), -2, 3]).requiringGrad()
        try x.abs().sum().backward()
        XCTAssertEqual(x.grad?.floats, [0, -1, 1])
    }

    // MARK: Binary

    /// Shape pairs that broadcast both ways, with scalars and empty axes.
    static let binaryShapes: [([Int], [Int])] = [
        ([2, 3], [2, 3]), ([2, 3], [3]), ([3], [2, 3]), ([2, 1], [1, 3]), ([1], [2, 3]),
        ([], [2, 3]), ([2, 3], []), ([], []), ([4, 1, 2], [3, 1]), ([0, 3], [3]), ([2, 0], [2, 1]),
    ]

    func testArithmeticWithBroadcasting() {
        let ops: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("+", { try $0 + $1 }), ("-", { try $0 - $1 }), ("*", { try $0 * $1 }), ("/", { try $0 / $1 }),
        ]
        for (name, op) in ops {
            for (k, (sa, sb)) in Self.binaryShapes.enumerated() {
                let a = randomTensor(sa, -2, 2, seed: UInt64(k))
                // Denominators stay away from 0.
                let b = name == "/" ? awayFromZero(sb, 0.5, 2, seed: UInt64(k + 50)) : randomTensor(sb, -2, 2, seed: UInt64(k + 50))
                assertGradient([a, b], "\(sa) \(name) \(sb)") { try op($0[0], $0[1]) }
            }
        }
    }

    func testOneTensorOnBothSides() {
        let x = awayFromZero([2, 3], 0.5, 2, seed: 9)
        assertGradient([x], "x * x") { try $0[0] * $0[0] }
        assertGradient([x], "x + x") { try $0[0] + $0[0] }
        assertGradient([x], "x - x") { try $0[0] - $0[0] }
        assertGradient([x], "x / x") { try $0[0] / $0[0] }
        assertGradient([x], "x * x.exp()") { try $0[0] * $0[0].exp() }
    }

    func testScalarForms() {
        let x = awayFromZero([2, 3], 0.5, 2, seed: 11)
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("x + 2.5", { $0 + 2.5 }), ("2.5 + x", { 2.5 + $0 }),
            ("x - 1.5", { $0 - 1.5 }), ("1.5 - x", { 1.5 - $0 }),
            ("x * 3", { $0 * 3 }), ("3 * x", { 3 * $0 }),
            ("x / 4", { $0 / 4 }), ("2 / x", { 2 / $0 }),
            ("x + Float", { $0 + Float(0.5) }), ("x * Float", { $0 * Float(-2) }),
            ("x / Float", { $0 / Float(3) }), ("Float - x", { Float(1) - $0 }),
        ]
        for (name, op) in ops {
            assertGradient([x], name) { op($0[0]) }
            assertGradient([awayFromZero([], 0.5, 2, seed: 2)], "\(name) rank 0") { op($0[0]) }
        }
    }

    func testMaximumAndMinimumAwayFromTies() {
        for (k, (sa, sb)) in Self.binaryShapes.enumerated() {
            // Interleaved grids: a − b is never within 0.125 of zero.
            let a = gridTensor(sa, offset: 0, seed: UInt64(k))
            let b = gridTensor(sb, offset: 0.125, seed: UInt64(k + 70))
            assertGradient([a, b], "maximum \(sa) \(sb)") { try Tensor.maximum($0[0], $0[1]) }
            assertGradient([a, b], "minimum \(sa) \(sb)") { try Tensor.minimum($0[0], $0[1]) }
        }
    }

    func testMaximumTieGivesTheGradientToTheFirstOperand() throws {
        let a = Tensor([Float(1), 2]).requiringGrad(), b = Tensor([Float(1), 2]).requiringGrad()
        try Tensor.maximum(a, b).sum().backward()
        XCTAssertEqual(a.grad?.floats, [1, 1])
        XCTAssertEqual(b.grad?.floats, [0, 0])
    }

    func testWhereWithBroadcasting() throws {
        let cases: [([Int], [Int], [Int])] = [
            ([2, 3], [2, 3], [2, 3]), ([2, 3], [3], [2, 1]), ([3], [2, 3], []),
            ([2, 1], [1, 3], [3]), ([], [2], [2]), ([0, 2], [2], [0, 2]),
        ]
        for (k, (sc, sa, sb)) in cases.enumerated() {
            let c = Tensor.uniform(sc, seed: UInt64(k + 5)) .> 0.5
            let a = randomTensor(sa, seed: UInt64(k)), b = randomTensor(sb, seed: UInt64(k + 20))
            assertGradient([a, b], "where \(sc) \(sa) \(sb)") { try Tensor.where(c, $0[0], $0[1]) }
        }
    }

    func testCastThroughHalfTypesPassesTheGradientUnchanged() throws {
        for dt in [DType.bfloat16, .float16] {
            let x = randomTensor([4], seed: 3).requiringGrad()
            let y = x.cast(to: dt).cast(to: .float32)
            let up = try Tensor([Float(0.5), -1, 2, 0.25], shape: [4])
            try y.backward(up)
            XCTAssertEqual(x.grad?.floats, up.floats, "\(dt)")
        }
    }

    func testHalfTypeLeafGetsAGradientOfItsDType() throws {
        for dt in [DType.bfloat16, .float16] {
            let x = Tensor([Float(1), 2, 3], dtype: dt).requiringGrad()
            try (x * x).sum().backward()
            XCTAssertEqual(x.grad?.dtype, dt)
            XCTAssertEqual(x.grad?.floats, [2, 4, 6])
        }
    }
}
