// A case evaluated on one rank of a vocabulary-parallel group (`mtp loss --tensor-parallel T`
// under mpirun): the proof, against the single-process `mtp loss` of the same file, that the
// sharded losses give the same loss and gradients.

import Losses
import Tensors

extension LossCase {
    /// The inputs and loss of this rank: the LM head's rows and every logits tensor's last
    /// axis cut to this rank's ``VocabularyShard`` (new leaves, so their gradients are the
    /// shard's), hidden states that feed a logits loss through the head routed through
    /// `summingGradient(over:)`, and the loss wrapped in its vocabulary-parallel form.
    ///
    /// - Returns: the leaves to read gradients from, the tensors to compute with, the loss.
    /// - Throws: ``LossError`` when the case has no tensor that names V, or V < T.
    func vocabularyParallelInputs(_ leaves: [String: Tensor], lossFn: any TokenLoss, group: any LossGroup) throws
        -> (leaves: [String: Tensor], inputs: [String: Tensor], lossFn: any TokenLoss) {
        let logitNames = leaves.keys.filter { $0 == "logits" || $0.hasPrefix("mtp_per_depth_logits.") }
        guard let v = leaves["lm_head.weight"]?.shape.first ?? logitNames.compactMap({ leaves[$0]?.shape.last }).first else {
            throw LossError.missingTensor("a vocabulary-parallel case needs lm_head.weight or logits to know V")
        }
        let shard = try VocabularyShard(vocabularySize: v, group: group)
        var outLeaves = leaves, inputs = leaves
        for name in logitNames + (leaves["lm_head.weight"] == nil ? [] : ["lm_head.weight"]) {
            guard let t = leaves[name] else { continue }
            let cut = try shard.slice(t.detached(), axis: name == "lm_head.weight" ? 0 : -1).requiringGrad()
            outLeaves[name] = cut
            inputs[name] = cut
        }
        let parallelLoss: any TokenLoss
        switch lossFn {
        case let fused as FusedLinearCrossEntropy:
            parallelLoss = try VocabularyParallelFusedLinearCrossEntropy(fused, vocabularySize: v, group: group)
        case let logits as any LogitsLoss:
            parallelLoss = try VocabularyParallelLogitsCrossEntropy(logits, vocabularySize: v, group: group)
            // A logits loss on hidden states applies the sharded head itself: each rank's
            // hidden-state gradient is a partial sum over its shard.
            for name in leaves.keys where name == "hidden_states" || name.hasPrefix("mtp_per_depth_h.") {
                inputs[name] = leaves[name]!.summingGradient(over: group)
            }
        default:
            throw LossError.invalidArgument("unsupported loss type \(type(of: lossFn)) for vocabulary parallelism")
        }
        return (outLeaves, inputs, parallelLoss)
    }
}
