// MTPLossConfig: the typed configuration of the MTP auxiliary loss (the seed's), which
// builds the pipeline-stage loss.

import Losses

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
