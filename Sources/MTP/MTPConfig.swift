// The model-side MTP configuration (SPEC §5).

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
