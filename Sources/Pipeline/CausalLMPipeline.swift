// The in-process pipeline: P stage threads run one schedule over M microbatches
// of a batch, talking through StageTransports, and add the batch's gradients into
// the model's parameters. A stage that throws aborts every transport, so the
// other stages stop, and the step rethrows that error.

import Data
import Model
import Dispatch
import Foundation
import Losses
import MTP
import Tensors

/// Timing of one or more pipeline steps.
///
/// The bubble is the idle share of the stage threads: `1 − Σ_s busy_s / (P · wall)`.
/// With equal stages and free communication it is (P−1)/(M+P−1) for both schedules.
public struct PipelineTiming: Sendable, Equatable {
    /// Wall seconds from starting the stage threads to the last one finishing.
    public var wallSeconds: Double
    /// Seconds each stage spent computing (its thread's time outside `send`/`receive`).
    public var busySeconds: [Double]
    /// M of the schedule.
    public var microbatches: Int

    /// Timing with the given values.
    public init(wallSeconds: Double, busySeconds: [Double], microbatches: Int) {
        self.wallSeconds = wallSeconds
        self.busySeconds = busySeconds
        self.microbatches = microbatches
    }

    /// P.
    public var stages: Int { busySeconds.count }

    /// The measured idle share `1 − Σ busy / (P · wall)` (0 when no time passed).
    public var bubbleFraction: Double {
        guard wallSeconds > 0, stages > 0 else { return 0 }
        return 1 - busySeconds.reduce(0, +) / (Double(stages) * wallSeconds)
    }

    /// (P−1)/(M+P−1).
    public var idealBubbleFraction: Double { Double(stages - 1) / Double(microbatches + stages - 1) }

    /// The timing of two runs one after the other (same P and M).
    public static func + (a: PipelineTiming, b: PipelineTiming) -> PipelineTiming {
        precondition(a.stages == b.stages, "adding timings of \(a.stages) and \(b.stages) stages")
        return PipelineTiming(wallSeconds: a.wallSeconds + b.wallSeconds,
                              busySeconds: zip(a.busySeconds, b.busySeconds).map(+), microbatches: a.microbatches)
    }
}

/// What one pipeline step computed.
public struct PipelineStepResult: Sendable {
    /// The batch loss: Σ over microbatches of the last stage's loss values, equal to the
    /// non-pipelined loss of the whole batch.
    public var loss: Float
    /// The batch's main loss (mean over its targets for a `.mean` loss).
    public var mainLoss: Float
    /// The batch's unscaled per-depth MTP losses (empty when no MTP term was added).
    public var depthLosses: [Float]
    /// Wall and busy time of the step.
    public var timing: PipelineTiming
    /// Each stage's report.
    public var stages: [StageReport]
}

/// Pipeline-parallel training steps of a ``Training/CausalLM``: P stages on P threads,
/// a GPipe or 1F1B schedule over M microbatches, and the SPEC §4 loss on the last stage.
///
/// ```swift
/// let pipeline = try CausalLMPipeline(model: model, lossFunction: FusedLinearCrossEntropy(reduction: .mean),
///                                     schedule: .oneForwardOneBackward(stages: 2, microbatches: 4))
/// let result = try pipeline.step(batch)   // gradients are now in model's parameters
/// ```
///
/// ## Normalisation
/// The accumulated gradients equal those of the non-pipelined step on the whole batch
/// (`PipelineCausalLMLoss` with the same loss, one `backward()`): with a `.mean` loss each
/// microbatch reduces every term (main, each depth) as its sum over the microbatch's
/// targets divided by the *batch's* target count of that term, so the M losses add up to
/// the batch loss; a `.sum` loss is summed as it is.
///
/// ## Errors
/// When a stage throws, it aborts the transports, every other stage stops at its next
/// `send` or `receive`, and ``step(_:gradientScale:)`` rethrows the first stage's error.
/// The parameters' gradients are then partial: clear them before the next step.
public final class CausalLMPipeline {
    /// The model; its parameters receive the gradients.
    public let model: CausalLM
    /// The batch's per-token loss (`.mean` or `.sum`).
    public let lossFunction: any TokenLoss
    /// Builds the last stage's `PipelineCausalLMLoss`.
    public let lossConfig: MTPLossConfig
    /// The actions of every stage.
    public let schedule: PipelineSchedule
    /// The blocks of every stage.
    public let partition: PipelinePartition
    /// Makes the P connected transport endpoints of one step (in-process channels by default).
    public var makeTransports: @Sendable (_ stages: Int) -> [any StageTransport] = { InProcessTransport.connecting(stages: $0) }
    private let stageRunners: [CausalLMStage]

