// Plain against speculative decoding of the same prompts in the same process: the
// numbers `mtp generate --speculative` and `mtp bench generate` report.
//
// Timing: the two modes run alternately, `repeats` times each, and each keeps its
// fastest run, so both see the same machine state and a busy neighbour inflates
// neither; the first runs also warm the buffers up. Over several prompts the
// speed-up is total plain time over total speculative time.

import Tensors

/// Plain and speculative decoding of one prompt or of a set of prompts.
public struct GenerationComparison: Sendable, Equatable {
    /// Speculative counters (merged over prompts, taken from one run per prompt).
    public var statistics: GenerationStatistics
    /// The fastest plain run's seconds (summed over prompts).
    public var plainSeconds: Double
    /// The fastest speculative run's seconds (summed over prompts).
    public var speculativeSeconds: Double
    /// Prompts whose speculative tokens equal the plain ones.
    public var identicalPrompts: Int
    /// Prompts compared.
    public var prompts: Int
    /// The last prompt's plain tokens.
    public var plainTokens: [Int32]
    /// The last prompt's speculative tokens.
    public var speculativeTokens: [Int32]

    /// Whether every prompt's speculative output equals its plain output.
    public var identical: Bool { identicalPrompts == prompts }

    /// Plain wall time over speculative wall time.
    public var speedup: Double { plainSeconds / speculativeSeconds }

    /// The sum of two comparisons (counters, times and prompt counts; the later tokens).
    public func merged(with other: GenerationComparison) -> GenerationComparison {
        GenerationComparison(statistics: statistics.merged(with: other.statistics),
                             plainSeconds: plainSeconds + other.plainSeconds,
                             speculativeSeconds: speculativeSeconds + other.speculativeSeconds,
                             identicalPrompts: identicalPrompts + other.identicalPrompts, prompts: prompts + other.prompts,
                             plainTokens: other.plainTokens, speculativeTokens: other.speculativeTokens)
    }
}

extension Generator {
    /// Decodes `prompt` plainly and with `options.draftDepths` drafting depths, `repeats`
    /// times each, alternating, keeping each mode's fastest time.
    ///
    /// - Parameters:
    ///   - prompt: as for ``generate(prompt:options:)``.
    ///   - options: the speculative run's options (`draftDepths` ≥ 1); the plain run uses
    ///     the same ones with no drafting depth.
    ///   - repeats: runs per mode (≥ 1).
    /// - Throws: ``GenerationError`` for invalid input or `draftDepths` = 0 or `repeats` < 1.
    public func compare(prompt: [Int32], options: GenerationOptions, repeats: Int) throws -> GenerationComparison {
        guard options.draftDepths >= 1 else { throw GenerationError("a comparison needs at least one drafting depth") }
        guard repeats >= 1 else { throw GenerationError("repeats must be >= 1, got \(repeats)") }
        var plainOptions = options
        plainOptions.draftDepths = 0
        var plain: GenerationResult? = nil, speculative: GenerationResult? = nil
        var plainBest = Double.infinity, speculativeBest = Double.infinity
        for _ in 0..<repeats {
            let p = try generate(prompt: prompt, options: plainOptions)
            let s = try generate(prompt: prompt, options: options)
            plainBest = Swift.min(plainBest, p.statistics.seconds)
            speculativeBest = Swift.min(speculativeBest, s.statistics.seconds)
            plain = p
            speculative = s
        }
        return GenerationComparison(statistics: speculative!.statistics, plainSeconds: plainBest,
                                    speculativeSeconds: speculativeBest,
                                    identicalPrompts: plain!.tokens == speculative!.tokens ? 1 : 0, prompts: 1,
                                    plainTokens: plain!.tokens, speculativeTokens: speculative!.tokens)
    }
}
