// One pipeline stage of a CausalLM: its forward and backward on a microbatch,
// and the loop that runs its list of schedule actions over a transport.
//
// Forward F(m):
//   first stage   x = embed(ids);  e_k = embed(ids rolled left k+1 times), k < D
//   other stages  x, e_k ← leaves made from the received activation
//   every stage   x ← its blocks(x, positions, seqIdx)
//   not last      send (x, e_0 … e_{D−1}, positions, seqIdx) to the next stage
//   last          h = norm(x); h_k = MTP(h, .embeddings(e)); output = (h or logits,
//                 h_k or their logits, seqIdx as Int32) → PipelineCausalLMLoss, once
// Backward B(m):
//   last          loss.backward(gradientScale)
//   not last      receive g(x), g(e_k); x.backward(g(x)), e_k.backward(g(e_k))
//   not first     send the received leaves' gradients (x, e_k) to the previous stage
// A middle stage sends its e_k leaves on unchanged, so their gradient passes through it.

import Data
import Model
import Foundation
import Losses
import MTP
import NN
import Tensors

/// Names of the tensors in stage messages.
enum MessageName {
    static let hidden = "hidden"
    static let positions = "positions"
    static let seqIdx = "seq_idx"
    static func mtpEmbedding(_ k: Int) -> String { "mtp_embeddings.\(k)" }
}

/// What one stage did in one step.
public struct StageReport: Sendable {
    /// The stage index s.
    public var stage: Int
    /// Seconds spent computing (the step's wall time on this thread minus the time in `send` and `receive`).
    public var busySeconds: Double
    /// Seconds spent in `send` and `receive` (waiting for a neighbour, mostly).
    public var transportSeconds: Double
    /// The last stage only: Σ_m of the microbatch losses (the batch loss).
    public var loss: Float?
    /// The last stage only: the batch's main loss.
    public var mainLoss: Float?
    /// The last stage only: the batch's unscaled per-depth MTP losses (empty without the MTP term).
    public var depthLosses: [Float]?
}

/// Runs one stage of a ``CausalLMPipeline``: the actions of its row of a schedule, with
/// activations and gradients through a ``StageTransport``.
///
/// A multi-process driver runs one of these per process with its own transport; the
/// in-process ``CausalLMPipeline`` runs P of them on P threads.
public final class CausalLMStage: @unchecked Sendable {
    // Safe to run on its own thread beside the other stages: a stage reads and
    // differentiates only its own parameters (the partition makes them disjoint), reads
    // the model's flags without writing them, and keeps its state in `saved`, which
    // only `run` (one thread) touches.

    /// The stage index s.
    public let stage: Int
    /// The number of stages P.
    public let stageCount: Int
    /// The model blocks this stage runs.
    public let layers: Range<Int>
    let model: CausalLM
    private let lossFunction: any TokenLoss
    private let lossConfig: MTPLossConfig
    private var saved: [Int: Saved] = [:]

    private struct Saved {
        var leaves: [String: Tensor] = [:]  // received tensors, made leaves
        var sent: [String: Tensor] = [:]    // sent tensors, with their graphs
        var loss: Tensor? = nil             // last stage
    }

    /// Stage `stage` of `model` split by `partition`.
    ///
    /// - Parameters:
    ///   - lossFunction: the per-token loss of the batch (`.mean` or `.sum`); see ``CausalLMPipeline``.
    ///   - lossConfig: builds the last stage's `PipelineCausalLMLoss`.
    /// - Throws: ``PipelineError`` when the partition does not fit the model, `stage` is out of
    ///   range, or the model ties its head to the embedding over several stages.
    public init(model: CausalLM, partition: PipelinePartition, stage: Int, lossFunction: any TokenLoss,
                lossConfig: MTPLossConfig = MTPLossConfig()) throws {
        _ = try PipelinePartition(layerCounts: partition.layerCounts, layers: model.layers.count)
        guard (0..<partition.stages).contains(stage) else {
            throw PipelineError("stage \(stage) is outside 0..<\(partition.stages)")
        }
        // Stage 0's embedding would be the last stage's head: two threads adding into one gradient.
        guard !(model.config.tieWordEmbeddings && partition.stages > 1) else {
            throw PipelineError("tie_word_embeddings: a tied LM head cannot be split over \(partition.stages) pipeline stages")
        }
        self.stage = stage
        stageCount = partition.stages
        layers = partition.layers(ofStage: stage)
        self.model = model
        self.lossFunction = lossFunction
        self.lossConfig = lossConfig
    }

