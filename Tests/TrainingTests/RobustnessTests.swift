// Runs that survive faults: non-finite steps skipped and counted, a diverged run stopped
// with its last finite state saved, damaged or hostile checkpoints refused before anything
// is built from them, periodic checkpoints, stop requests, an unwritable folder found
// before step 1, and a batch larger than the data found before the first evaluation.

import Data
import Foundation
import Model
import Tensors
import TestSupport
import Training
import TrainingTestSupport
import XCTest

final class RobustnessTests: XCTestCase {
    private func tinyOptions(steps: Int = 6) -> TrainingOptions {
        tinyTrainingOptions(hidden: 8, intermediate: 16, depths: 1, steps: steps, batchSize: 2, sequenceLength: 16,
                            learningRate: 1e-2, warmup: 1, seed: 4)
    }

    private func trainer(_ o: TrainingOptions) throws -> Trainer {
        let corpus = try SyntheticCorpus(vocabularySize: o.model.vocabularySize, seed: o.seed)
        let d = try DocumentSplit(try corpus.documents(count: 60, seed: 9), heldOutFraction: 0.2, seed: 1)
        return try Trainer(options: o, train: d.train, heldOut: d.heldOut)
    }

    private func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("robustness-\(UUID().uuidString)")
    }

    private func assertThrows(_ body: @autoclosure () throws -> Any, containing text: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(text), "'\(error)' does not mention '\(text)'", file: file, line: line)
        }
    }

    // MARK: Non-finite steps

    func testANonFiniteStepIsSkippedAndCounted() throws {
        let t = try trainer(tinyOptions())
        let before = t.model.parameterTensors()
        let record = try t.trainStep { _ in (.nan, [0]) }
        XCTAssertTrue(record.mainLoss.isNaN)
        XCTAssertEqual(t.step, 1, "the step counts (its batch is consumed)")
        XCTAssertEqual(t.skippedSteps, [1])
        XCTAssertEqual(t.optimizer.step, 0, "AdamW did not update")
        for (name, value) in t.model.parameterTensors() { XCTAssertEqual(value.floats, before[name]?.floats, name) }
        try t.trainStep()
        XCTAssertEqual(t.skippedSteps, [1])
        XCTAssertEqual(t.optimizer.step, 1)
        XCTAssertEqual(t.consecutiveSkippedSteps, 0)
    }

    func testADivergedRunStopsWithItsLastFiniteStateSaved() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let t = try trainer(tinyOptions(steps: 20))
        let run = TrainingRun(trainer: t, outputFolder: folder, accumulate: { _ in (.infinity, [.nan]) })
        assertThrows(try run.run(), containing: "non-finite")
        XCTAssertEqual(t.step, NonFiniteSteps.consecutiveLimit)
        // The checkpoint holds NaN history values and resumes.
        let resumed = try trainer(tinyOptions(steps: 20))
        try resumed.loadCheckpoint(from: try XCTUnwrap(run.checkpointURL))
        XCTAssertEqual(resumed.step, 5)
        XCTAssertEqual(resumed.skippedSteps, [1, 2, 3, 4, 5])
        XCTAssertEqual(resumed.optimizer.step, 0)
    }

    // MARK: Damaged and hostile checkpoints

    private func savedCheckpoint(steps: Int = 2) throws -> (url: URL, folder: URL) {
        let folder = temporaryFolder()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let t = try trainer(tinyOptions(steps: steps))
        for _ in 0..<steps { try t.trainStep() }
        let url = folder.appendingPathComponent("checkpoint.safetensors")
        try t.saveCheckpoint(to: url)
        return (url, folder)
    }

    /// The checkpoint at `url` rewritten with `change` applied to its metadata.
    private func rewrite(_ url: URL, _ change: (inout [String: String]) -> Void) throws {
        var (tensors, metadata) = try SafeTensors.read(contentsOf: url)
        change(&metadata)
        try SafeTensors.write(tensors, metadata: metadata, to: url)
    }

    func testACheckpointWithHalfItsBytesZeroedIsRefused() throws {
        let (url, folder) = try savedCheckpoint()
        defer { try? FileManager.default.removeItem(at: folder) }
        var bytes = try Data(contentsOf: url)
        bytes.replaceSubrange((bytes.count / 2)..<bytes.count, with: Data(count: bytes.count - bytes.count / 2))
        try bytes.write(to: url)
        assertThrows(try Trainer.readCheckpoint(url), containing: "damaged")
        assertThrows(try trainer(tinyOptions()).loadCheckpoint(from: url), containing: "damaged")
        assertThrows(try Trainer.loadModel(checkpoint: url), containing: "damaged")
    }

    func testANegativeStepInTheMetadataIsRefused() throws {
        let (url, folder) = try savedCheckpoint()
        defer { try? FileManager.default.removeItem(at: folder) }
        try rewrite(url) { $0["step"] = "-5" }
        assertThrows(try trainer(tinyOptions()).loadCheckpoint(from: url), containing: "'-5' is not a step count")
    }

    func testAHugeModelInTheMetadataIsRefusedBeforeItIsBuilt() throws {
        let (url, folder) = try savedCheckpoint()
        defer { try? FileManager.default.removeItem(at: folder) }
        for (key, value) in [("hiddenSize", 1 << 20), ("vocabularySize", 1 << 40)] {
            try rewrite(url) { m in
                var o = try! JSONDecoder().decode(TrainingOptions.self, from: Data(m["training_options"]!.utf8))
                if key == "hiddenSize" { o.model.hiddenSize = value } else { o.model.vocabularySize = value }
                m["training_options"] = String(decoding: try! JSONEncoder().encode(o), as: UTF8.self)
                m["model_config"] = String(decoding: try! JSONEncoder().encode(o.model), as: UTF8.self)
                m["payload_checksum"] = nil
            }
            XCTAssertThrowsError(try Trainer.readCheckpoint(url), key)
            XCTAssertThrowsError(try Trainer.loadModel(checkpoint: url), key)
        }
    }

    // MARK: Options

    func testNonFiniteAndNegativeOptionsNameTheirFlag() throws {
        let cases: [(String, (inout TrainingOptions) -> Void)] = [
            ("--clip", { $0.gradientClip = .nan }), ("--weight-decay", { $0.weightDecay = .nan }),
            ("--weight-decay", { $0.weightDecay = -0.1 }), ("--mtp-scale", { $0.model.mtpLossScalingFactor = .nan }),
            ("--mtp-scale", { $0.model.mtpLossScalingFactor = .infinity }), ("--mtp-scale", { $0.model.mtpLossScalingFactor = -1 }),
        ]
        for (flag, change) in cases {
            var o = tinyOptions()
            change(&o)
            assertThrows(try o.validate(), containing: flag)
        }
    }

    func testHeadsWithoutTargetsAreRefused() throws {
        var o = tinyOptions()
        o.sequenceLength = 1
        assertThrows(try o.validate(), containing: "without targets")
        o.model.mtpDepths = 8
        o.sequenceLength = 8
        assertThrows(try o.validate(), containing: "depth 7 without targets")
        o.sequenceLength = 9
        XCTAssertNoThrow(try o.validate())
    }

    func testSizesBeyondTheMachineAreRefusedByFlag() throws {
        var o = tinyOptions()
        o.sequenceLength = 1 << 40
        assertThrows(try o.validate(), containing: "--seq-len 1099511627776")
        o = tinyOptions()
        o.model.hiddenSize = 1 << 20
        o.model.heads = 2
        assertThrows(try o.validate(), containing: "hidden 1048576")
        o = tinyOptions()
        o.batchSize = Int.max
        assertThrows(try o.validate(), containing: "--batch-size")
        assertThrows(try o.builtInDocuments(count: 1_000_000_000_000), containing: "--documents 1000000000000")
        o = tinyOptions()
        o.gradientAccumulation = Int.max
        assertThrows(try o.validate(), containing: "--grad-accum \(Int.max)")
    }

    func testABatchLargerThanTheDataFailsBeforeAnyEvaluation() throws {
        var o = tinyOptions()
        o.batchSize = 100_000
        assertThrows(try trainer(o), containing: "fewer than one batch (--batch-size 100000)")
    }

    // MARK: Resume

    func testResumeRefusesContradictingFlagsAndExtendsSteps() throws {
        let recorded = tinyOptions(steps: 6)
        var requested = recorded
        requested.steps = 20
        requested.learningRate = 0.5
        requested.loss = .masked
        requested.seed = 5
        assertThrows(try recorded.resumed(as: requested, atStep: 6), containing: "--lr 0.5 (checkpoint: 0.01), --loss masked (checkpoint: fused), --seed 5 (checkpoint: 4)")
        requested = recorded
        requested.steps = 20
        requested.evalEvery = 3
        let resumed = try recorded.resumed(as: requested, atStep: 6)
        XCTAssertEqual(resumed.steps, 20)
        XCTAssertEqual(resumed.evalEvery, 3)
        requested.steps = 4
        assertThrows(try recorded.resumed(as: requested, atStep: 6), containing: "--steps 4 ends before the checkpoint's step 6")
    }

    func testResumeRefusesOtherDataUnlessAllowed() throws {
        var recorded = tinyOptions()
        recorded.dataSource = .tokens(path: "a.bin")
        recorded.dataRecord = TrainingDataRecord(byteCount: 100, contentHash: "fnv1a64w:1", separator: 3)
        assertThrows(try recorded.resumedData(source: .builtIn, record: TrainingDataRecord(documents: 6000), allowDataChange: false),
                     containing: "trained on --tokens a.bin, not the built-in corpus")
        assertThrows(try recorded.resumedData(source: .tokens(path: "a.bin"),
                                              record: TrainingDataRecord(byteCount: 102, contentHash: "fnv1a64w:2", separator: 3),
                                              allowDataChange: false), containing: "size (bytes) 100 → 102")
        XCTAssertEqual(try recorded.resumedData(source: .builtIn, record: TrainingDataRecord(documents: 10), allowDataChange: true).dataSource,
                       .builtIn)
    }

    // MARK: The run's files

    func testPeriodicCheckpointsAndStaleTemporariesCleanedUp() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let stale = folder.appendingPathComponent(".checkpoint.safetensors.partial-2147483646")
        try Data([1, 2, 3]).write(to: stale)
        // Not ours to remove: a user's hidden file and folder whose names hold ".partial-",
        // and the temporary of a run that is still alive (this test's parent process).
        let userFile = folder.appendingPathComponent(".thesis.partial-v2.txt")
        let userFolder = folder.appendingPathComponent(".x.partial-12")
        let live = folder.appendingPathComponent(".checkpoint.safetensors.partial-\(getppid())")
        for url in [userFile, live] { try Data("keep".utf8).write(to: url) }
        try FileManager.default.createDirectory(at: userFolder, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: userFolder.appendingPathComponent("important"))
        var run = TrainingRun(trainer: try trainer(tinyOptions(steps: 5)), outputFolder: folder)
        run.saveEvery = 2
        var savedSteps: [String] = []
        try run.run { event in
            guard case .step = event, let url = run.checkpointURL,
                  let (_, m) = try? SafeTensors.read(contentsOf: url) else { return }
            savedSteps.append(m["step"] ?? "?")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path), "stale temporary removed")
        XCTAssertEqual(savedSteps, ["2", "2", "4"], "observed after steps 3, 4 (saved after the observer) and 5")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertEqual(names, [live.lastPathComponent, userFile.lastPathComponent, userFolder.lastPathComponent,
                               "checkpoint.safetensors", "losses.svg"].sorted())
        XCTAssertEqual(try String(contentsOf: userFolder.appendingPathComponent("important"), encoding: .utf8), "keep")
    }

    func testTemporariesNeverFollowAPlantedSymbolicLink() throws {
        // A symbolic link named like this process's temporary (or probe) in a shared folder
        // must not redirect the write onto the file it points to.
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let precious = folder.appendingPathComponent("precious.txt")
        try Data("precious".utf8).write(to: precious)
        for name in [".checkpoint.safetensors.partial-\(getpid())", ".probe.partial-\(getpid())"] {
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: precious)
        }
        try CheckpointFile.checkWritable(folder, bytes: 10)
        let checkpoint = folder.appendingPathComponent("checkpoint.safetensors")
        try CheckpointFile.write(Data([1, 2, 3]), to: checkpoint)
        XCTAssertEqual(try String(contentsOf: precious, encoding: .utf8), "precious")
        XCTAssertEqual(try Data(contentsOf: checkpoint), Data([1, 2, 3]))
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: checkpoint.path)[.type] as? FileAttributeType, .typeRegular)
    }

    func testTerminationSignalsReachTheWatcherAndNeverTheComputingThread() throws {
        // oneDNN's JIT GEMMs cannot take a signal frame (they point rsp into the heap): the
        // thread that computes must block SIGINT/SIGTERM, and the request must still arrive.
        let stop = StopRequest()
        stop.handleTerminationSignals()
        var all = sigset_t()
        sigemptyset(&all)
        sigaddset(&all, SIGINT)
        sigaddset(&all, SIGTERM)
        defer { pthread_sigmask(SIG_UNBLOCK, &all, nil) }
        var mask = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &mask)
        XCTAssertEqual(sigismember(&mask, SIGTERM), 1, "SIGTERM could interrupt this thread's GEMMs")
        XCTAssertEqual(sigismember(&mask, SIGINT), 1, "SIGINT could interrupt this thread's GEMMs")
        kill(getpid(), SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while !stop.isRequested && Date() < deadline { usleep(10_000) }
        XCTAssertTrue(stop.isRequested, "the signal never reached the watcher")
        XCTAssertEqual(stop.signal, SIGTERM)
    }

    func testAStopRequestSavesAfterTheCurrentStep() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let stop = StopRequest()
        var run = TrainingRun(trainer: try trainer(tinyOptions(steps: 6)), outputFolder: folder)
        run.stopRequest = stop
        let summary = try run.run { if case .step(let p) = $0, p.record.step == 2 { stop.request() } }
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.steps, 2)
        let (_, m) = try SafeTensors.read(contentsOf: try XCTUnwrap(summary.checkpoint))
        XCTAssertEqual(m["step"], "2")
    }

    func testAnUnwritableFolderFailsBeforeTheFirstStep() throws {
        let file = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("x".utf8).write(to: file)
        var steps = 0
        let run = TrainingRun(trainer: try trainer(tinyOptions()), outputFolder: file.appendingPathComponent("out"))
        XCTAssertThrowsError(try run.run { if case .step = $0 { steps += 1 } })
        XCTAssertEqual(steps, 0)
        let asFolder = TrainingRun(trainer: try trainer(tinyOptions()), outputFolder: file)
        assertThrows(try asFolder.run(), containing: "is a file, not a folder")
    }
}
