import XCTest
@testable import Tensors
import TestSupport

/// The graph mechanics: accumulation, zeroGrad, detaching, no-grad scopes, seeds.
final class AutogradTests: XCTestCase {
    func testGradientsAddAcrossUses() throws {
        let x = Tensor([Float(1), 2, -3]).requiringGrad()
        // y = Σ (x·x + 3x + x) → dy/dx = 2x + 4
        let y = try ((x * x) + x * 3 + x).sum()
        try y.backward()
        XCTAssertEqual(x.grad?.floats, [6, 8, -2])
    }

    func testGradientsAddThroughTwoPathsOfOneIntermediate() throws {
        let x = Tensor([Float(0.5), 2]).requiringGrad()
        let e = x.exp()
        try (e * e).sum().backward()  // d/dx e^{2x} = 2 e^{2x}
        XCTAssertNil(closeness(x.grad!.floats, [0.5, 2].map { 2 * Foundation.exp(2 * $0) }, rtol: 1e-5))
    }

    func testGradientsAddAcrossTwoBackwardCalls() throws {
        let x = Tensor([Float(1), 2]).requiringGrad()
        try (x * 2).sum().backward()
        try (x * x).sum().backward()
        XCTAssertEqual(x.grad?.floats, [4, 6])
    }

    func testZeroGradForgetsTheGradient() throws {
        let x = Tensor([Float(1), 2]).requiringGrad()
        try (x * 2).sum().backward()
        x.zeroGrad()
        XCTAssertNil(x.grad)
        try (x * 5).sum().backward()
        XCTAssertEqual(x.grad?.floats, [5, 5])
    }

    func testCopiesOfALeafShareItsGradient() throws {
        let x = Tensor([Float(1)]).requiringGrad()
        let alias = x
        try (alias * 3).sum().backward()
        XCTAssertEqual(x.grad?.floats, [3])
    }

    func testDetachedStopsGradients() throws {
        let x = Tensor([Float(1), 2]).requiringGrad()
        let d = x.detached()
        XCTAssertFalse(d.requiresGrad)
        try (x * d).sum().backward()  // only the non-detached factor contributes
        XCTAssertEqual(x.grad?.floats, [1, 2])
        XCTAssertTrue(d.sharesStorage(with: x))
    }

    func testWithoutGradRecordsNothing() throws {
        let x = Tensor([Float(1), 2]).requiringGrad()
        let y = try withoutGrad { try (x * x).sum().exp() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(GradMode.isEnabled)
        withoutGrad { XCTAssertFalse(GradMode.isEnabled) }
        XCTAssertThrowsError(try y.backward())
        // Recording resumes after the scope.
        XCTAssertTrue((x * 2).requiresGrad)
    }

    func testLeafAndNonLeaf() {
        let x = Tensor([Float(1)]).requiringGrad()
        XCTAssertTrue(x.isLeaf)
        XCTAssertFalse((x * 2).isLeaf)
        XCTAssertFalse(Tensor([Float(1)]).requiresGrad)
    }

    func testBackwardOnANonScalarNeedsAnUpstreamGradient() throws {
        let x = Tensor([Float(1), 2]).requiringGrad()
        let y = x * 3
        XCTAssertThrowsError(try y.backward()) { error in
            guard case TensorError.shapeMismatch = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try y.backward(Tensor([Float(1), 2, 3])))
        XCTAssertNil(x.grad)
    }

    func testBackwardWithAnUpstreamGradient() throws {
        let x = Tensor([Float(1), 2, 3]).requiringGrad()
        try (x * x).backward(Tensor([Float(1), 0.5, -1]))
        XCTAssertEqual(x.grad?.floats, [2, 2, -6])
        // Any dtype of upstream is read as Float32; a one-element non-rank-0 output needs none.
        let z = Tensor([Float(2)]).requiringGrad()
        try (z * z).backward(Tensor([Int64(3)]))
        XCTAssertEqual(z.grad?.floats, [12])
        let w = Tensor([Float(2)]).requiringGrad()
        try (w * w).backward()
        XCTAssertEqual(w.grad?.floats, [4])
    }

    func testBackwardOnATensorWithoutGradientThrows() {
        XCTAssertThrowsError(try Tensor([Float(1)]).backward())
    }

    func testBackwardOnALeafItself() throws {
        let x = Tensor(scalar: Float(3)).requiringGrad()
        try x.backward()
        XCTAssertEqual(x.grad?.floats, [1])
    }

    func testIntegerInputsToDifferentiableOpsGetNoGradient() throws {
        let x = Tensor([Float(1), 2]).requiringGrad(), i = Tensor([Int64(3), 4])
        try (x * i).sum().backward()
        XCTAssertEqual(x.grad?.floats, [3, 4])
        XCTAssertNil(i.grad)
    }

    func testADeepChainDoesNotOverflowTheStack() throws {
        var y = Tensor([Float(1)]).requiringGrad()
        let x = y
        for _ in 0..<2000 { y = y + 0 }
        try y.sum().backward()
        XCTAssertEqual(x.grad?.floats, [1])
    }
}
