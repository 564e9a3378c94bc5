// The run loop around a Trainer: steps up to a stop point, the held-out evaluation
// cadence, token counting and throughput, and the run's files (checkpoint and SVG plot)
// in an output folder. Progress goes to an observer, so a CLI only draws it.
//
// The cadence (fixed, so that runs and resumed runs log the same curves):
//   - evaluate at step 0 when the run starts fresh (the curves begin at the untrained model);
//   - evaluate after every step that is a multiple of `evalEvery`, and after the last
//     step of the schedule (`options.steps`);
//   - when the run stops elsewhere (`stopAt`), evaluate once more so the summary and the
//     checkpoint end on a current evaluation.
// Evaluation draws no random numbers, so the loss trajectory of a seed does not depend
// on when it runs.
//
// Keeping the work (see CheckpointFile, StopRequest, NonFiniteSteps): the output folder
// is checked writable, with room for a checkpoint, before step 1; a checkpoint is written
// every `saveEvery` steps (every rank takes part, the writer writes) and at the end; a
// stop request (SIGINT/SIGTERM) ends the run after the current step with a checkpoint,
// every rank stopping at the same step; too many non-finite steps in a row end it with
// the last finite state saved, then throw.

import Foundation
import Data

/// What a running ``TrainingRun`` reports to its observer.
public enum TrainingEvent {
    /// An optimizer step finished (and its evaluation, if the cadence asked for one).
    case step(TrainingProgress)
    /// A held-out evaluation finished.
    case evaluation(Evaluation)
}

/// Where a run stands after a step: the step's record and the inputs of a progress bar.
public struct TrainingProgress: Sendable {
    /// The step just completed.
    public var record: StepRecord
    /// The step the run started from (0, or the checkpoint's step when resumed).
    public var firstStep: Int
    /// The step the run stops after.
    public var lastStep: Int
    /// The steps of the schedule (``TrainingOptions/steps``); `lastStep` is smaller when stopping early.
    public var totalSteps: Int
    /// Tokens trained on since the run started (rows × sequence length × accumulation per step).
    public var tokens: Int
    /// Wall-clock seconds since the run started, evaluations included.
    public var elapsedSeconds: Double

    /// Tokens per second of wall-clock time so far.
    public var tokensPerSecond: Double { Double(tokens) / Swift.max(elapsedSeconds, 1e-9) }

    /// Seconds left to `lastStep` at the pace so far (0 before the first step).
    public var estimatedSecondsLeft: Double {
        let done = record.step - firstStep
        return done > 0 ? elapsedSeconds / Double(done) * Double(lastStep - record.step) : 0
    }
}

/// What a finished run produced.
public struct TrainingSummary: Sendable {
    /// The last held-out evaluation (at the last step).
    public var evaluation: Evaluation
    /// Steps completed, in total (including those before a resume).
    public var steps: Int
    /// Tokens trained on by this run.
    public var tokens: Int
    /// Wall-clock seconds of the steps and their evaluations (the final catch-up evaluation
    /// and the file writing excluded).
    public var seconds: Double
    /// The checkpoint written, if the run had an output folder.
    public var checkpoint: URL?
    /// The SVG plot written, if the run had an output folder.
    public var plot: URL?

    /// Whether a stop request ended the run before ``TrainingRun/lastStep``.
    public var interrupted = false

    /// Tokens per second over ``seconds``.
    public var tokensPerSecond: Double { Double(tokens) / Swift.max(seconds, 1e-9) }
}

/// A training run: a ``Trainer`` stepped to a stop point with periodic evaluation,
/// then a checkpoint and a loss plot.
public struct TrainingRun {
    /// Computes one micro-step's gradients (see ``Trainer/trainStep(accumulating:)``).
    public typealias Accumulate = (Batch) throws -> (main: Float, depths: [Float])

    /// The checkpoint's file name in the output folder.
    public static let checkpointName = "checkpoint.safetensors"
    /// The plot's file name in the output folder.
    public static let plotName = "losses.svg"

    /// The trainer, at its current step (0, or a loaded checkpoint's).
    public let trainer: Trainer
    /// The folder for the checkpoint and plot (created when needed); nil writes nothing.
    public var outputFolder: URL?
    /// The exact floors of the held-out set (built-in corpus), drawn dashed in the plot.
    public var floors: TargetMeans?
    /// Stop after this step (before ``TrainingOptions/steps``, to resume later); nil runs the schedule.
    public var stopAt: Int?
    /// The plot's title.
    public var plotTitle: String
    /// Computes each micro-step's gradients (a pipeline's step, say); nil uses the trainer's
    /// own forward and backward (``Trainer/trainStep()``).
    public var accumulate: Accumulate?
    /// Write a checkpoint every this many steps as well as at the end (nil or 0: only at the end).
    public var saveEvery: Int?
    /// Polled after every step: when set (on any rank), the run saves and returns.
    public var stopRequest: StopRequest?

