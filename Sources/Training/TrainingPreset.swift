// Named run settings for byte-level text (`mtp train --data FILE --preset NAME`): sizes,
// sequence length, batch, learning rate and steps chosen by measurement (README, "Training
// on text") so that the run takes about the time in its name on a 2-core machine and
// reaches the best held-out loss found for that budget. Flags given beside a preset win.

/// A named set of run settings for byte-level text.
public enum TrainingPreset: String, CaseIterable, Codable, Sendable {
    /// About ten minutes on 2 cores (Intel Xeon AVX-512 / AMD EPYC AVX2).
    case bytes10min = "bytes-10min"
    /// About two minutes on 2 cores: the same model, fewer steps (a quick look).
    case bytes2min = "bytes-2min"

    /// `options` with this preset's model sizes and schedule (vocabulary and data untouched).
    public func applied(to options: TrainingOptions) -> TrainingOptions {
        var o = options
        // Chosen by runs of equal wall time on the King James text (README, "Training on
        // text"): at these budgets a small model that takes many steps beats a wider one
        // (H=96/L=4 reached 1.40 nats where H=128/L=4 reached 1.61 and H=192/L=6 2.07, in
        // about 220 s each); for H=128 a peak learning rate of 4e-3 beat 7e-3, and the
        // smaller model ran at 5e-3 (a smaller model tolerates a higher rate; not swept).
        o.model.hiddenSize = 96
        o.model.layers = 4
        o.model.heads = 4
        o.model.keyValueHeads = 4
        o.model.intermediateSize = 256
        o.model.mtpDepths = 2
        o.sequenceLength = 256
        o.batchSize = 16
        o.learningRate = 5e-3
        // 5 % held out: each evaluation reads the held-out text whole, and at 10 % (430 KB
        // of a 4.3 MB text) the evaluations alone would take a large part of the budget.
        o.heldOutFraction = 0.05
        switch self {
        case .bytes10min:
            o.steps = 1400
            o.warmupSteps = 40
            o.evalEvery = 350
        case .bytes2min:
            o.steps = 280
            o.warmupSteps = 20
            o.evalEvery = 140
        }
        return o
    }
}
