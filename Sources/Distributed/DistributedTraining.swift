// Training across the ranks of a (data, pipeline) grid, on the Trainer and the
// pipeline stage of the single-process code.
//
// One optimizer step on rank (d, p), batch B rows, D replicas, P stages, M microbatches:
//   1. every rank draws the same global batch (a pure function of seed and step) and
//      counts its targets per loss term (N, N_k): the normalisation of the whole batch;
//   2. replica d takes rows [d·B/D, (d+1)·B/D) and runs stage p of the schedule over
//      them cut into M microbatches, each loss term divided by the *global* count, so the
//      D replicas' losses add up to the batch loss exactly (MTP/Pipeline normalisation);
//      activations and their gradients cross ranks through MPIStageTransport;
//   3. the gradients of the parameters this stage owns are summed over the D replicas
//      (bucketed all-reduce, fewer and larger messages) — the batch gradient;
//   4. Σ g² of each stage's parameters is summed over the P stages for clipping, and every
//      rank applies the same AdamW step (a rank's copies of other stages' parameters
//      drift and are never read: each stage reads only its own).
// Before an evaluation or a checkpoint, each stage broadcasts its parameters and AdamW
// moments to its replica's other stages, so every rank holds the whole current state;
// held-out batches are then shared over all N ranks and their sums reduced; rank 0 writes.
// With T > 1 (VocabularyParallelParameters) the T ranks of a tensor group run the same
// share of the batch with the embedding and head cut by vocabulary rows; the loss merges
// over the group, the replicated rest of the model is updated identically on each, the
// tables' Σ g² is summed over the group, and the tables are gathered whole only for an
// evaluation or a checkpoint (and cut again at the next step).

import Data
import Foundation
import Losses
import Model
import MTP
import NN
import Pipeline
import Tensors
import Training

/// The multi-process driver of a ``Training/Trainer``: install it, then run a
/// ``Training/TrainingRun`` with ``accumulate(_:)`` as its `accumulate` closure.
public final class DistributedTraining: @unchecked Sendable {
    // Used by the one thread that runs the training loop.
    /// This rank's communicators.
    public let grid: ProcessGrid
    /// The trainer every rank runs (same options, same seed).
    public let trainer: Trainer
    /// The pipeline schedule (P stages, M microbatches per replica's share).
    public let schedule: PipelineSchedule
    /// The blocks of each stage.
    public let partition: PipelinePartition
    private let stageRunner: CausalLMStage
    private let owned: [(name: String, parameter: Parameter)]
    private let transport: any StageTransport
    private let lossFunction: any TokenLoss
    /// The embedding and head split over the tensor group (nil when T = 1).
    public let vocabularyParallel: VocabularyParallelParameters?
    /// The context group (counting its bytes) and the summed per-token loss of a
    /// context-parallel step (nil when C = 1).
    private let contextParallel: (group: CommunicatorGroup, loss: any TokenLoss)?
    /// Elements per gradient all-reduce message (4 MiB of Float32).
    public var bucketElements = 1 << 20
    /// What this rank handed to the engine, summed over the steps so far.
    public private(set) var traffic = Traffic()
    /// The pipeline's timing summed over the steps so far (stage busy seconds gathered from every stage).
    public private(set) var timing: PipelineTiming?

    /// Bytes this rank gave the communication engine.
    public struct Traffic: Sendable, Equatable {
        /// Gradient bytes entering all-reduces over the data group.
        public var allReduceBytes = 0
        /// Activation and activation-gradient bytes sent to neighbouring stages.
        public var pipelineBytes = 0
        /// Bytes handed to the tensor group's collectives (loss merge, hidden-state gradient, embedding).
        public var tensorBytes = 0
        /// Bytes handed to the context group's collectives (key/value all-gathers and reduce-scatters).
        public var contextBytes = 0
        /// Optimizer steps counted.
        public var steps = 0
    }

