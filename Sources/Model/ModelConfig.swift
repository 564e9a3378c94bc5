// The sizes and constants of a CausalLM, stored as JSON in checkpoint metadata.

import MTP

/// The sizes of a ``CausalLM``; stored as JSON in checkpoint metadata.
public struct ModelConfig: Codable, Equatable, Sendable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    /// MTP depths D (0 disables MTP).
    public var mtpDepths: Int
    public var mtpLossScalingFactor: Float

    public init(vocabularySize: Int, hiddenSize: Int = 96, layers: Int = 8, heads: Int = 4, intermediateSize: Int = 256,
                mtpDepths: Int = 2, mtpLossScalingFactor: Float = 0.3) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.mtpDepths = mtpDepths
        self.mtpLossScalingFactor = mtpLossScalingFactor
    }

    /// Throws naming the first size that is out of range.
    public func validate() throws {
        for (name, v) in [("vocabulary", vocabularySize), ("hidden", hiddenSize), ("layers", layers),
                          ("heads", heads), ("intermediate", intermediateSize)] where v <= 0 {
            throw ModelError("\(name) size must be positive, got \(v)")
        }
        guard hiddenSize % heads == 0 else { throw ModelError("hidden size \(hiddenSize) is not a multiple of \(heads) heads") }
        guard (hiddenSize / heads) % 2 == 0 else { throw ModelError("head dimension \(hiddenSize / heads) must be even (RoPE)") }
        guard mtpDepths >= 0 else { throw ModelError("MTP depths must be >= 0, got \(mtpDepths)") }
        try validateScales()
    }

    /// The model-side MTP config (nil without depths).
    public var mtpConfig: MTPConfig? {
        mtpDepths > 0 ? MTPConfig(numLayers: mtpDepths, layerPattern: "*", lossScalingFactor: mtpLossScalingFactor) : nil
    }
}
