// The token embedding split by vocabulary rows over a tensor group (Megatron-LM's
// VocabParallelEmbedding).
//
// Letters: N ids, H width, V_r this rank's rows [o, o + V_r).
// Forward: rank r writes E_r[i] = W_r[id_i − o] where it holds id_i and 0 elsewhere, then
// one all-reduce SUM of [N, H]: exactly one rank contributes each row, so every rank gets the
// single-process rows bit for bit (x + 0 = x).
// Backward: the upstream gradient G [N, H] is the same on every rank of the group (the model
// after the embedding is replicated there), so rank r adds G[i] into dW_r[id_i − o] for the
// ids it holds — no communication.

@_spi(Kernels) import Tensors
import Losses

/// The masked lookup + all-reduce of a vocabulary-parallel embedding table.
public enum VocabularyParallelEmbedding {
    /// The rows of the whole table at `ids`, from this rank's `weight` shard and the group.
    ///
    /// A `weight` that already holds all V rows (gathered for an evaluation or a checkpoint)
    /// is looked up directly, with no communication.
    ///
    /// - Parameters:
    ///   - ids: Int32 or Int64 ids in `[0, V)`, any shape; the same on every rank of the group.
    ///   - weight: this rank's rows `[V_r, H]` (or the whole `[V, H]`).
    ///   - shard: which rows this rank holds.
    ///   - group: the ranks of the table's shards.
    /// - Returns: `ids.shape + [H]`; the gradient reaches only this rank's rows.
    /// - Throws: ``Tensors/TensorError`` for a weight of the wrong shape or an id out of
    ///   range; the group's communication errors.
    public static func lookup(_ ids: Tensor, weight: Tensor, shard: VocabularyShard, group: any LossGroup) throws -> Tensor {
        if weight.rank == 2 && weight.shape[0] == shard.vocabularySize { return try Tensor.embedding(ids, weight: weight) }
        guard weight.rank == 2, weight.shape[0] == shard.count else {
            throw TensorError.shapeMismatch("vocabulary-parallel embedding: weight \(weight.shape) is not [\(shard.count), H] (rows \(shard.range) of \(shard.vocabularySize))")
        }
        guard ids.dtype.isInteger else { throw TensorError.unsupportedDType("embedding: ids must be integer, got \(ids.dtype)") }
        let h = weight.shape[1], offset = shard.offset, local = shard.range
        let values = ids.int64s
        if let bad = values.first(where: { $0 < 0 || $0 >= Int64(shard.vocabularySize) }) {
            throw TensorError.invalidArgument("embedding: id \(bad) is outside 0..<\(shard.vocabularySize)")
        }
        let w = weight.float32Values()
        var rows = [Float](repeating: 0, count: values.count * h)
        rows.withUnsafeMutableBufferPointer { out in
            for (i, id) in values.enumerated() where local.contains(Int(id)) {
                (out.baseAddress! + i * h).update(from: w.floatPointer + (Int(id) - offset) * h, count: h)
            }
        }
        try rows.withUnsafeMutableBufferPointer { try group.allReduceSum($0) }
        let result = try Tensor(rows, shape: ids.shape + [h]).cast(to: weight.dtype)
        return result.recording([weight]) { g in
            let grad = Tensor.zeros(weight.shape)
            let gp = g.float32Values(), dst = grad.floatPointer
            let src = gp.floatPointer
            for (i, id) in values.enumerated() where local.contains(Int(id)) {
                let row = dst + (Int(id) - offset) * h, up = src + i * h
                for j in 0..<h { row[j] += up[j] }
            }
            return [grad]
        }
    }
}
