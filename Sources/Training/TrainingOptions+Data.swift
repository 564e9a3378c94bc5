// How a run derives its data from its seed: the one rule `mtp train` uses to draw
// and split documents, and that `mtp generate` uses to find the same held-out set.

import Data
import Tensors

extension TrainingOptions {
    /// The built-in corpus of this run (its vocabulary and seed).
    public func builtInCorpus() throws -> SyntheticCorpus {
        try SyntheticCorpus(vocabularySize: model.vocabularySize, seed: seed)
    }

    /// `count` documents of the built-in corpus, as this run draws them.
    /// - Throws: ``TrainingError`` when `count` is not positive; ``Tensors/MemoryBudgetError``
    ///   when that many documents would not fit in memory.
    public func builtInDocuments(count: Int) throws -> [[Int32]] {
        guard count >= 1 else { throw TrainingError("--documents must be at least 1, got \(count)") }
        let corpus = try builtInCorpus()
        // Each document: its ids (4 bytes each, at most the longest length) and an array header.
        try MemoryBudget.check(bytes: MemoryBudget.product([count, 4 * corpus.documentLengths.upperBound + 64]),
                               for: "--documents \(count) of the built-in corpus")
        return try corpus.documents(count: count, seed: seed &+ 1)
    }

    /// This run's train/held-out split of `documents` (whatever their source).
    public func split(_ documents: [[Int32]]) throws -> DocumentSplit {
        try DocumentSplit(documents, heldOutFraction: heldOutFraction, seed: seed &+ 2)
    }
}
