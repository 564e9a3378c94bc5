// PipelineCausalLMLoss (SPEC §4): the last pipeline stage's loss, which adds the MTP
// term when the model emits per-depth outputs.

import Losses
import Tensors

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
