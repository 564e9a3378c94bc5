// How a run derives its data from its seed: the one rule `mtp train` uses to draw
// and split documents, and that `mtp generate` uses to find the same held-out set.

import Data

extension TrainingOptions {
    /// The built-in corpus of this run (its vocabulary and seed).
    public func builtInCorpus() throws -> SyntheticCorpus {
        try SyntheticCorpus(vocabularySize: model.vocabularySize, seed: seed)
    }

    /// `count` documents of the built-in corpus, as this run draws them.
    public func builtInDocuments(count: Int) throws -> [[Int32]] {
        try builtInCorpus().documents(count: count, seed: seed &+ 1)
    }

    /// This run's train/held-out split of `documents` (whatever their source).
    public func split(_ documents: [[Int32]]) throws -> DocumentSplit {
        try DocumentSplit(documents, heldOutFraction: heldOutFraction, seed: seed &+ 2)
    }
}
