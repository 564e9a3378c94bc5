// PipelineCausalLMLoss and MTPLossConfig (SPEC §4): the last pipeline stage's
// loss, which adds the MTP term when the model emits per-depth outputs.

import Losses
import Tensors

/// A model's output as a record (the seed's `CausalLMOutput` with MTP fields).
public struct CausalLMOutput {
    /// Main-head logits `[B, S, V]`.
    public var logits: Tensor?
    /// Final hidden states `[B, S, H]` (used by a fused loss).
    public var hiddenStates: Tensor?
    /// Per-depth MTP hidden states.
    public var perDepthHidden: [Tensor]?
    /// Per-depth MTP logits.
    public var perDepthLogits: [Tensor]?
    /// The model's MTP loss coefficient for this output, if it reports one.
    public var mtpLossScalingFactor: Float?

    /// A record with the given fields (all optional).
    public init(logits: Tensor? = nil, hiddenStates: Tensor? = nil, perDepthHidden: [Tensor]? = nil,
                perDepthLogits: [Tensor]? = nil, mtpLossScalingFactor: Float? = nil) {
        self.logits = logits
        self.hiddenStates = hiddenStates
        self.perDepthHidden = perDepthHidden
        self.perDepthLogits = perDepthLogits
        self.mtpLossScalingFactor = mtpLossScalingFactor
    }
}

/// What the last pipeline stage hands to its loss.
public enum PipelineOutput {
    /// `(first, *rest)`: `first` is logits (logits loss) or final hidden states (fused loss);
    /// `rest` are the per-depth MTP outputs, optionally followed by this microbatch's
    /// `seqIdx` as an Int32 `[B, S]` tail.
    case tuple(first: Tensor, rest: [Tensor])
    /// A model-output record.
    case record(CausalLMOutput)
    /// A bare tensor: hidden states for a fused loss, logits otherwise; no MTP.
    case tensor(Tensor)

    /// The tuple form from an array of elements (at least one).
    ///
    /// - Throws: ``MTPError`` for an empty tuple.
    public static func tuple(_ elements: [Tensor]) throws -> PipelineOutput {
        guard let first = elements.first else { throw MTPError.missingTensor("pipeline output tuple is empty") }
        return .tuple(first: first, rest: Array(elements.dropFirst()))
    }

    /// Splits a trailing per-microbatch `seqIdx` off a tuple (the seed's
    /// `_extract_seq_idx_tail`): the last element is the tail exactly when it is an
    /// Int32 rank-2 tensor — dtype alone discriminates (an Int64 one stays an MTP output).
    public func extractingSeqIdxTail() -> (seqIdx: Tensor?, output: PipelineOutput) {
        guard case .tuple(let first, var rest) = self, let last = rest.last,
              last.dtype == .int32, last.rank == 2 else { return (nil, self) }
        rest.removeLast()
        return (last, .tuple(first: first, rest: rest))
    }
}

/// One ``PipelineCausalLMLoss`` call's result: the loss and the values of its parts.
public struct PipelineLossOutput {
    /// The main loss plus, when added, the scaled MTP term; it keeps its autograd graph.
    public let loss: Tensor
    /// The value of the main loss (summed when its reduction is `.none`).
    public let main: Float
    /// The value of each depth's unscaled MTP loss; empty when no MTP term was added
    /// (no MTP outputs, or the model is not training).
    public let perDepth: [Float]
}

/// The pipeline-schedule loss that adds the MTP auxiliary CE on the last stage
/// (the seed's `PipelineCausalLMLoss`). Call it once per microbatch.
public final class PipelineCausalLMLoss {
    /// The per-token loss of the main path and every depth.
    public let lossFn: any TokenLoss
    /// The model (LM head, MTP config, training flag).
    public let model: any MTPLossModel
    /// Overrides the model's MTP scaling factor when non-nil.
    public let scalingFactor: Float?
    /// The label written where an MTP depth has no target.
    public let ignoreIndex: Int
    /// Legacy packed-stream fallback: used to build the sequence index when the output
    /// carries no `seqIdx` tail.
    public var cuSeqlens: Tensor?

