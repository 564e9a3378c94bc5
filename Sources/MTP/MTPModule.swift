// The model side of MTP (SPEC §5): D sequential depths, each fusing the previous
// depth's hidden state with the embedding of the next token.
//
// Per depth k (0-based), at position t:
//   ids_k    = ids rolled left k+1 times (zero-filled), so ids_k[t] = token t+k+1
//   pos_k    = positions rolled likewise
//   x        = eh_proj(concat(enorm(embed(ids_k)), hnorm(h_{k-1})))     [B, S, H]
//   h_k      = blocks_k(x, pos_k, seqIdx)            (h_{-1}: the main final-norm output)
//   output_k = final_layernorm(h_k)                  (fed to the shared LM head)
// This is the training path over whole sequences; speculative decoding runs the same
// depths row by row on the blocks' frozen inference path (Generation module).

import NN
import Tensors

/// One MTP depth's fusion and blocks (the first sublayer owns enorm/hnorm/eh_proj,
/// the last owns final_layernorm).
public final class MTPDepth: Layer {
    /// RMSNorm of the token embedding.
    public let enorm: RMSNorm
    /// RMSNorm of the previous depth's hidden state.
    public let hnorm: RMSNorm
    /// Projection `[2H] → [H]` of the concatenation.
    public let ehProj: Linear
    /// The depth's decoder blocks (one per pattern character).
    public let blocks: [DecoderBlock]
    /// Norm applied to the depth's output before the LM head.
    public let finalLayernorm: RMSNorm

    init(hiddenSize: Int, heads: Int, keyValueHeads: Int?, intermediateSize: Int, blockCount: Int, ropeBase: Double,
         normEpsilon: Float, generator: inout SplitMix64) throws {
        enorm = RMSNorm(dimension: hiddenSize, epsilon: normEpsilon)
        hnorm = RMSNorm(dimension: hiddenSize, epsilon: normEpsilon)
        ehProj = Linear(inFeatures: 2 * hiddenSize, outFeatures: hiddenSize, generator: &generator)
        var made: [DecoderBlock] = []
        for _ in 0..<blockCount {
            made.append(try DecoderBlock(hiddenSize: hiddenSize, heads: heads, keyValueHeads: keyValueHeads,
                                         intermediateSize: intermediateSize, ropeBase: ropeBase, normEpsilon: normEpsilon,
                                         generator: &generator))
        }
        blocks = made
        finalLayernorm = RMSNorm(dimension: hiddenSize, epsilon: normEpsilon)
    }

    /// The depth's layers keyed relative to its own sublayers, numbered from 0: see
    /// ``children(firstSublayer:under:)``.
    public var children: [(key: String, layer: any Layer)] { children(firstSublayer: 0, under: "") }

    /// The depth's layers under the checkpoint keys of its sublayers: sublayer `i` of the
    /// depth is `{prefix}.{firstSublayer + i}`, the first one holds `enorm`, `hnorm` and
    /// `eh_proj`, every one holds its decoder block's keys, and the last holds
    /// `final_layernorm`.
    ///
    /// - Parameters:
    ///   - firstSublayer: the checkpoint index of the depth's first sublayer.
    ///   - prefix: the key of the list of sublayers (`"model.layers"`); empty for none.
    /// - Returns: the layers in checkpoint order.
    public func children(firstSublayer: Int, under prefix: String) -> [(key: String, layer: any Layer)] {
        func sublayer(_ i: Int) -> String { prefix.isEmpty ? "\(firstSublayer + i)" : "\(prefix).\(firstSublayer + i)" }
        var out: [(key: String, layer: any Layer)] = [
            ("\(sublayer(0)).enorm", enorm), ("\(sublayer(0)).hnorm", hnorm), ("\(sublayer(0)).eh_proj", ehProj),
        ]
        for (i, block) in blocks.enumerated() { out.append((sublayer(i), block)) }
        out.append(("\(sublayer(blocks.count - 1)).final_layernorm", finalLayernorm))
        return out
    }
}

/// How the MTP module receives its per-depth inputs (SPEC §5).
public enum MTPInput {
    /// Token ids `[B, S]`, rolled here, embedded with `embed`.
    case tokenIDs(Tensor, embed: (Tensor) throws -> Tensor)
    /// Per-depth ids already shifted by the caller, embedded with `embed` (the positions are
    /// still rolled here: for a sequence split over ranks use ``shiftedIDsAndPositions(_:positions:embed:)``).
    case shiftedIDs([Tensor], embed: (Tensor) throws -> Tensor)
    /// Per-depth ids and positions rolled by the caller before the sequence was split over
    /// ranks (context parallelism: a chunk's last tokens take their successors from the next
    /// chunk), embedded with `embed`.
    case shiftedIDsAndPositions([Tensor], positions: [Tensor], embed: (Tensor) throws -> Tensor)
    /// Per-depth embeddings computed elsewhere (the last pipeline stage).
    case embeddings([Tensor])
}

/// The MTP head stack of a DeepSeek-V3-style model (SPEC §5).
public final class MTPModule: Layer {
    /// The configuration (depths, pattern, loss scaling).
    public let config: MTPConfig
    /// Physical depths (one when `useRepeatedLayer`).
    public let depths: [MTPDepth]

