// The sizes and constants of a CausalLM, stored as JSON in checkpoint metadata.
//
// Every constant the maths uses is recorded here (norm epsilon, RoPE base, key/value
// heads, tying), so a checkpoint or an export says exactly which function it holds.
// Checkpoints written before these fields existed decode with the values that were
// then hard-wired (ε 1e-6, base 10 000, kv heads = heads, untied head, 2048 positions);
// encoding writes a constant only when it differs from that value, so a model of the
// former kind keeps its JSON byte for byte (and a run's checkpoint metadata with it).

import MTP

/// The sizes and constants of a ``CausalLM``; stored as JSON in checkpoint metadata.
public struct ModelConfig: Codable, Equatable, Sendable {
    /// V, the number of token ids.
    public var vocabularySize: Int
    /// H, the width of the residual stream.
    public var hiddenSize: Int
    /// L, the number of main decoder blocks.
    public var layers: Int
    /// n, the number of query heads.
    public var heads: Int
    /// The SwiGLU inner size.
    public var intermediateSize: Int
    /// MTP depths D (0 disables MTP).
    public var mtpDepths: Int
    /// The MTP loss weight σ (the auxiliary term is σ/D · Σ_k loss_k).
    public var mtpLossScalingFactor: Float
    /// The number of key/value heads (grouped-query attention when below ``heads``).
    public var keyValueHeads: Int
    /// The ε every RMSNorm adds to the mean square.
    public var rmsNormEpsilon: Float
    /// The rotary frequency base θ.
    public var ropeTheta: Double
    /// Whether the LM head is the embedding table (one parameter).
    public var tieWordEmbeddings: Bool
    /// The longest context the model is declared for (recorded for exports; RoPE itself has no limit).
    public var maxPositionEmbeddings: Int

    /// A configuration; the defaults are `mtp train`'s model.
    ///
    /// - Parameter keyValueHeads: nil means one key/value head per query head.
    public init(vocabularySize: Int, hiddenSize: Int = 96, layers: Int = 8, heads: Int = 4, intermediateSize: Int = 256,
                mtpDepths: Int = 2, mtpLossScalingFactor: Float = 0.3, keyValueHeads: Int? = nil,
                rmsNormEpsilon: Float = 1e-6, ropeTheta: Double = 10_000, tieWordEmbeddings: Bool = false,
                maxPositionEmbeddings: Int = 2048) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.mtpDepths = mtpDepths
        self.mtpLossScalingFactor = mtpLossScalingFactor
        self.keyValueHeads = keyValueHeads ?? heads
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.maxPositionEmbeddings = maxPositionEmbeddings
    }

    private enum CodingKeys: String, CodingKey {
        case vocabularySize, hiddenSize, layers, heads, intermediateSize, mtpDepths, mtpLossScalingFactor
        case keyValueHeads, rmsNormEpsilon, ropeTheta, tieWordEmbeddings, maxPositionEmbeddings
    }

    /// Decodes a configuration; the constants added after the first checkpoints take their
    /// former fixed values when absent.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let heads = try c.decode(Int.self, forKey: .heads)
        self.init(vocabularySize: try c.decode(Int.self, forKey: .vocabularySize),
                  hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
                  layers: try c.decode(Int.self, forKey: .layers),
                  heads: heads,
                  intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
                  mtpDepths: try c.decode(Int.self, forKey: .mtpDepths),
                  mtpLossScalingFactor: try c.decode(Float.self, forKey: .mtpLossScalingFactor),
                  keyValueHeads: try c.decodeIfPresent(Int.self, forKey: .keyValueHeads),
                  rmsNormEpsilon: try c.decodeIfPresent(Float.self, forKey: .rmsNormEpsilon) ?? 1e-6,
                  ropeTheta: try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10_000,
                  tieWordEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false,
                  maxPositionEmbeddings: try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048)
    }

    /// Encodes the sizes, and each later constant only when it differs from its former
    /// fixed value (see the file header).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabularySize, forKey: .vocabularySize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(layers, forKey: .layers)
        try c.encode(heads, forKey: .heads)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(mtpDepths, forKey: .mtpDepths)
        try c.encode(mtpLossScalingFactor, forKey: .mtpLossScalingFactor)
        if keyValueHeads != heads { try c.encode(keyValueHeads, forKey: .keyValueHeads) }
        if rmsNormEpsilon != 1e-6 { try c.encode(rmsNormEpsilon, forKey: .rmsNormEpsilon) }
        if ropeTheta != 10_000 { try c.encode(ropeTheta, forKey: .ropeTheta) }
        if tieWordEmbeddings { try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings) }
        if maxPositionEmbeddings != 2048 { try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings) }
    }

    /// The per-head dimension d = H / n.
    public var headDimension: Int { hiddenSize / Swift.max(heads, 1) }

    /// Throws naming the first size or constant that is out of range.
    public func validate() throws {
        for (name, v) in [("vocabulary", vocabularySize), ("hidden", hiddenSize), ("layers", layers),
                          ("heads", heads), ("intermediate", intermediateSize), ("key/value heads", keyValueHeads),
                          ("max position embeddings", maxPositionEmbeddings)] where v <= 0 {
            throw ModelError("\(name) size must be positive, got \(v)")
        }
        guard hiddenSize % heads == 0 else { throw ModelError("hidden size \(hiddenSize) is not a multiple of \(heads) heads") }
        guard (hiddenSize / heads) % 2 == 0 else { throw ModelError("head dimension \(hiddenSize / heads) must be even (RoPE)") }
        guard heads % keyValueHeads == 0 else {
            throw ModelError("\(heads) heads are not a multiple of \(keyValueHeads) key/value heads")
        }
        guard mtpDepths >= 0 else { throw ModelError("MTP depths must be >= 0, got \(mtpDepths)") }
        guard rmsNormEpsilon > 0, rmsNormEpsilon.isFinite else {
            throw ModelError("RMSNorm epsilon must be positive and finite, got \(rmsNormEpsilon)")
        }
        guard ropeTheta > 0, ropeTheta.isFinite else { throw ModelError("RoPE theta must be positive and finite, got \(ropeTheta)") }
        try validateScales()
    }

    /// The model-side MTP config (nil without depths).
    public var mtpConfig: MTPConfig? {
        mtpDepths > 0 ? MTPConfig(numLayers: mtpDepths, layerPattern: "*", lossScalingFactor: mtpLossScalingFactor) : nil
    }
}
