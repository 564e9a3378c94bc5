// Everything that defines a run: the model, the optimiser and schedule settings,
// the loss kind, evaluation cadence and seed (stored in checkpoints).

import Data
import Losses
import Model

/// Everything that defines a run (stored in checkpoints, so `--resume` continues it).
public struct TrainingOptions: Codable, Equatable, Sendable {
    public var model: ModelConfig
    public var steps = 400
    public var batchSize = 16
    public var sequenceLength = 64
    public var learningRate: Float = 3e-3
    public var warmupSteps = 30
    public var weightDecay: Float = 0.05
    public var gradientClip: Float = 1.0
    public var gradientAccumulation = 1
    /// The per-token loss (stored by its raw value, e.g. `"fused"`).
    public var loss = LossKind.fused
    public var evalEvery = 50
    public var heldOutFraction = 0.1
    public var seed: UInt64 = 0
    /// Where the documents came from; nil when unknown (checkpoints from before it was recorded).
    public var dataSource: TrainingDataSource?
    /// The Hugging Face directory the weights started from (`mtp train --init-from`); nil
    /// when they were drawn from the seed.
    public var initFrom: String?
    /// Whether only the MTP depths train (`--freeze-trunk`); nil means false.
    public var freezeTrunk: Bool?
    /// The `tokenizer.json` the documents were encoded with; nil for byte-level text, token
    /// files and the built-in corpus.
    public var tokenizer: String?
    /// A ``Tensors/ContentChecksum`` of ``tokenizer``'s bytes when the run started, checked
    /// whenever the file is read again; nil for runs from before it was recorded (unchecked).
    public var tokenizerChecksum: String?
    /// Size, content checksum, document count, separator and tokenizer of the data; nil when unknown.
    public var dataRecord: TrainingDataRecord?
    /// Whether every decoder block is recomputed in the backward pass instead of keeping its
    /// activations (`--recompute`, ``Model/CausalLM/recomputesBlocks``); nil means false. The
    /// gradients and losses are the same bits either way, so a resumed run may change it.
    public var recompute: Bool?

    public init(model: ModelConfig) { self.model = model }

    /// Throws naming the first option out of range.
    public func validate() throws {
        try model.validate()
        for (name, v) in [("steps", steps), ("batch size", batchSize), ("sequence length", sequenceLength),
                          ("gradient accumulation", gradientAccumulation), ("eval interval", evalEvery)] where v <= 0 {
            throw TrainingError("\(name) must be positive, got \(v)")
        }
        guard warmupSteps >= 0 else { throw TrainingError("warm-up steps must be >= 0, got \(warmupSteps)") }
        guard learningRate > 0, learningRate.isFinite else { throw TrainingError("learning rate must be positive, got \(learningRate)") }
        guard heldOutFraction > 0, heldOutFraction < 1 else {
            throw TrainingError("held-out fraction must be in (0, 1), got \(heldOutFraction)")
        }
        try validateLimits()
    }

    /// The per-token loss the run trains with (mean over each loss's targets).
    public func lossFunction() -> any TokenLoss {
        loss.makeLoss(reduction: .mean)
    }
}
