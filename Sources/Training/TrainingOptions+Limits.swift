// The ranges of the options that are not plain "positive" checks: non-finite or negative
// optimiser settings, heads that would have no targets, and the memory a run would take,
// estimated with overflow checks before anything of that size is allocated. Messages name
// the `mtp train` flag, since that is where such values come from.

import Model
import Tensors

extension TrainingOptions {
    /// Throws naming the flag of the first option out of range (called by ``validate()``).
    func validateLimits() throws {
        for (flag, v) in [("--weight-decay", weightDecay), ("--clip", gradientClip)] where !(v.isFinite && v >= 0) {
            throw TrainingError("\(flag) must be a finite number >= 0, got \(v)")
        }
        // Depth k (0-based) predicts the token k + 1 places after the main target, so it has
        // S - (k + 1) positions per row: the deepest head needs S > D.
        guard model.mtpDepths < sequenceLength else {
            throw TrainingError("--seq-len \(sequenceLength) leaves MTP depth \(model.mtpDepths - 1) without targets "
                + "(depth k predicts k + 1 tokens past the main target, so the \(model.mtpDepths) depths need --seq-len > \(model.mtpDepths))")
        }
        // The run counts its tokens and batch positions in Int: the whole schedule must be countable.
        guard MemoryBudget.product([steps, gradientAccumulation, batchSize, sequenceLength]) != nil else {
            throw TrainingError("--steps \(steps) × --grad-accum \(gradientAccumulation) × --batch-size \(batchSize) × "
                + "--seq-len \(sequenceLength) tokens overflow a 64-bit count")
        }
        try checkFitsInMemory()
    }

    /// The bytes a step of this run holds at its peak, roughly; nil on overflow.
    ///
    /// Weights, gradients and AdamW moments (16 bytes a parameter); per token of a
    /// micro-batch, the activations kept for backward in every block (about 12·H + 3·I
    /// floats) and, for the logits losses, the `[V]` logits of every head with their
    /// gradient; per block, row and head the `[S]` log-sum-exp the attention keeps for its
    /// backward (its probabilities are recomputed tile by tile, never stored whole).
    public var estimatedPeakBytes: (parameters: Int?, activations: Int?, attention: Int?) {
        let m = model, p = MemoryBudget.product
        let tokens = p([batchSize, sequenceLength])
        let blocks = MemoryBudget.sum([m.layers, m.mtpDepths])
        let perBlockToken = MemoryBudget.sum([p([12, m.hiddenSize]), p([3, m.intermediateSize])])
        let logitsPerToken = loss.readsLogits ? p([m.vocabularySize, m.mtpDepths + 1, 2]) : p([m.vocabularySize, 2])
        let perToken = MemoryBudget.sum([blocks.flatMap { b in perBlockToken.flatMap { p([b, $0]) } }, logitsPerToken])
        let activations = tokens.flatMap { t in perToken.flatMap { p([t, $0, 4]) } }
        let attention = blocks.flatMap { p([$0, batchSize, m.heads, sequenceLength, 4]) }
        return (m.parameterCount.flatMap { p([$0, 16]) }, activations, attention)
    }

    /// Throws unless the model and one micro-batch fit in this machine's memory.
    /// - Throws: ``Tensors/MemoryBudgetError`` naming the flags behind the largest part.
    public func checkFitsInMemory() throws {
        let e = estimatedPeakBytes
        try model.checkFitsInMemory()
        try MemoryBudget.check(bytes: e.activations, for: "--batch-size \(batchSize) × --seq-len \(sequenceLength) tokens "
            + "through \(model.layers + model.mtpDepths) blocks of --hidden \(model.hiddenSize) (vocabulary \(model.vocabularySize)): the activations")
        try MemoryBudget.check(bytes: e.attention, for: "--seq-len \(sequenceLength) with --batch-size \(batchSize) and "
            + "\(model.heads) heads: the attention's log-sum-exp")
        try MemoryBudget.check(bytes: MemoryBudget.sum([e.parameters, e.activations, e.attention]),
                               for: "this run (model, activations and attention together)")
    }
}
