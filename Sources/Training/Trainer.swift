// The training loop: packed batches → CausalLM → PipelineCausalLMLoss (built by
// MTPLossConfig, the seed's path) → backward → clipped AdamW, with periodic
// held-out evaluation and bit-exact checkpoint/resume.

import Foundation
import Data
import Losses
import Model
import MTP
import NN
@_spi(Kernels) import Tensors

/// Runs training over train/held-out document sets.
public final class Trainer {
    public let options: TrainingOptions
    public let model: CausalLM
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    /// Steps completed.
    public internal(set) var step = 0
    public internal(set) var history: [StepRecord] = []
    /// The steps skipped because their loss or gradient norm was not finite (see ``NonFiniteSteps``).
    public internal(set) var skippedSteps: [Int] = []
    public private(set) var evaluations: [Evaluation] = []
    private let packer: Packer
    private let train: [[Int32]]
    private let heldOutBatches: [Batch]
    private let loss: PipelineCausalLMLoss
    private var epochBatches: (epoch: Int, batches: [Batch])?
    /// How this trainer cooperates with the other ranks of a multi-process run (no-ops by default).
    public var collectives = TrainingCollectives()

    /// A trainer of a model drawn from the seed, or of `model` (a pretrained one, say).
    ///
    /// With ``TrainingOptions/freezeTrunk`` the optimizer holds the MTP depths' parameters
    /// alone; the trunk (embedding and head included, which the depths share) keeps its weights.
    ///
    /// - Parameters:
    ///   - options: the run; `options.model` must equal `model.config` when a model is given.
    ///   - train, heldOut: the documents.
    ///   - model: the starting model; nil draws one from `options.seed`.
    /// - Throws: ``TrainingError`` for invalid options or data, a model whose configuration
    ///   differs from the options', or a frozen trunk without MTP depths.
    public init(options: TrainingOptions, train: [[Int32]], heldOut: [[Int32]], model initial: CausalLM? = nil) throws {
        try options.validate()
        guard !train.isEmpty else { throw TrainingError("no training documents") }
        guard !heldOut.isEmpty else { throw TrainingError("no held-out documents") }
        self.options = options
        if let initial, initial.config != options.model {
            throw TrainingError("the starting model (\(initial.config)) differs from the run's (\(options.model))")
        }
        model = try initial ?? CausalLM(config: options.model, seed: options.seed)
        model.emitsLogits = options.loss.readsLogits
        model.recomputesBlocks = options.recompute == true
        var trained = model.namedParameters()
        if options.freezeTrunk == true {
            guard let mtp = model.mtp else { throw TrainingError("freeze-trunk needs MTP depths to train, the model has none") }
            let heads = Set(mtp.parameters.map(ObjectIdentifier.init))
            trained = trained.filter { heads.contains(ObjectIdentifier($0.parameter)) }
        }
        optimizer = AdamW(parameters: trained, weightDecay: options.weightDecay)
        schedule = LearningRateSchedule(peak: options.learningRate, warmupSteps: options.warmupSteps, totalSteps: options.steps)
        packer = try Packer(sequenceLength: options.sequenceLength, batchSize: options.batchSize,
                            vocabularySize: options.model.vocabularySize)
        self.train = train
        // Before the held-out set is packed and evaluated: a batch larger than the data is an
        // error now, not after a full evaluation at step 0.
        let rows = try packer.rows(from: train).count
        guard rows >= options.batchSize else {
            throw TrainingError("the training documents fill \(rows) rows of \(options.sequenceLength) tokens, "
                + "fewer than one batch (--batch-size \(options.batchSize))")
        }
        heldOutBatches = try packer.batches(from: heldOut)
        loss = MTPLossConfig().build(lossFn: options.lossFunction(), model: model)
    }

    /// The batch of micro-step `micro` of step `step`: a pure function of the seed and
    /// the step, so a resumed run sees the same data.
    func batch(step: Int, micro: Int) throws -> Batch {
        let k = step * options.gradientAccumulation + micro
        if epochBatches == nil || k / epochBatches!.batches.count != epochBatches!.epoch {
            let perEpoch = try epochBatches?.batches.count ?? packer.batches(from: train, seed: options.seed, dropLast: true).count
            let epoch = k / Swift.max(perEpoch, 1)
            let batches = try packer.batches(from: train, seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9, dropLast: true)
            guard !batches.isEmpty else {
                throw TrainingError("the training documents fill fewer than one batch of \(options.batchSize) rows")
            }
            epochBatches = (epoch, batches)
        }
        let b = epochBatches!.batches
        return b[k % b.count]
    }

    /// One optimizer step (with gradient accumulation). Returns its record.
    @discardableResult
    public func trainStep() throws -> StepRecord {
        let accum = options.gradientAccumulation
        return try trainStep { b in
            let out = try model(b.inputIds, positions: b.positions, seqIdx: b.seqIdx)
            let l = try loss(out, labels: b.labels)
            try (accum == 1 ? l.loss : l.loss / Double(accum)).backward()
            return (l.main, l.perDepth)
        }
    }

