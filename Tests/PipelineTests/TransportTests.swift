// The in-process transport: messages reach the right neighbour in any order,
// travel without autograd history, and an abort wakes every blocked stage.

import Foundation
import Pipeline
import Tensors
import XCTest

final class TransportTests: XCTestCase {
    private func message(_ kind: StageMessage.Kind, _ m: Int, _ value: Float) -> StageMessage {
        StageMessage(kind: kind, microbatch: m, tensors: ["hidden": Tensor([value])])
    }

    func testActivationsGoForwardAndGradientsBackward() throws {
        let t = InProcessTransport.connecting(stages: 3)
        try t[0].send(message(.activation, 0, 1))
        try t[1].send(message(.activation, 0, 2))
        try t[2].send(message(.gradient, 0, 3))
        try t[1].send(message(.gradient, 0, 4))
        XCTAssertEqual(try t[1].receive(.activation, microbatch: 0).tensor("hidden").floats, [1])
        XCTAssertEqual(try t[2].receive(.activation, microbatch: 0).tensor("hidden").floats, [2])
        XCTAssertEqual(try t[1].receive(.gradient, microbatch: 0).tensor("hidden").floats, [3])
        XCTAssertEqual(try t[0].receive(.gradient, microbatch: 0).tensor("hidden").floats, [4])
    }

    func testReceiveMatchesTheMicrobatchWhateverTheArrivalOrder() throws {
        let t = InProcessTransport.connecting(stages: 2)
        for m in [2, 0, 1] { try t[0].send(message(.activation, m, Float(m))) }
        for m in 0..<3 { XCTAssertEqual(try t[1].receive(.activation, microbatch: m).tensor("hidden").floats, [Float(m)]) }
    }

    func testMessagesCarryNoAutogradHistory() throws {
        let x = Tensor([1, 2] as [Float]).requiringGrad()
        let m = StageMessage(kind: .activation, microbatch: 0, tensors: ["hidden": x * 2])
        XCTAssertFalse(try m.tensor("hidden").requiresGrad)
        XCTAssertThrowsError(try m.tensor("missing")) { XCTAssertTrue("\($0)".contains("hidden"), "\($0)") }
    }

    func testNoNeighbourThrows() {
        let t = InProcessTransport.connecting(stages: 2)
        XCTAssertThrowsError(try t[1].send(message(.activation, 0, 0)))
        XCTAssertThrowsError(try t[0].send(message(.gradient, 0, 0)))
        XCTAssertThrowsError(try t[0].receive(.activation, microbatch: 0))
        XCTAssertThrowsError(try t[1].receive(.gradient, microbatch: 0))
    }

    func testAbortWakesBlockedReceiversOnEveryStage() throws {
        let t = InProcessTransport.connecting(stages: 3)
        let endpoints = Unchecked(value: t)
        let waiting = [(2, StageMessage.Kind.activation), (0, .gradient)].map { stage, kind in
            (stage, { @Sendable () throws -> StageMessage in try endpoints.value[stage].receive(kind, microbatch: 0) })
        }
        let results = waiting.map { stage, receive in
            DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) {
                endpoints.value[1].abort(PipelineError("boom"))
            }
            return (stage, runWithTimeout(10, receive))
        }
        for (stage, result) in results {
            guard let result else { XCTFail("stage \(stage) still blocked after the abort"); continue }
            XCTAssertThrowsError(try result.get()) { error in
                let stopped = error as? PipelineStopped
                XCTAssertEqual(stopped?.stage, 1)
                XCTAssertEqual(stopped?.reason, "boom")
            }
        }
        XCTAssertThrowsError(try t[0].send(message(.activation, 1, 0))) { XCTAssertTrue($0 is PipelineStopped) }
    }
}
