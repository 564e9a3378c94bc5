// The run loop: evaluation cadence, stop and resume, observer events, the files it
// writes, and that it follows the same trajectory as stepping the trainer by hand.

import Data
import Foundation
import Model
import Tensors
import TestSupport
import Training
import TrainingTestSupport
import XCTest

final class TrainingRunTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        reportBLASKernelOnce()
    }

    private func tinyOptions(steps: Int, evalEvery: Int) -> TrainingOptions {
        tinyTrainingOptions(steps: steps, sequenceLength: 32, learningRate: 1e-2, warmup: 2, evalEvery: evalEvery, seed: 5)
    }

    private func trainer(_ o: TrainingOptions) throws -> Trainer {
        let corpus = try SyntheticCorpus(vocabularySize: o.model.vocabularySize, seed: o.seed)
        let d = try DocumentSplit(try corpus.documents(count: 80, seed: 9), heldOutFraction: 0.2, seed: 1)
        return try Trainer(options: o, train: d.train, heldOut: d.heldOut)
    }

    private func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("training-run-\(UUID().uuidString)")
    }

    func testEvaluatesAtTheStartEveryIntervalAndTheEnd() throws {
        let o = tinyOptions(steps: 7, evalEvery: 3)
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var events: [String] = []
        let summary = try TrainingRun(trainer: try trainer(o), outputFolder: folder).run { event in
            switch event {
            case .step(let p): events.append("s\(p.record.step)")
            case .evaluation(let e): events.append("e\(e.step)")
            }
        }
        XCTAssertEqual(events, ["e0", "s1", "s2", "e3", "s3", "s4", "s5", "e6", "s6", "e7", "s7"])
        XCTAssertEqual(summary.steps, 7)
        XCTAssertEqual(summary.evaluation.step, 7)
        XCTAssertEqual(summary.tokens, 7 * o.batchSize * o.sequenceLength)
        XCTAssertEqual(summary.checkpoint, folder.appendingPathComponent("checkpoint.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("checkpoint.safetensors").path))
        let svg = try String(contentsOf: folder.appendingPathComponent("losses.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"))
    }

    func testStoppingEarlyEvaluatesOnceMoreAndResumesBitExactly() throws {
        let o = tinyOptions(steps: 7, evalEvery: 3)
        let straight = try trainer(o)
        try TrainingRun(trainer: straight, outputFolder: nil).run()

        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try trainer(o)
        let stopped = try TrainingRun(trainer: first, outputFolder: folder, stopAt: 4).run()
        XCTAssertEqual(stopped.steps, 4)
        XCTAssertEqual(first.evaluations.map(\.step), [0, 3, 4])

        let resumed = try trainer(o)
        try resumed.loadCheckpoint(from: try XCTUnwrap(stopped.checkpoint))
        var progress: [TrainingProgress] = []
        try TrainingRun(trainer: resumed, outputFolder: nil).run { if case .step(let p) = $0 { progress.append(p) } }
        XCTAssertEqual(progress.map(\.record.step), [5, 6, 7])
        XCTAssertEqual(progress.map(\.firstStep), [4, 4, 4])
        XCTAssertEqual(progress.last?.estimatedSecondsLeft, 0)
        XCTAssertEqual(resumed.evaluations.map(\.step), [0, 3, 4, 6, 7], "no step-0 evaluation when resuming")
        XCTAssertEqual(resumed.history, straight.history)
        XCTAssertEqual(resumed.evaluations.last, straight.evaluations.last)
    }

    func testFollowsTheTrajectoryOfManualSteps() throws {
        let o = tinyOptions(steps: 5, evalEvery: 2)
        let manual = try trainer(o)
        _ = try manual.evaluate()
        for _ in 0..<o.steps { try manual.trainStep() }
        let looped = try trainer(o)
        try TrainingRun(trainer: looped, outputFolder: nil).run()
        XCTAssertEqual(looped.history, manual.history, "evaluations draw no random numbers")
    }

    func testAStepClosureComputesEveryMicroStep() throws {
        var o = tinyOptions(steps: 3, evalEvery: 10)
        o.gradientAccumulation = 2
        var calls = 0
        let run = TrainingRun(trainer: try trainer(o), outputFolder: nil, accumulate: { batch in
            XCTAssertEqual(batch.inputIds.shape, [o.batchSize, o.sequenceLength])
            calls += 1
            return (1, [2, 3])
        })
        try run.run()
        XCTAssertEqual(calls, 6)
    }
}
