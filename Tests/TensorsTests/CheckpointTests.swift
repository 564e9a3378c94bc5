import XCTest
import Tensors

/// `checkpointed`: the recomputed graph gives the plain graph's gradients bit for bit, also
/// when a parameter is shared by several checkpointed calls and the graph outside, when
/// checkpoints nest (a pullback that back-propagates re-entrantly), and across two
/// backward calls that add into the same leaves.
final class CheckpointTests: XCTestCase {
    /// y = tanh(x·W + b)·W (W read twice inside, b once).
    private func layer(_ x: Tensor, _ w: Tensor, _ b: Tensor) throws -> Tensor {
        try Tensor.matmul((try Tensor.matmul(x, w) + b).tanh(), w)
    }

    /// The gradients of x₀, W and b after two backward passes of a loss that runs `layer` twice
    /// with shared W and b (each call through `wrap`), and also reads W and the second call's
    /// input outside them.
    private func gradients(_ wrap: (Tensor, Tensor, Tensor, @escaping (Tensor) throws -> Tensor) throws -> Tensor) throws -> [[Float]] {
        let x0 = Tensor.normal([5, 4], seed: 1).requiringGrad()
        let w = (Tensor.normal([4, 4], seed: 2) * 0.5).requiringGrad()
        let b = Tensor.normal([4], seed: 3).requiringGrad()
        for pass in 0..<2 {
            let h0 = x0 * (1.5 + Double(pass))
            let h1 = try wrap(h0, w, b) { try self.layer($0, w, b) }
            let h2 = try wrap(h1, w, b) { try self.layer($0, w, b) }
            try ((h2 * h2).sum() + (h1 * h1).sum() * 0.5 + (w * w).sum() * 0.25).backward()
        }
        return [x0, w, b].map { $0.grad!.floats }
    }

    func testGradientsAreThePlainGraphsBits() throws {
        let plain = try gradients { x, _, _, body in try body(x) }
        let recomputed = try gradients { x, w, b, body in try checkpointed(x, parameters: [w, b], body) }
        XCTAssertEqual(plain, recomputed)
    }

    func testNestedCheckpointsGiveThePlainGraphsBits() throws {
        let plain = try gradients { x, _, _, body in try body(body(x)) }
        let nested = try gradients { x, w, b, body in
            try checkpointed(x, parameters: [w, b]) { y in
                try checkpointed(try body(y), parameters: [w, b], body)
            }
        }
        XCTAssertEqual(plain, nested)
    }

    func testTheBodyRunsAgainInTheBackwardOnly() throws {
        let x = Tensor.normal([3, 4], seed: 4).requiringGrad()
        let w = Tensor.normal([4, 4], seed: 5).requiringGrad()
        let b = Tensor.zeros([4])
        var calls = 0
        let y = try checkpointed(x, parameters: [w]) { calls += 1; return try self.layer($0, w, b) }
        XCTAssertEqual(calls, 1)
        XCTAssertTrue(y.requiresGrad)
        XCTAssertEqual(y.floats, try layer(x, w, b).floats)
        try y.sum().backward()
        XCTAssertEqual(calls, 2)
        XCTAssertNotNil(x.grad)
        XCTAssertNotNil(w.grad)
    }

    func testWithoutRecordingItIsTheBody() throws {
        let x = Tensor.normal([3, 4], seed: 6).requiringGrad()
        let w = Tensor.normal([4, 4], seed: 7).requiringGrad()
        var calls = 0
        let y = try withoutGrad { try checkpointed(x, parameters: [w]) { calls += 1; return try Tensor.matmul($0, w) } }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(calls, 1)
    }

    func testAnErrorOfTheRecomputationReachesBackward() throws {
        let x = Tensor.normal([2, 4], seed: 8).requiringGrad()
        var calls = 0
        let y = try checkpointed(x, parameters: []) { x in
            calls += 1
            guard calls == 1 else { throw TensorError.invalidArgument("second call") }
            return x * 2
        }
        XCTAssertThrowsError(try y.sum().backward())
    }
}
