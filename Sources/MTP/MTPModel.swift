// What the MTP loss needs from a model, and the model-side MTP configuration.

import Losses
import Tensors

/// DeepSeek-V3 MTP configuration of a model (SPEC §5).
public struct MTPConfig: Sendable, Equatable, Codable {
    /// Number of MTP depths D.
    public var numLayers: Int
    /// The sublayer pattern of one depth (e.g. "*" for one decoder block); empty disables MTP.
    public var layerPattern: String
    /// Coefficient of the summed per-depth CE.
    public var lossScalingFactor: Float
    /// One physical depth reused for every depth.
    public var useRepeatedLayer: Bool

    public init(numLayers: Int = 0, layerPattern: String = "", lossScalingFactor: Float = 0.1, useRepeatedLayer: Bool = false) {
        self.numLayers = numLayers
        self.layerPattern = layerPattern
        self.lossScalingFactor = lossScalingFactor
        self.useRepeatedLayer = useRepeatedLayer
    }

    /// MTP is on when there is at least one depth and a non-empty pattern.
    public var isEnabled: Bool { numLayers > 0 && !layerPattern.isEmpty }
    /// Depths with their own weights.
    public var numPhysicalDepths: Int { useRepeatedLayer ? 1 : numLayers }
    /// Sublayers per depth.
    public var patternLength: Int { layerPattern.count }
}

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
