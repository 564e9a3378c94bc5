// How a CausalLM's decoder blocks are split over P stages.
//
//   stage 0      embed_tokens, blocks [0, c₀), and the D per-depth MTP embeddings
//   stage s      blocks [c₀ + … + c_{s−1}, … + c_s)
//   stage P−1    its blocks, the final norm, the MTP module (fed the embeddings), the LM head
//                through the loss
// A stage may hold no block (it then passes its input on); with P = 1 the one stage
// is both first and last.

/// The number of decoder blocks each stage runs, in order.
public struct PipelinePartition: Equatable, Sendable, CustomStringConvertible {
    /// `layerCounts[s]` blocks on stage s.
    public let layerCounts: [Int]

    /// A partition with the given block counts.
    ///
    /// - Parameters:
    ///   - layerCounts: blocks per stage (each ≥ 0, at least one stage).
    ///   - layers: the model's blocks; the counts must add up to it.
    /// - Throws: ``PipelineError`` naming the counts when they are empty, negative, or do not add up.
    public init(layerCounts: [Int], layers: Int) throws {
        guard !layerCounts.isEmpty else { throw PipelineError("a partition needs at least one stage") }
        guard layerCounts.allSatisfy({ $0 >= 0 }) else { throw PipelineError("negative block count in partition \(layerCounts)") }
        guard layerCounts.reduce(0, +) == layers else {
            throw PipelineError("partition \(layerCounts) holds \(layerCounts.reduce(0, +)) blocks, the model has \(layers)")
        }
        self.layerCounts = layerCounts
    }

    /// An even split in which the last stage's D MTP depths count as one block each:
    /// stage s (before the last) takes ⌊U / (P − s)⌋ of the U block-equivalents left
    /// (blocks not yet given out, plus D), capped by the blocks left; the last stage
    /// takes the rest.
    ///
    /// Examples: 2 blocks, D = 2, P = 2 → [2, 0]; 4 blocks, D = 2, P = 2 → [3, 1];
    /// 3 blocks, D = 1, P = 3 → [1, 1, 1].
    /// - Throws: ``PipelineError`` when `stages < 1`, `layers < 0` or `mtpDepths < 0`.
    public static func balanced(layers: Int, stages: Int, mtpDepths: Int) throws -> PipelinePartition {
        guard stages >= 1 else { throw PipelineError("a pipeline needs at least one stage, got \(stages)") }
        guard layers >= 0, mtpDepths >= 0 else { throw PipelineError("negative size: \(layers) blocks, \(mtpDepths) MTP depths") }
        var counts: [Int] = []
        var blocksLeft = layers, units = layers + mtpDepths
        for s in 0..<(stages - 1) {
            let c = Swift.min(blocksLeft, units / (stages - s))
            counts.append(c)
            blocksLeft -= c
            units -= c
        }
        counts.append(blocksLeft)
        return try PipelinePartition(layerCounts: counts, layers: layers)
    }

    /// P.
    public var stages: Int { layerCounts.count }

    /// The indices of the model's blocks that stage `stage` runs.
    public func layers(ofStage stage: Int) -> Range<Int> {
        let start = layerCounts.prefix(stage).reduce(0, +)
        return start..<(start + layerCounts[stage])
    }

    /// The counts joined with `+`, e.g. `2+1+1`.
    public var description: String { layerCounts.map(String.init).joined(separator: "+") }
}