    /// A pipeline over `model`.
    ///
    /// - Parameters:
    ///   - lossFunction: the loss the non-pipelined step would use, with reduction `.mean`
    ///     (MaskedCrossEntropy, ChunkedCrossEntropy, FusedLinearCrossEntropy) or `.sum` (any).
    ///     It must match the model's output: logits when `model.emitsLogits`, else a fused loss.
    ///   - lossConfig: the MTP loss configuration (scaling factor override, ignore index).
    ///   - schedule: P and M and the order of the actions.
    ///   - partition: the blocks per stage; nil gives ``PipelinePartition/balanced(layers:stages:mtpDepths:)``.
    /// - Throws: ``PipelineError`` when the partition and schedule disagree on P, the partition
    ///   does not fit the model, or the loss's reduction is `.none`.
    public init(model: CausalLM, lossFunction: any TokenLoss, lossConfig: MTPLossConfig = MTPLossConfig(),
                schedule: PipelineSchedule, partition: PipelinePartition? = nil) throws {
        let depths = model.mtp?.config.numLayers ?? 0
        let partition = try partition ?? PipelinePartition.balanced(layers: model.layers.count, stages: schedule.stages, mtpDepths: depths)
        guard partition.stages == schedule.stages else {
            throw PipelineError("the partition has \(partition.stages) stages (\(partition)), the schedule \(schedule.stages)")
        }
        guard lossFunction.reduction != .none else {
            throw PipelineError("a pipeline needs a scalar loss: reduction none is not supported")
        }
        self.model = model
        self.lossFunction = lossFunction
        self.lossConfig = lossConfig
        self.schedule = schedule
        self.partition = partition
        stageRunners = try (0..<partition.stages).map {
            try CausalLMStage(model: model, partition: partition, stage: $0, lossFunction: lossFunction, lossConfig: lossConfig)
        }
    }

    /// Forward and backward of `batch`, cut into the schedule's M microbatches of consecutive rows.
    ///
    /// - Parameter gradientScale: multiplies the gradients added (e.g. 1 / accumulation steps).
    /// - Throws: ``PipelineError`` when M does not divide the rows; otherwise as ``step(microbatches:gradientScale:)``.
    @discardableResult
    public func step(_ batch: Batch, gradientScale: Float = 1) throws -> PipelineStepResult {
        try step(microbatches: batch.microbatches(schedule.microbatches), gradientScale: gradientScale)
    }

    /// Forward and backward of the batch made of `microbatches`, adding `gradientScale ·` its
    /// gradients into the model's parameters.
    ///
    /// - Throws: ``PipelineError`` when the count is not M or the row lengths differ; the error
    ///   of the first stage that failed (a model, loss or transport error).
    @discardableResult
    public func step(microbatches: [Batch], gradientScale: Float = 1) throws -> PipelineStepResult {
        guard microbatches.count == schedule.microbatches else {
            throw PipelineError("the schedule has \(schedule.microbatches) microbatches, got \(microbatches.count)")
        }
        let length = microbatches[0].inputIds.shape[1]
        for (m, mb) in microbatches.enumerated() where mb.inputIds.shape[1] != length {
            throw PipelineError("microbatch \(m) has rows of \(mb.inputIds.shape[1]) tokens, microbatch 0 of \(length)")
        }
        let depths = model.mtp?.config.numLayers ?? 0
        let counts = try microbatches.map {
            try TargetCounts(labels: $0.labels, seqIdx: $0.seqIdx, depths: depths,
                             ignoreIndex: lossConfig.ignoreIndex, lossIgnoreIndex: lossFunction.ignoreIndex)
        }.reduce(TargetCounts(main: 0, depths: [Int](repeating: 0, count: depths)), +)

        let p = schedule.stages
        let transports = makeTransports(p)
        guard transports.count == p else { throw PipelineError("makeTransports returned \(transports.count) endpoints for \(p) stages") }
        let outcome = StepOutcome(stages: p)
        let group = DispatchGroup()
        let schedule = self.schedule
        let start = DispatchTime.now().uptimeNanoseconds
        for (s, runner) in stageRunners.enumerated() {
            let transport = transports[s]
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    outcome.finish(s, try runner.run(schedule: schedule, microbatches: microbatches, counts: counts,
                                                     transport: transport, gradientScale: gradientScale))
                } catch {
                    outcome.fail(s, error)
                    transport.abort(error)
                }
            }
            thread.name = "pipeline stage \(s)"
            thread.stackSize = 16 << 20
            thread.start()
        }
        group.wait()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let reports = try outcome.result()
        let last = reports[p - 1]
        return PipelineStepResult(loss: last.loss ?? 0, mainLoss: last.mainLoss ?? 0, depthLosses: last.depthLosses ?? [],
                                  timing: PipelineTiming(wallSeconds: wall, busySeconds: reports.map(\.busySeconds),
                                                         microbatches: schedule.microbatches),
                                  stages: reports)
    }
}

/// The stage threads' results: each stage's report, or the error that stopped the step.
private final class StepOutcome: @unchecked Sendable {
    // Every field is read and written with `lock` held.
    private let lock = NSLock()
    private var reports: [StageReport?]
    private var firstError: (any Error)?
    private var firstStop: (any Error)?

    init(stages: Int) { reports = [StageReport?](repeating: nil, count: stages) }

    func finish(_ stage: Int, _ report: StageReport) {
        lock.lock(); defer { lock.unlock() }
        reports[stage] = report
    }

    /// Records a stage's error: the first one that is not a consequence of an abort wins.
    func fail(_ stage: Int, _ error: any Error) {
        lock.lock(); defer { lock.unlock() }
        if error is PipelineStopped {
            if firstStop == nil { firstStop = error }
        } else if firstError == nil {
            firstError = error
        }
    }

    /// Every stage's report, or the error that stopped the step.
    func result() throws -> [StageReport] {
        lock.lock(); defer { lock.unlock() }
        if let e = firstError ?? firstStop { throw e }
        return reports.map { $0! }
    }
}