    private var isFirst: Bool { stage == 0 }
    private var isLast: Bool { stage == stageCount - 1 }
    private var depths: Int { model.mtp?.config.numLayers ?? 0 }

    /// Runs this stage's actions of `schedule` over `microbatches`, adding the gradients of
    /// `gradientScale ·` (the batch loss) into this stage's parameters.
    ///
    /// - Parameters:
    ///   - counts: the batch's target counts (the sum of every microbatch's).
    ///   - transport: this stage's endpoint.
    /// - Returns: the timing and, on the last stage, the loss values.
    /// - Throws: whatever the model, the loss or the transport throws; nothing is sent after
    ///   an error (the caller aborts the transport).
    public func run(schedule: PipelineSchedule, microbatches: [Batch], counts: TargetCounts,
                    transport: any StageTransport, gradientScale: Float = 1) throws -> StageReport {
        guard schedule.stages == stageCount, transport.stage == stage, transport.stageCount == stageCount else {
            throw PipelineError("stage \(stage) of \(stageCount): schedule has \(schedule.stages) stages, "
                + "transport is stage \(transport.stage) of \(transport.stageCount)")
        }
        guard microbatches.count == schedule.microbatches else {
            throw PipelineError("the schedule has \(schedule.microbatches) microbatches, got \(microbatches.count)")
        }
        saved = [:]
        defer { saved = [:] }
        let clock = StageClock()
        var total = LossValues(loss: 0, main: 0, depths: [])
        for action in schedule.actions[stage] {
            switch action {
            case .forward(let m):
                if let values = try forward(m, microbatches[m], counts: counts, transport: transport, clock: clock) {
                    total.add(values)
                }
            case .backward(let m):
                try backward(m, transport: transport, clock: clock, gradientScale: gradientScale)
            }
        }
        return StageReport(stage: stage, busySeconds: clock.elapsed - clock.transport, transportSeconds: clock.transport,
                           loss: isLast ? total.loss : nil, mainLoss: isLast ? total.main : nil,
                           depthLosses: isLast ? total.depths : nil)
    }

    /// The values of a microbatch's loss and its parts, or their sums over microbatches.
    private struct LossValues {
        var loss: Float
        var main: Float
        var depths: [Float]

        mutating func add(_ other: LossValues) {
            loss += other.loss
            main += other.main
            if depths.isEmpty { depths = other.depths.map { _ in 0 } }
            for (k, v) in other.depths.enumerated() { depths[k] += v }
        }
    }

    // MARK: Forward

    /// Runs F(m); on the last stage returns the microbatch's loss values.
    private func forward(_ m: Int, _ batch: Batch, counts: TargetCounts, transport: any StageTransport,
                         clock: StageClock) throws -> LossValues? {
        var state = Saved()
        var x: Tensor
        var embeddings: [Tensor] = []
        var positions = batch.positions, seqIdx = batch.seqIdx
        if isFirst {
            x = try model.embedTokens(batch.inputIds)
            var ids = batch.inputIds
            for _ in 0..<depths {
                ids = try rollTensor(ids, shifts: -1, dim: -1)
                embeddings.append(try model.embedTokens(ids))
            }
        } else {
            let message = try clock.timingTransport { try transport.receive(.activation, microbatch: m) }
            func leaf(_ name: String) throws -> Tensor {
                let t = try message.tensor(name).requiringGrad()
                state.leaves[name] = t
                return t
            }
            x = try leaf(MessageName.hidden)
            embeddings = try (0..<depths).map { try leaf(MessageName.mtpEmbedding($0)) }
            positions = try message.tensor(MessageName.positions)
            seqIdx = try message.tensor(MessageName.seqIdx)
        }
        for i in layers {
            x = try model.layers[i](x, positions: positions, seqIdx: seqIdx)
        }
        var values: LossValues? = nil
        if isLast {
            let (loss, parts) = try lastStageLoss(x, embeddings: embeddings, positions: positions, seqIdx: seqIdx,
                                                  batch: batch, counts: counts)
            state.loss = loss
            values = LossValues(loss: loss.floats[0], main: parts.main, depths: parts.perDepth)
        } else {
            state.sent[MessageName.hidden] = x
            for (k, e) in embeddings.enumerated() { state.sent[MessageName.mtpEmbedding(k)] = e }
            var payload = state.sent
            payload[MessageName.positions] = positions
            payload[MessageName.seqIdx] = seqIdx
            let message = StageMessage(kind: .activation, microbatch: m, tensors: payload)
            try clock.timingTransport { try transport.send(message) }
        }
        saved[m] = state
        return values
    }

