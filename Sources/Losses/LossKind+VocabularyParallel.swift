// The vocabulary-parallel form of each loss kind, for drivers that choose the loss by name.

extension LossKind {
    /// The loss of this kind with default options, computed on this rank's vocabulary shard.
    ///
    /// - Parameters:
    ///   - reduction: how per-row losses are combined.
    ///   - vocabularySize: the whole vocabulary V.
    ///   - group: the ranks holding the shards of the head (and of the logits).
    /// - Returns: a ``VocabularyParallelFusedLinearCrossEntropy`` for ``fused``, a
    ///   ``VocabularyParallelLogitsCrossEntropy`` otherwise.
    /// - Throws: ``LossError/invalidArgument(_:)`` when V cannot be split over the group.
    public func makeVocabularyParallelLoss(reduction: LossReduction, vocabularySize: Int, group: any LossGroup) throws -> any TokenLoss {
        switch makeLoss(reduction: reduction) {
        case let fused as FusedLinearCrossEntropy:
            return try VocabularyParallelFusedLinearCrossEntropy(fused, vocabularySize: vocabularySize, group: group)
        case let logits as any LogitsLoss:
            return try VocabularyParallelLogitsCrossEntropy(logits, vocabularySize: vocabularySize, group: group)
        case let other:
            throw LossError.invalidArgument("no vocabulary-parallel form of \(type(of: other))")
        }
    }
}