    /// One optimizer step whose gradients another engine computes (a pipeline, say).
    ///
    /// `accumulate` is called once per micro-step (``TrainingOptions/gradientAccumulation``
    /// times) with that micro-step's batch, with the model in training mode. It must add the
    /// gradients of `loss(batch) / gradientAccumulation` into the model's parameters and
    /// return the batch's main loss and unscaled per-depth MTP losses. Then the step clips,
    /// updates and records exactly as ``trainStep()``.
    /// - Returns: the step's record.
    /// - Throws: whatever `accumulate` throws (the parameters keep partial gradients then).
    @discardableResult
    public func trainStep(accumulating accumulate: (Batch) throws -> (main: Float, depths: [Float])) throws -> StepRecord {
        model.isTraining = true
        var main: Float = 0
        var depths = [Float](repeating: 0, count: options.model.mtpDepths)
        let accum = options.gradientAccumulation
        for micro in 0..<accum {
            let parts = try accumulate(try batch(step: step, micro: micro))
            main += parts.main / Float(accum)
            for (k, d) in parts.depths.enumerated() { depths[k] += d / Float(accum) }
        }
        try collectives.synchronizeGradients()
        var norm = optimizer.gradientNorm()
        if let reduce = collectives.reduceGradientNormSquare {
            norm = Float(try reduce(Double(norm) * Double(norm)).squareRoot())
        }
        let lr = schedule.rate(at: step)
        let record = StepRecord(step: step + 1, mainLoss: main, depthLosses: depths, learningRate: lr, gradientNorm: norm)
        if NonFiniteSteps.isFinite(record) {
            optimizer.update(learningRate: lr, gradientScale: clippingScale(norm: norm, maxNorm: options.gradientClip))
        } else {
            dropGradients()
            skippedSteps.append(step + 1)
        }
        // A frozen trunk still receives gradients (the depths read its outputs); drop them.
        if options.freezeTrunk == true { model.zeroGrad() }
        history.append(record)
        step += 1
        return record
    }

    /// Held-out main and per-depth cross-entropy (nats per target) and top-1 accuracy; per
    /// depth also the teacher-forced agreement with the main head and the main head's CE on
    /// that depth's targets (see ``Evaluation``).
    public func evaluate() throws -> Evaluation {
        model.isTraining = false
        defer { model.isTraining = true }
        let d = options.model.mtpDepths
        var ce = [Double](repeating: 0, count: d + 1), hits = ce, counts = ce
        try collectives.synchronizeState()
        let shard = collectives.evaluationShard
        var agreements = [Double](repeating: 0, count: d), mainCE = agreements
        try withoutGrad {
            for (i, b) in heldOutBatches.enumerated() where i % shard.count == shard.index {
                let hidden = try model.trunk(b.inputIds, positions: b.positions, seqIdx: b.seqIdx)
                var heads = [hidden]
                if let mtp = model.mtp {
                    heads += try mtp(hidden: hidden, input: .tokenIDs(b.inputIds, embed: { try self.model.embedTokens($0) }),
                                     positions: b.positions, seqIdx: b.seqIdx)
                }
                var main: (rows: [Float], guess: [Int64]) = ([], [])
                for (k, h) in heads.enumerated() {
                    let labels = k == 0 ? b.labels : try mtpDepthLabels(b.labels, depth: k - 1, seqIdx: b.seqIdx)
                    let logits = try model.lmHead(h)
                    let rows = try MaskedCrossEntropy(reduction: .none)(logits: logits, labels: labels).floats
                    let guess = try logits.argmax(axis: -1).int64s
                    if k == 0 { main = (rows, guess) }
                    for (i, y) in labels.int64s.enumerated() where y >= 0 {
                        ce[k] += Double(rows[i])
                        counts[k] += 1
                        if guess[i] == y { hits[k] += 1 }
                        // Depth k − 1 at i predicts the token the main head predicts at i + k (same row:
                        // the label is valid only when that position is in the same document).
                        if k > 0 {
                            mainCE[k - 1] += Double(main.rows[i + k])
                            if guess[i] == main.guess[i + k] { agreements[k - 1] += 1 }
                        }
                    }
                }
            }
        }
        if shard.count > 1 {
            // One reduction for every sum: CE, hits, counts (D + 1 each), agreements, main CE (D each).
            let sums = try collectives.sumOverRanks(ce + hits + counts + agreements + mainCE)
            ce = Array(sums[0...d])
            hits = Array(sums[(d + 1)...(2 * d + 1)])
            counts = Array(sums[(2 * d + 2)...(3 * d + 2)])
            agreements = Array(sums[(3 * d + 3)..<(4 * d + 3)])
            mainCE = Array(sums[(4 * d + 3)...])
        }
        let mean = zip(ce, counts).map { $1 > 0 ? $0 / $1 : 0 }
        let acc = zip(hits, counts).map { $1 > 0 ? $0 / $1 : 0 }
        let perDepth = { (sums: [Double]) in zip(sums, counts.dropFirst()).map { $1 > 0 ? $0 / $1 : 0 } }
        let e = Evaluation(step: step, mainLoss: mean[0], depthLosses: Array(mean.dropFirst()),
                           mainAccuracy: acc[0], depthAccuracies: Array(acc.dropFirst()),
                           depthAgreements: perDepth(agreements), mainLossOnDepthTargets: perDepth(mainCE))
        evaluations.append(e)
        return e
    }

