// The vocabulary-parallel parameters of a CausalLM on one rank of a tensor group: the token
// embedding and the LM head, each held as this rank's rows [o, o + V_r) with their AdamW
// moments while it trains, and gathered whole only for an evaluation or a checkpoint.
//
// Letters: V vocabulary, H width, T ranks of the group, V_r ≤ ⌈V/T⌉ this rank's rows.
// Per rank while training: 2 tables × (value + gradient + 2 moments) × V_r·H floats, against
// V·H for each in one process. Every rank starts from the same seed, so each draws the whole
// tables once and keeps its rows: the shards are the single-process tables' rows exactly.
// Gathering: one all-gather per table of [value | m | v] padded to ⌈V/T⌉ rows (uneven shards),
// after which every rank holds the single-process layout (a checkpoint of any layout).
// The next step cuts the rows again.

import Foundation
import Losses
import Model
import NN
@_spi(Kernels) import Tensors
import Training

/// The embedding and LM head of a model split by vocabulary rows over a tensor group.
public final class VocabularyParallelParameters: @unchecked Sendable {
    // Used by the one thread that runs the training loop.
    /// The tensor group (counts the bytes of the step's collectives).
    public let group: CommunicatorGroup
    /// This rank's rows.
    public let shard: VocabularyShard
    private let parameters: [(name: String, parameter: Parameter)]
    private let optimizer: AdamW

    /// Takes over `model`'s embedding and head on this rank of `group`: installs the
    /// vocabulary-parallel lookup and cuts the tables (and `optimizer`'s moments) to this rank's rows.
    ///
    /// - Throws: ``Losses/LossError`` when V < T; ``DistributedError`` on communication failures.
    public init(model: CausalLM, optimizer: AdamW, group: CommunicatorGroup) throws {
        self.group = group
        self.optimizer = optimizer
        let shard = try VocabularyShard(vocabularySize: model.config.vocabularySize, group: group)
        self.shard = shard
        parameters = model.namedParameters().filter {
            $0.parameter === model.embedTokens.weight || $0.parameter === model.lmHead.weight
        }
        model.embedTokens.lookup = { ids, weight in
            try VocabularyParallelEmbedding.lookup(ids, weight: weight, shard: shard, group: group)
        }
        try cut()
    }

    /// Σ g² over this rank's rows of the tables (the part of the gradient norm the group splits).
    public func shardGradientSquare() -> Double {
        var s = 0.0
        for (_, p) in parameters {
            guard let g = p.grad?.float32Values(), g.shape[0] == shard.count else { continue }
            let gp = g.floatPointer
            var local: Float = 0
            for i in 0..<g.count { local += gp[i] * gp[i] }
            s += Double(local)
        }
        return s
    }

    /// Keeps only this rank's rows of the tables and their moments; nothing when already cut.
    public func cut() throws {
        guard parameters.contains(where: { $0.parameter.shape[0] != shard.count }) else { return }
        var state = try optimizer.stateTensors()
        for (name, p) in parameters where p.shape[0] == shard.vocabularySize {
            for key in Self.momentKeys(name) { state[key] = try shard.slice(state[key]!, axis: 0) }
            p.value = try shard.slice(p.value.detached(), axis: 0)
        }
        try optimizer.load(stateTensors: state, step: optimizer.step)
    }

    /// Gathers the whole tables and their moments on every rank of the group (the
    /// single-process layout); nothing when already whole.
    public func gather() throws {
        guard parameters.contains(where: { $0.parameter.shape[0] != shard.vocabularySize }) else { return }
        var state = try optimizer.stateTensors()
        let rows = shard.maxCount, t = shard.parts, v = shard.vocabularySize
        for (name, p) in parameters where p.shape[0] == shard.count {
            let h = p.shape[1], block = rows * h
            let parts = [p.value.float32Values().floats] + Self.momentKeys(name).map { state[$0]!.floats }
            var mine = [Float](repeating: 0, count: 3 * block)
            for (k, part) in parts.enumerated() { mine.replaceSubrange((k * block)..<(k * block + part.count), with: part) }
            let all = try group.communicator.allGather(mine)
            var whole = [[Float]](repeating: [], count: 3)
            for k in 0..<3 {
                for r in 0..<t {
                    let start = r * 3 * block + k * block
                    whole[k] += all[start ..< start + shard.range(of: r).count * h]
                }
            }
            p.value = try Tensor(whole[0], shape: [v, h]).cast(to: p.value.dtype)
            for (k, key) in Self.momentKeys(name).enumerated() { state[key] = try Tensor(whole[k + 1], shape: [v, h]) }
        }
        try optimizer.load(stateTensors: state, step: optimizer.step)
    }

    private static func momentKeys(_ name: String) -> [String] { ["optimizer.exp_avg.\(name)", "optimizer.exp_avg_sq.\(name)"] }
}
