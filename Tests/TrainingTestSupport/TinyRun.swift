// The tiny training set-up the tests of several targets share: a small model on the
// built-in corpus, with every option a test depends on given explicitly at its call site.

import Data
import Model
import Training

/// Options of a tiny model (V = 24, 2 heads; H, I, layers, depths as given) for tests.
public func tinyTrainingOptions(layers: Int = 1, hidden: Int = 16, intermediate: Int = 32, depths: Int = 2,
                                mtpScale: Float = 0.3, steps: Int, batchSize: Int = 4, sequenceLength: Int,
                                learningRate: Float, warmup: Int, evalEvery: Int = 1000, gradientAccumulation: Int = 1,
                                seed: UInt64) -> TrainingOptions {
    var o = TrainingOptions(model: ModelConfig(vocabularySize: 24, hiddenSize: hidden, layers: layers, heads: 2,
                                               intermediateSize: intermediate, mtpDepths: depths, mtpLossScalingFactor: mtpScale))
    o.steps = steps
    o.batchSize = batchSize
    o.sequenceLength = sequenceLength
    o.learningRate = learningRate
    o.warmupSteps = warmup
    o.evalEvery = evalEvery
    o.gradientAccumulation = gradientAccumulation
    o.seed = seed
    return o
}

/// `documents` built-in-corpus documents (vocabulary 24) split into train and held-out sets.
public func tinyCorpusSplit(corpusSeed: UInt64, documents: Int, documentSeed: UInt64,
                            heldOutFraction: Double = 0.1) throws -> DocumentSplit {
    let corpus = try SyntheticCorpus(vocabularySize: 24, seed: corpusSeed)
    return try DocumentSplit(try corpus.documents(count: documents, seed: documentSeed), heldOutFraction: heldOutFraction, seed: 1)
}