    // MARK: Checkpoints

    /// Writes parameters (Hugging Face names), optimizer state and the run's options,
    /// step and history to a safetensors file.
    public func saveCheckpoint(to url: URL) throws {
        var tensors = model.parameterTensors()
        // Weights that overflowed (a huge --lr, say) would replace the last good checkpoint
        // with one that loads as garbage: refuse, and keep the file that is there.
        for name in tensors.keys.sorted() {
            if let (bad, value) = tensors[name]?.firstNonFiniteFloat() {
                throw TrainingError("\(name) holds \(value) at element \(bad) after step \(step): the weights are no longer "
                    + "finite, so no checkpoint is written over \(url.path) (lower --lr or --weight-decay, or set --clip)")
            }
        }
        for (k, v) in try optimizer.stateTensors() { tensors[k] = v }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = Self.nonFiniteNumbers
        var metadata = [
            "format": CausalLM.checkpointFormat,
            "model_config": String(decoding: try encoder.encode(options.model), as: UTF8.self),
            "training_options": String(decoding: try encoder.encode(options), as: UTF8.self),
            "step": String(step),
            "history": String(decoding: try encoder.encode(history), as: UTF8.self),
            "evaluations": String(decoding: try encoder.encode(evaluations), as: UTF8.self),
        ]
        metadata.merge(try robustnessMetadata(tensors)) { $1 }
        try CheckpointFile.write(try SafeTensors.encode(tensors, metadata: metadata), to: url)
    }

    /// Restores parameters, optimizer state, step and history from a checkpoint of the same run.
    ///
    /// - Throws: ``TrainingError`` when the checkpoint is not ours or its model differs.
    public func loadCheckpoint(from url: URL) throws {
        let ckpt = try Trainer.readCheckpoint(url)
        let tensors = ckpt.tensors
        guard ckpt.options.model == options.model else {
            throw TrainingError("checkpoint \(url.path) holds a different model (\(ckpt.options.model)) than this run (\(options.model))")
        }
        try model.loadParameters(tensors)
        try optimizer.load(stateTensors: tensors, step: ckpt.step - ckpt.skippedSteps.count)
        step = ckpt.step
        skippedSteps = ckpt.skippedSteps
        history = ckpt.history
        evaluations = ckpt.evaluations
    }

    // A diverged run (NaN gradient norm or loss) must still checkpoint, and JSON has no
    // NaN or infinities: the history writes them as these strings (finite values unchanged).
    private static let nonFiniteNumbers = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    private static let nonFiniteNumbersDecoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")

    /// The run recorded in checkpoint metadata.
    public static func checkpointMetadata(_ metadata: [String: String], source: String) throws
        -> (options: TrainingOptions, step: Int, history: [StepRecord], evaluations: [Evaluation]) {
        guard metadata["format"] == CausalLM.checkpointFormat, let o = metadata["training_options"],
              let s = metadata["step"] else {
            throw TrainingError("\(source) is not an mtp checkpoint (missing format/training_options/step metadata)")
        }
        guard let step = Int(s), step >= 0 else {
            throw TrainingError("\(source): step metadata '\(s.prefix(40))' is not a step count (an integer >= 0)")
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = Self.nonFiniteNumbersDecoding
        do {
            let options = try decoder.decode(TrainingOptions.self, from: Data(o.utf8))
            let history = try decoder.decode([StepRecord].self, from: Data((metadata["history"] ?? "[]").utf8))
            let evals = try decoder.decode([Evaluation].self, from: Data((metadata["evaluations"] ?? "[]").utf8))
            guard history.count == step else {
                throw TrainingError("\(source): step metadata says \(step) steps, its history records \(history.count)")
            }
            return (options, step, history, evals)
        } catch let e as TrainingError {
            throw e
        } catch {
            throw TrainingError("\(source): unreadable checkpoint metadata (\(error))")
        }
    }
}

extension Trainer {
    /// The model stored in a checkpoint written by ``saveCheckpoint(to:)``, and the options
    /// of the run that wrote it.
    ///
    /// - Throws: ``Model/ModelError`` or ``TrainingError`` when the file is not an mtp
    ///   checkpoint; a SafeTensors or ``Tensors/TensorError`` when it is unreadable or its
    ///   tensors do not fit the model.
    public static func loadModel(checkpoint url: URL) throws -> (model: CausalLM, options: TrainingOptions) {
        let (model, metadata) = try CausalLM.load(checkpoint: url)
        return (model, try checkpointMetadata(metadata, source: url.path).options)
    }
}