    /// A driver for `trainer` on this rank of `grid`.
    ///
    /// - Parameters:
    ///   - microbatches: M per replica share (must divide B / D).
    ///   - scheduleKind: GPipe or 1F1B.
    ///   - partition: the blocks per stage; nil balances them.
    /// - Throws: ``DistributedError`` when the batch does not split over the replicas and
    ///   microbatches; ``Pipeline/PipelineError`` for a partition that does not fit.
    public init(trainer: Trainer, grid: ProcessGrid, microbatches: Int, scheduleKind: PipelineScheduleKind = .oneForwardOneBackward,
                partition: PipelinePartition? = nil) throws {
        let options = trainer.options, layout = grid.layout
        guard options.batchSize % layout.data == 0 else {
            throw DistributedError("--batch-size \(options.batchSize) does not split over --data-parallel \(layout.data) replicas")
        }
        let share = options.batchSize / layout.data
        guard microbatches >= 1, share % microbatches == 0 else {
            throw DistributedError("--microbatches \(microbatches) must be positive and divide the \(share) rows of each replica "
                + "(--batch-size \(options.batchSize) / --data-parallel \(layout.data))")
        }
        self.trainer = trainer
        self.grid = grid
        schedule = try PipelineSchedule(kind: scheduleKind, stages: layout.pipeline, microbatches: microbatches)
        let model = trainer.model
        self.partition = try partition ?? .balanced(layers: model.layers.count, stages: layout.pipeline,
                                                    mtpDepths: options.model.mtpDepths)
        if layout.tensor > 1 {
            guard !options.loss.readsLogits else {
                throw DistributedError("--tensor-parallel \(layout.tensor) needs --loss fused (the vocabulary-parallel head feeds the fused loss; got \(options.loss.rawValue))")
            }
            let group = CommunicatorGroup(grid.tensorGroup)
            let parallel = try VocabularyParallelParameters(model: trainer.model, optimizer: trainer.optimizer, group: group)
            vocabularyParallel = parallel
            lossFunction = try options.loss.makeVocabularyParallelLoss(reduction: .mean, vocabularySize: options.model.vocabularySize,
                                                                       group: group)
        } else {
            vocabularyParallel = nil
            lossFunction = options.lossFunction()
        }
        if layout.context > 1 {
            guard !options.loss.readsLogits, options.sequenceLength % (2 * layout.context) == 0 else {
                throw DistributedError("--context-parallel \(layout.context) needs --loss fused and a --seq-len divisible by 2C = \(2 * layout.context) (got \(options.loss.rawValue), \(options.sequenceLength))")
            }
            let group = CommunicatorGroup(grid.contextGroup)
            let model = trainer.model
            for block in model.layers + (model.mtp?.depths.flatMap(\.blocks) ?? []) { block.selfAttn.contextGroup = group }
            let summed = try vocabularyParallel.map {
                try options.loss.makeVocabularyParallelLoss(reduction: .sum, vocabularySize: options.model.vocabularySize, group: $0.group)
            } ?? options.loss.makeLoss(reduction: .sum)
            contextParallel = (group, summed)
        } else {
            contextParallel = nil
        }
        stageRunner = try CausalLMStage(model: model, partition: self.partition, stage: grid.stage, lossFunction: lossFunction)
        owned = stageRunner.ownedParameters
        transport = layout.pipeline > 1 ? MPIStageTransport(communicator: grid.pipelineGroup)
                                        : InProcessTransport.connecting(stages: 1)[0]
    }

    /// Sets the trainer's collectives to this grid's (call once, before training).
    public func install() {
        var c = TrainingCollectives()
        c.isWriter = grid.world.rank == 0
        c.synchronizeGradients = { [unowned self] in try self.sumGradientsOverReplicas() }
        if grid.layout.pipeline > 1 || vocabularyParallel != nil {
            c.reduceGradientNormSquare = { [unowned self] local in
                var s = local
                if let vp = self.vocabularyParallel {
                    // The replicated parameters count once; the tables' rows are summed over the group.
                    let mine = vp.shardGradientSquare()
                    s += try self.grid.tensorGroup.allReduceSum([mine])[0] - mine
                }
                return self.grid.layout.pipeline > 1 ? try self.grid.pipelineGroup.allReduceSum([s])[0] : s
            }
            c.synchronizeState = { [unowned self] in
                if self.grid.layout.pipeline > 1 { try self.shareStagesState() }
                try self.vocabularyParallel?.gather()
            }
        }
        c.evaluationShard = (grid.world.rank, grid.world.size)
        c.sumOverRanks = { [unowned self] in try self.grid.world.allReduceSum($0) }
        c.anyRank = { [unowned self] flag in
            var v: [Float] = [flag ? 1 : 0]
            try self.grid.world.allReduce(&v, .max)
            return v[0] > 0
        }
        trainer.collectives = c
    }