    /// A run of `trainer`.
    /// - Parameters:
    ///   - outputFolder: where the checkpoint and plot go; nil writes nothing.
    ///   - floors: the held-out floors to draw, if known.
    ///   - stopAt: the step to stop after; nil runs to ``TrainingOptions/steps``.
    ///   - accumulate: computes each micro-step's gradients; nil uses the trainer's own.
    public init(trainer: Trainer, outputFolder: URL?, floors: TargetMeans? = nil, stopAt: Int? = nil,
                accumulate: Accumulate? = nil) {
        self.trainer = trainer
        self.accumulate = accumulate
        self.outputFolder = outputFolder
        self.floors = floors
        self.stopAt = stopAt
        let m = trainer.options.model
        plotTitle = "\(m.layers) layers, H=\(m.hiddenSize), D=\(m.mtpDepths)"
    }

    /// The checkpoint file, when there is an output folder.
    public var checkpointURL: URL? { outputFolder?.appendingPathComponent(Self.checkpointName) }
    /// The plot file, when there is an output folder.
    public var plotURL: URL? { outputFolder?.appendingPathComponent(Self.plotName) }

    /// The step the run stops after: `stopAt`, but never past the schedule.
    public var lastStep: Int { Swift.min(trainer.options.steps, stopAt ?? trainer.options.steps) }

    /// Runs the loop to ``lastStep``, then writes the checkpoint and the plot.
    ///
    /// - Parameter observer: told of every step and evaluation, on the calling thread.
    /// - Returns: the final evaluation, counts, timing and the files written.
    /// - Throws: what the steps, evaluations or file writes throw; the trainer keeps the steps done.
    @discardableResult
    public func run(observer: (TrainingEvent) -> Void = { _ in }) throws -> TrainingSummary {
        let options = trainer.options
        let last = lastStep
        let firstStep = trainer.step
        let tokensPerStep = options.batchSize * options.sequenceLength * options.gradientAccumulation
        let start = Date()
        var tokens = 0
        // Checked first, so an unwritable or full folder fails before the steps, not after.
        if let outputFolder, trainer.collectives.isWriter {
            try CheckpointFile.checkWritable(outputFolder, bytes: CheckpointFile.estimatedBytes(parameters: trainer.model.parameterCount))
        }
        func evaluate() throws { observer(.evaluation(try trainer.evaluate())) }

        if trainer.step == 0 { try evaluate() }
        var interrupted = false
        while trainer.step < last {
            let record = try accumulate.map { try trainer.trainStep(accumulating: $0) } ?? trainer.trainStep()
            tokens += tokensPerStep
            if trainer.step % options.evalEvery == 0 || trainer.step == options.steps { try evaluate() }
            observer(.step(TrainingProgress(record: record, firstStep: firstStep, lastStep: last, totalSteps: options.steps,
                                            tokens: tokens, elapsedSeconds: Date().timeIntervalSince(start))))
            if trainer.consecutiveSkippedSteps >= NonFiniteSteps.consecutiveLimit {
                try writeFiles()
                throw TrainingError("steps \(trainer.step - NonFiniteSteps.consecutiveLimit + 1)...\(trainer.step) all had a "
                    + "non-finite loss or gradient norm (last: loss \(record.mainLoss), norm \(record.gradientNorm)) and were "
                    + "skipped; the run stopped" + (checkpointURL.map { " with its last finite state in \($0.path)" } ?? "")
                    + " (\(trainer.skippedSteps.count) steps skipped in all; lower --lr or set --clip)")
            }
            // Every rank must stop at the same step: a signal may reach them at different times.
            if try trainer.collectives.anyRank(stopRequest?.isRequested ?? false) {
                interrupted = trainer.step < last
                break
            }
            if let saveEvery, saveEvery > 0, trainer.step % saveEvery == 0, trainer.step < last { try writeFiles() }
        }
        let seconds = Date().timeIntervalSince(start)
        // A stopped run saves at once (no catch-up evaluation); otherwise the run ends on a current one.
        if trainer.evaluations.isEmpty || (!interrupted && trainer.evaluations.last?.step != trainer.step) { try evaluate() }
        try writeFiles()
        var summary = TrainingSummary(evaluation: trainer.evaluations.last!, steps: trainer.step, tokens: tokens, seconds: seconds,
                                      checkpoint: checkpointURL, plot: plotURL)
        summary.interrupted = interrupted
        return summary
    }

    /// Writes the checkpoint and the plot of the trainer's history into the output folder.
    /// - Throws: file-system errors.
    public func writeFiles() throws {
        // Every rank takes part in gathering the state; the writer alone writes it.
        try trainer.collectives.synchronizeState()
        guard trainer.collectives.isWriter, let outputFolder, let checkpointURL, let plotURL else { return }
        try FileManager.default.createDirectory(at: outputFolder, withIntermediateDirectories: true)
        CheckpointFile.removeStaleTemporaries(in: outputFolder)
        try trainer.saveCheckpoint(to: checkpointURL)
        let chart = LossPlot(title: plotTitle, history: trainer.history, evaluations: trainer.evaluations,
                             mainFloor: floors?.main, depthFloors: floors?.depths)
        try chart.svg().write(to: plotURL, atomically: true, encoding: .utf8)
    }
}
