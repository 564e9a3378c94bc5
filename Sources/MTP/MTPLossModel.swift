// What the MTP loss needs from a model, and the model-side MTP configuration.

import Losses
import Tensors

/// The model contract of the MTP loss: an LM head, an optional MTP config, the
/// training flag, and whether the MTP outputs of a pipeline tuple are logits.
public protocol MTPLossModel: LMHeadProvider {
    /// The model's MTP configuration, nil when it has none.
    var mtpConfig: MTPConfig? { get }
    /// Whether the model is in training mode (the MTP term is added only then).
    var isTraining: Bool { get }
    /// Whether per-depth outputs in a pipeline tuple are logits (else hidden states).
    var mtpOutputsAreLogits: Bool { get }
}

extension MTPLossModel {
    public var mtpConfig: MTPConfig? { nil }
    public var isTraining: Bool { true }
    public var mtpOutputsAreLogits: Bool { false }
}

/// A model reduced to what the loss reads: handy for tests, tools and case files.
public struct LossModel: MTPLossModel, @unchecked Sendable {
    public var lmHeadWeight: Tensor?
    public var mtpConfig: MTPConfig?
    public var isTraining: Bool
    public var mtpOutputsAreLogits: Bool

    public init(lmHeadWeight: Tensor? = nil, mtpConfig: MTPConfig? = nil, isTraining: Bool = true, mtpOutputsAreLogits: Bool = false) {
        self.lmHeadWeight = lmHeadWeight
        self.mtpConfig = mtpConfig
        self.isTraining = isTraining
        self.mtpOutputsAreLogits = mtpOutputsAreLogits
    }
}

/// The model's MTP loss scaling factor: `model.mtpConfig?.lossScalingFactor ?? defaultValue`.
public func mtpLossScalingFactor(of model: any MTPLossModel, default defaultValue: Float = 0.1) -> Float {
    model.mtpConfig?.lossScalingFactor ?? defaultValue
}
