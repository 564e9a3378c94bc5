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
        o.model.hiddenSize = 192
        o.model.layers = 6
        o.model.heads = 6
        o.model.keyValueHeads = 6
        o.model.intermediateSize = 512
        o.model.mtpDepths = 2
        o.sequenceLength = 256
        o.batchSize = 16
        o.learningRate = 2e-3
        // 5 % held out: each evaluation reads it whole, and at 10 % (430 KB of a 4.3 MB
        // text) two evaluations alone would take a minute and a half of the ten.
        o.heldOutFraction = 0.05
        switch self {
        case .bytes10min:
            o.steps = 1200
            o.warmupSteps = 60
            o.evalEvery = 200
        case .bytes2min:
            o.steps = 240
            o.warmupSteps = 20
            o.evalEvery = 80
        }
        return o
    }
}
