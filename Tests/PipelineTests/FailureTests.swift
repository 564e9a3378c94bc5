// A stage that throws stops the whole pipeline with its error instead of leaving
// the other stages blocked; the pipeline then runs the next step normally.

import Data
import Model
import Foundation
import Losses
import MTP
import Pipeline
import Tensors
import Training
import XCTest

final class FailureTests: XCTestCase {
    private let timeout = 60.0

    /// The batch's microbatches with `change` applied to microbatch `index`.
    private func microbatches(_ m: Int, changing index: Int,
                              _ change: (Batch) throws -> Batch) throws -> [Batch] {
        var mbs = try packedBatch(rows: 4).microbatches(m)
        mbs[index] = try change(mbs[index])
        return mbs
    }

    /// Runs a step with a deadline; fails the test if it hangs, else returns its error (nil on success).
    private func stepError(_ pipeline: CausalLMPipeline, _ mbs: [Batch],
                           file: StaticString = #filePath, line: UInt = #line) -> (any Error)? {
        let box = Unchecked(value: pipeline)
        guard let result = runWithTimeout(timeout, { try box.value.step(microbatches: mbs) }) else {
            XCTFail("the pipeline hung for \(timeout) s", file: file, line: line)
            return nil
        }
        if case .failure(let e) = result { return e }
        return nil
    }

    func testALastStageLossErrorStopsEveryStage() throws {
        let mbs = try microbatches(4, changing: 2) { mb in
            var labels = mb.labels.int64s
            labels[5] = 99  // outside the vocabulary of 24
            return try Batch(inputIds: mb.inputIds, labels: Tensor(labels, shape: mb.labels.shape),
                             seqIdx: mb.seqIdx, positions: mb.positions, rowTokenCounts: mb.rowTokenCounts)
        }
        for kind in PipelineScheduleKind.allCases {
            for p in [2, 3] {
                let model = try tinyModel(layers: 3, loss: .fused)
                let pipeline = try CausalLMPipeline(model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                                                    schedule: PipelineSchedule(kind: kind, stages: p, microbatches: 4))
                let error = stepError(pipeline, mbs)
                XCTAssertTrue(error is LossError, "\(kind) P=\(p): \(String(describing: error))")
                XCTAssertTrue("\(error.map { "\($0)" } ?? "")".contains("label 99"), "\(String(describing: error))")
            }
        }
    }

    func testAFirstStageErrorStopsEveryStage() throws {
        let mbs = try microbatches(4, changing: 1) { mb in
            var ids = mb.inputIds.int64s
            ids[3] = 1000
            return try Batch(inputIds: Tensor(ids, shape: mb.inputIds.shape), labels: mb.labels,
                             seqIdx: mb.seqIdx, positions: mb.positions, rowTokenCounts: mb.rowTokenCounts)
        }
        for kind in PipelineScheduleKind.allCases {
            let model = try tinyModel(layers: 3, loss: .masked)
            let pipeline = try CausalLMPipeline(model: model, lossFunction: LossKind.masked.makeLoss(reduction: .mean),
                                                schedule: PipelineSchedule(kind: kind, stages: 3, microbatches: 4))
            let error = stepError(pipeline, mbs)
            XCTAssertTrue(error is TensorError, "\(kind): \(String(describing: error))")
        }
    }

    /// A transport of the test's own making whose middle stage fails on its second gradient send.
    func testAMiddleStageTransportErrorStopsEveryStageAndTheNextStepWorks() throws {
        struct Injected: Error, Equatable {}
        final class FailingTransport: StageTransport, @unchecked Sendable {
            let inner: any StageTransport
            var gradientSends = 0  // only the stage's own thread touches it
            init(_ inner: any StageTransport) { self.inner = inner }
            var stage: Int { inner.stage }
            var stageCount: Int { inner.stageCount }
            func send(_ message: StageMessage) throws {
                if stage == 1 && message.kind == .gradient {
                    gradientSends += 1
                    if gradientSends == 2 { throw Injected() }
                }
                try inner.send(message)
            }
            func receive(_ kind: StageMessage.Kind, microbatch: Int) throws -> StageMessage {
                try inner.receive(kind, microbatch: microbatch)
            }
            func abort(_ error: any Error) { inner.abort(error) }
        }

        let batch = try packedBatch(rows: 4)
        let model = try tinyModel(layers: 3, loss: .fused)
        let reference = try referenceStep(model, batch, loss: .fused)
        let pipeline = try CausalLMPipeline(model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                                            schedule: .oneForwardOneBackward(stages: 3, microbatches: 4))
        pipeline.makeTransports = { InProcessTransport.connecting(stages: $0).map { FailingTransport($0) } }
        XCTAssertEqual(stepError(pipeline, try batch.microbatches(4)) as? Injected, Injected())

        pipeline.makeTransports = { InProcessTransport.connecting(stages: $0) }
        let got = try gradients(of: model) { XCTAssertNil(stepError(pipeline, try batch.microbatches(4))) }
        XCTAssertLessThan(maxRelativeGradientError(got, reference.gradients).error, 1e-5)
    }

    func testInvalidRequestsThrow() throws {
        let model = try tinyModel(layers: 2, loss: .fused)
        let batch = try packedBatch(rows: 4)
        let pipeline = try CausalLMPipeline(model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                                            schedule: .gpipe(stages: 2, microbatches: 3))
        XCTAssertThrowsError(try pipeline.step(batch)) { XCTAssertTrue("\($0)".contains("3 microbatches do not divide"), "\($0)") }
        XCTAssertThrowsError(try CausalLMPipeline(model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                                                  schedule: .gpipe(stages: 2, microbatches: 2),
                                                  partition: PipelinePartition(layerCounts: [1, 1, 0], layers: 2)))
        XCTAssertThrowsError(try CausalLMPipeline(model: model, lossFunction: MaskedCrossEntropy(reduction: .none),
                                                  schedule: .gpipe(stages: 2, microbatches: 2)))
        XCTAssertThrowsError(try PipelinePartition(layerCounts: [1, 2], layers: 2))
        XCTAssertThrowsError(try Batch(inputIds: Tensor.zeros([2, 4], dtype: .int64), labels: Tensor.zeros([2, 3], dtype: .int64),
                                       seqIdx: Tensor.zeros([2, 4], dtype: .int32), positions: Tensor.zeros([2, 4], dtype: .int64)))
    }
}