    /// The last stage's head: final norm, MTP module on the received embeddings, the SPEC §4
    /// tuple, and one `PipelineCausalLMLoss` call.
    private func lastStageLoss(_ x: Tensor, embeddings: [Tensor], positions: Tensor, seqIdx: Tensor, batch: Batch,
                               counts: TargetCounts) throws -> (Tensor, (main: Float, perDepth: [Float])) {
        let hidden = try model.norm(x)
        var mtpOutputs: [Tensor] = []
        if let mtp = model.mtp {
            mtpOutputs = try mtp(hidden: hidden, input: .embeddings(embeddings), positions: positions, seqIdx: seqIdx)
        }
        let output: PipelineOutput
        let tail = seqIdx.cast(to: .int32)
        if model.emitsLogits {
            output = .tuple(first: try model.lmHead(hidden), rest: try mtpOutputs.map { try model.lmHead($0) } + [tail])
        } else {
            output = .tuple(first: hidden, rest: mtpOutputs + [tail])
        }
        let local = try TargetCounts(labels: batch.labels, seqIdx: batch.seqIdx, depths: depths,
                                     ignoreIndex: lossConfig.ignoreIndex, lossIgnoreIndex: lossFunction.ignoreIndex)
        let terms = TermSchedule(global: counts, local: local, divide: lossFunction.reduction == .mean,
                                 ignoreIndex: lossFunction.ignoreIndex)
        let lossFn = lossConfig.build(lossFn: try microbatchLoss(lossFunction, terms: terms), model: model)
        let out = try lossFn(output, labels: batch.labels)
        guard terms.calls == 1 + out.perDepth.count else {
            throw PipelineError("the microbatch loss made \(terms.calls) per-token loss calls for \(1 + out.perDepth.count) terms")
        }
        return (out.loss, (out.main, out.perDepth))
    }

    // MARK: Backward

    private func backward(_ m: Int, transport: any StageTransport, clock: StageClock, gradientScale: Float) throws {
        guard let state = saved.removeValue(forKey: m) else {
            throw PipelineError("stage \(stage): B\(m) before F\(m)")
        }
        if let loss = state.loss {
            try loss.backward(Tensor.full(loss.shape, value: Double(gradientScale)))
        } else {
            let message = try clock.timingTransport { try transport.receive(.gradient, microbatch: m) }
            for (name, t) in state.sent.sorted(by: { $0.key < $1.key }) where t.requiresGrad {
                try t.backward(message.tensor(name))
            }
        }
        guard !isFirst else { return }
        let gradients = state.leaves.mapValues { $0.grad ?? Tensor.zeros($0.shape) }
        let message = StageMessage(kind: .gradient, microbatch: m, tensors: gradients)
        try clock.timingTransport { try transport.send(message) }
    }
}

/// Wall time since creation, and the part of it spent in the transport.
final class StageClock {
    private let start = DispatchTime.now().uptimeNanoseconds
    private(set) var transport: Double = 0

    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }

    func timingTransport<R>(_ body: () throws -> R) rethrows -> R {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { transport += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 }
        return try body()
    }
}
