// One micro-step of context-parallel training (C > 1, P = 1): every packed row of this
// replica's share is cut into 2C chunks of S / 2C tokens and rank c runs the model on chunks
// c and 2C−1−c (NN's SequenceSplit, the load-balanced "zigzag" of Megatron-LM).
//
// What must happen before the split (a chunk's last tokens look past its end):
//   labels (already shifted: labels[t] is t's target), and for each MTP depth k
//   targets_k = mtpDepthLabels(labels, k, seqIdx)    the roll by k+1 and the document and
//                                                    row-end masking, on whole rows
//   ids_k, positions_k = roll(ids / positions, −(k+1))  the MTP depth's inputs
// then each is cut to chunk c, and the depth losses take `perDepthTargets` — the seed's
// context-parallel path, for what it was made for. Attention gathers the keys and values of
// the chunks up to c and masks documents with the global seqIdx (Attention+ContextParallel).
// Normalisation: every term is a sum over this chunk's targets divided by the target count
// of the whole batch (N, N_k), so the C chunks' (and D replicas') losses add up to the batch
// loss, and their parameter gradients are summed over the replica group (D × C ranks).

import Data
import Losses
import Model
import MTP
import NN
import Pipeline
import Tensors

extension DistributedTraining {
    /// This rank's chunk of its replica's share of `batch`: forward, the summed and globally
    /// normalised loss terms, backward (scaled by 1 / accumulation steps). Returns this
    /// chunk's part of the main and per-depth losses (they add up over the replica group).
    ///
    /// - Throws: errors of the model, the losses and the groups.
    func contextParallelLosses(_ batch: Batch, lossFunction: any TokenLoss) throws -> [Float] {
        let options = trainer.options, model = trainer.model, layout = grid.layout
        let depths = options.model.mtpDepths
        let share = batch.rows / layout.data
        let mine = try batch.sliced(rows: (grid.replica * share)..<((grid.replica + 1) * share))
        let counts = try TargetCounts(labels: batch.labels, seqIdx: batch.seqIdx, depths: depths,
                                      ignoreIndex: MTPLossConfig().ignoreIndex, lossIgnoreIndex: lossFunction.ignoreIndex)
        let split = try SequenceSplit(ranks: layout.context, length: options.sequenceLength), c = grid.contextRank
        func chunk(_ t: Tensor) throws -> Tensor { try split.local(t, rank: c) }

        let positions = try chunk(mine.positions)
        let hidden = try model.trunk(try chunk(mine.inputIds), positions: positions, seqIdx: mine.seqIdx)
        var outputs: [Tensor] = []
        if let mtp = model.mtp {
            var ids = mine.inputIds, pos = mine.positions
            var depthIds: [Tensor] = [], depthPositions: [Tensor] = []
            for _ in 0..<depths {
                ids = try rollTensor(ids, shifts: -1, dim: -1)
                pos = try rollTensor(pos, shifts: -1, dim: -1)
                depthIds.append(try chunk(ids))
                depthPositions.append(try chunk(pos))
            }
            outputs = try mtp(hidden: hidden, input: .shiftedIDsAndPositions(depthIds, positions: depthPositions,
                                                                              embed: { try model.embedTokens($0) }),
                              positions: positions, seqIdx: mine.seqIdx)
        }
        let labels = try chunk(mine.labels)
        let weight = FusedLinearCrossEntropy.sharingWeightGradient(try model.requireLMHeadWeight())
        var total = try calculateLoss(lossFunction, hiddenStates: hidden, labels: labels, lmWeight: weight,
                                      numLabelTokens: counts.main)
        var values = [total.floats[0]]
        let scale = mtpLossScalingFactor(of: model) / Float(Swift.max(depths, 1))
        for k in 0..<outputs.count {
            let targets = try chunk(mtpDepthLabels(mine.labels, depth: k, seqIdx: mine.seqIdx, ignoreIndex: MTPLossConfig().ignoreIndex))
            let depth = try calculateMTPLossPerDepth(lossFunction, perDepthHidden: [outputs[k]], perDepthTargets: [targets],
                                                     labels: labels, scalingFactor: scale, numLabelTokens: counts.depths[k],
                                                     lmWeight: weight)
            values.append(depth.perDepthLosses[0].floats[0])
            total = try total + depth.loss
        }
        try total.backward(Tensor.full(total.shape, value: 1 / Double(options.gradientAccumulation)))
        return values
    }
}