    /// A module with weights drawn from `generator`, depth by depth.
    ///
    /// - Parameters:
    ///   - config: the depths and their block pattern.
    ///   - hiddenSize, heads, intermediateSize: the blocks' sizes (as the main model's).
    ///   - keyValueHeads: the blocks' key/value heads; nil means `heads`.
    ///   - ropeBase: the rotary frequency base.
    ///   - normEpsilon: the RMSNorm epsilon of every norm.
    ///   - generator: the seeded source of the initial weights.
    /// - Throws: ``MTPError`` when the config is disabled, ``TensorError`` for bad sizes.
    public init(config: MTPConfig, hiddenSize: Int, heads: Int, keyValueHeads: Int? = nil, intermediateSize: Int,
                ropeBase: Double = 10_000, normEpsilon: Float = 1e-6, generator: inout SplitMix64) throws {
        guard config.isEnabled else {
            throw MTPError.invalidArgument("MTPModule needs numLayers > 0 and a non-empty layerPattern, got \(config.numLayers) and '\(config.layerPattern)'")
        }
        self.config = config
        var made: [MTPDepth] = []
        for _ in 0..<config.numPhysicalDepths {
            made.append(try MTPDepth(hiddenSize: hiddenSize, heads: heads, keyValueHeads: keyValueHeads,
                                     intermediateSize: intermediateSize, blockCount: config.patternLength, ropeBase: ropeBase,
                                     normEpsilon: normEpsilon, generator: &generator))
        }
        depths = made
    }

    /// The depths' layers under `layers.{d · patternLength + i}` for sublayer i of depth d:
    /// see ``children(firstSublayer:under:)``.
    public var children: [(key: String, layer: any Layer)] { children(firstSublayer: 0, under: "layers") }

    /// The depths' layers under the checkpoint keys of their sublayers: sublayer `i` of
    /// depth `d` is `{prefix}.{firstSublayer + d · patternLength + i}` (each depth as
    /// ``MTPDepth/children(firstSublayer:under:)``).
    ///
    /// - Parameters:
    ///   - firstSublayer: the checkpoint index of depth 0's first sublayer (in a causal LM,
    ///     its number of main layers L).
    ///   - prefix: the key of the list of sublayers (`"model.layers"`).
    /// - Returns: the layers in checkpoint order, depth by depth.
    public func children(firstSublayer: Int, under prefix: String) -> [(key: String, layer: any Layer)] {
        depths.enumerated().flatMap { d, depth in
            depth.children(firstSublayer: firstSublayer + d * config.patternLength, under: prefix)
        }
    }

    /// The per-depth outputs `[h_0 … h_{D-1}]` (after each depth's final_layernorm).
    ///
    /// - Parameters:
    ///   - hidden: the main model's final-norm output `[B, S, H]`.
    ///   - input: ids to roll and embed, pre-shifted ids, or pre-computed embeddings.
    ///   - positions: position ids `[B, S]` (rolled per depth like the ids).
    ///   - seqIdx: the document index `[B, S]` for the attention mask.
    /// - Throws: ``MTPError`` when the per-depth inputs do not number D.
    public func callAsFunction(hidden: Tensor, input: MTPInput, positions: Tensor, seqIdx: Tensor?) throws -> [Tensor] {
        let d = config.numLayers
        switch input {
        case .shiftedIDs(let ids, _) where ids.count != d:
            throw MTPError.depthCountMismatch("expected \(d) per-depth shifted ids, got \(ids.count)")
        case .shiftedIDsAndPositions(let ids, let positions, _) where ids.count != d || positions.count != d:
            throw MTPError.depthCountMismatch("expected \(d) per-depth shifted ids and positions, got \(ids.count) and \(positions.count)")
        case .embeddings(let e) where e.count != d:
            throw MTPError.depthCountMismatch("expected \(d) per-depth embeddings, got \(e.count)")
        default: break
        }
        var outputs: [Tensor] = []
        var previous = hidden
        var ids: Tensor? = nil
        if case .tokenIDs(let t, _) = input { ids = t }
        var pos = positions
        for k in 0..<d {
            pos = try rollTensor(pos, shifts: -1, dim: -1)
            let embedded: Tensor
            switch input {
            case .shiftedIDsAndPositions(let all, let positions, let embed):
                embedded = try embed(all[k])
                pos = positions[k]
            case .tokenIDs(_, let embed):
                ids = try rollTensor(ids!, shifts: -1, dim: -1)
                embedded = try embed(ids!)
            case .shiftedIDs(let all, let embed):
                embedded = try embed(all[k])
            case .embeddings(let all):
                embedded = all[k]
            }
            let depth = depths[config.useRepeatedLayer ? 0 : k]
            var x = try depth.ehProj(Tensor.concatenated([depth.enorm(embedded), depth.hnorm(previous)], axis: -1))
            for block in depth.blocks {
                x = try block(x, positions: pos, seqIdx: seqIdx)
            }
            previous = x
            outputs.append(try depth.finalLayernorm(x))
        }
        return outputs
    }
}