    /// One micro-step on this rank (``Training/TrainingRun/Accumulate``): this replica's share
    /// of `batch` through this stage, gradients scaled by 1 / accumulation steps. Returns the
    /// whole batch's main and per-depth losses, the same on every rank.
    public func accumulate(_ batch: Batch) throws -> (main: Float, depths: [Float]) {
        let layout = grid.layout, depths = trainer.options.model.mtpDepths
        try vocabularyParallel?.cut()
        if let contextParallel {
            var values = try contextParallelLosses(batch, lossFunction: contextParallel.loss)
            try grid.replicaGroup.allReduce(&values, .sum)
            if let vp = vocabularyParallel { traffic.tensorBytes = vp.group.bytes }
            traffic.contextBytes = contextParallel.group.bytes
            return (values[0], Array(values.dropFirst()))
        }
        let share = batch.rows / layout.data
        let mine = try batch.sliced(rows: (grid.replica * share)..<((grid.replica + 1) * share))
        let counts = try TargetCounts(labels: batch.labels, seqIdx: batch.seqIdx, depths: depths,
                                      lossIgnoreIndex: lossFunction.ignoreIndex)
        let start = DispatchTime.now().uptimeNanoseconds
        let report = try stageRunner.run(schedule: schedule, microbatches: try mine.microbatches(schedule.microbatches),
                                         counts: counts, transport: transport,
                                         gradientScale: 1 / Float(trainer.options.gradientAccumulation))
        if let mpi = transport as? MPIStageTransport {
            try mpi.flush()
            traffic.pipelineBytes = mpi.bytesSent
        }
        if let vp = vocabularyParallel { traffic.tensorBytes = vp.group.bytes }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        // The last stage of each replica holds its share's losses: sum over replicas, then
        // every stage of a replica takes them from its last stage.
        var values = [report.mainLoss ?? 0] + (report.depthLosses ?? []) + [Float](repeating: 0, count: depths)
        values = Array(values.prefix(1 + depths))
        try grid.dataGroup.allReduce(&values, .sum)
        try grid.pipelineGroup.broadcast(&values, root: layout.pipeline - 1)
        var busy = [Float(report.busySeconds)], longest = [Float(wall)]
        let stagesBusy = try grid.pipelineGroup.allGather(busy)
        try grid.pipelineGroup.allReduce(&longest, .max)
        busy = stagesBusy
        let step = PipelineTiming(wallSeconds: Double(longest[0]), busySeconds: busy.map { Double($0) },
                                  microbatches: schedule.microbatches)
        timing = timing.map { $0 + step } ?? step
        return (values[0], Array(values.dropFirst()))
    }

    /// Replaces each owned gradient by its sum over the replicas, in buckets of about
    /// ``bucketElements`` (whole parameters; one larger than a bucket travels alone).
    private func sumGradientsOverReplicas() throws {
        traffic.steps += 1
        guard grid.layout.data * grid.layout.context > 1 else { return }
        var bucket: [Float] = []
        var members: [Parameter] = []
        func flush() throws {
            guard !members.isEmpty else { return }
            try grid.replicaGroup.allReduce(&bucket, .sum)
            traffic.allReduceBytes += 4 * bucket.count
            var offset = 0
            for p in members {
                let n = p.value.count
                try p.setGradient(try Tensor(Array(bucket[offset..<(offset + n)]), shape: p.shape))
                offset += n
            }
            bucket.removeAll(keepingCapacity: true)
            members.removeAll(keepingCapacity: true)
        }
        for (_, p) in owned {
            if let g = p.grad { bucket += g.floats } else { bucket += [Float](repeating: 0, count: p.value.count) }
            members.append(p)
            if bucket.count >= bucketElements { try flush() }
        }
        try flush()
    }

    /// Every stage broadcasts its parameters and AdamW moments to the other stages of its
    /// replica; afterwards each rank holds the whole current model and optimizer state.
    private func shareStagesState() throws {
        let optimizer = trainer.optimizer
        var state = try optimizer.stateTensors()
        for (name, p) in trainer.model.namedParameters() { state[name] = p.value }
        let mine = try SafeTensors.encode(stateTensors(of: owned, from: state))
        var merged: [String: Tensor] = [:]
        for s in 0..<grid.layout.pipeline {
            var bytes = s == grid.stage ? [UInt8](mine) : []
            try grid.pipelineGroup.broadcast(bytes: &bytes, root: s)
            for (k, v) in try SafeTensors.read(from: Data(bytes)).tensors { merged[k] = v }
        }
        try trainer.model.loadParameters(merged)
        try optimizer.load(stateTensors: merged, step: optimizer.step)
    }

    /// The named parameters' values and their two moment tensors.
    private func stateTensors(of parameters: [(name: String, parameter: Parameter)], from all: [String: Tensor]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, _) in parameters {
            for key in [name, "optimizer.exp_avg.\(name)", "optimizer.exp_avg_sq.\(name)"] { out[key] = all[key] }
        }
        return out
    }
}