    /// A loss for `model` with the per-token loss `lossFn`.
    ///
    /// - Parameters:
    ///   - lossFn: the per-token loss of the main path and every depth.
    ///   - model: the LM head, MTP config and training flag.
    ///   - scalingFactor: overrides the model's MTP coefficient when non-nil.
    ///   - ignoreIndex: the label written where a depth has no target.
    public init(lossFn: any TokenLoss, model: any MTPLossModel, scalingFactor: Float? = nil, ignoreIndex: Int = -100) {
        self.lossFn = lossFn
        self.model = model
        self.scalingFactor = scalingFactor
        self.ignoreIndex = ignoreIndex
    }

    /// The loss of one microbatch: the main loss, plus the MTP term when MTP outputs
    /// exist and the model is training.
    ///
    /// - Parameters:
    ///   - output: the last stage's output.
    ///   - labels: `[B, S]` (or `[T]`).
    /// - Returns: the loss to differentiate and the values of its parts, for logging.
    /// - Throws: ``MTPError``/``LossError`` for invalid outputs or labels.
    public func callAsFunction(_ output: PipelineOutput, labels: Tensor) throws -> PipelineLossOutput {
        let (tail, stripped) = output.extractingSeqIdxTail()
        let fused = lossFn is any FusedLinearLoss
        var main: Tensor
        var hidden: [Tensor]? = nil, logits: [Tensor]? = nil
        var modelScale = mtpLossScalingFactor(of: model)
        switch stripped {
        case .tuple(let first, let rest):
            main = first
            if !rest.isEmpty {
                if model.mtpOutputsAreLogits { logits = rest } else { hidden = rest }
            }
        case .record(let record):
            guard let m = fused ? record.hiddenStates : record.logits else {
                throw MTPError.missingTensor("model output has no \(fused ? "hidden_states (needed by FusedLinearCrossEntropy)" : "logits")")
            }
            main = m
            hidden = record.perDepthHidden
            logits = record.perDepthLogits
            modelScale = record.mtpLossScalingFactor ?? modelScale
        case .tensor(let t):
            main = t
        }

        // The head weight is fetched once and shared by the main loss and every depth.
        let weight = fused ? FusedLinearCrossEntropy.sharingWeightGradient(try model.requireLMHeadWeight()) : nil
        var loss = try calculateLoss(lossFn, logits: fused ? nil : main, hiddenStates: fused ? main : nil,
                                     labels: labels, model: model, lmWeight: weight)
        let mainValue = loss.sum().floats[0]
        var perDepthValues: [Float] = []
        if (hidden != nil || logits != nil) && model.isTraining {
            let mtp = try calculateMTPLossPerDepth(lossFn, perDepthHidden: hidden, perDepthLogits: logits, labels: labels,
                                           model: model, scalingFactor: scalingFactor ?? modelScale,
                                           ignoreIndex: ignoreIndex, cuSeqlens: cuSeqlens, seqIdx: tail, lmWeight: weight)
            perDepthValues = mtp.perDepthLosses.map { $0.sum().floats[0] }
            loss = try loss + mtp.loss
        }
        return PipelineLossOutput(loss: loss, main: mainValue, perDepth: perDepthValues)
    }
}

/// Typed configuration of the MTP auxiliary loss (the seed's `MTPLossConfig`).
/// `scalingFactor == nil` keeps the model's value.
public struct MTPLossConfig: Sendable, Equatable {
    /// The MTP coefficient; nil keeps the model's.
    public var scalingFactor: Float?
    /// The label written where an MTP depth has no target.
    public var ignoreIndex: Int

    /// A config with the seed's defaults (keep the model's factor, ignore index −100).
    public init(scalingFactor: Float? = nil, ignoreIndex: Int = -100) {
        self.scalingFactor = scalingFactor
        self.ignoreIndex = ignoreIndex
    }

    /// The pipeline-schedule, MTP-aware loss for `lossFn` and `model`.
    ///
    /// - Returns: a ``PipelineCausalLMLoss`` with this config's factor and ignore index.
    public func build(lossFn: any TokenLoss, model: any MTPLossModel) -> PipelineCausalLMLoss {
        PipelineCausalLMLoss(lossFn: lossFn, model: model, scalingFactor: scalingFactor, ignoreIndex: ignoreIndex)
    }
}
