// What a generation call is asked for, what it returns and counts, and its input errors.

/// What and how to generate.
public struct GenerationOptions: Sendable, Equatable {
    /// Tokens to generate after the prompt (≥ 0).
    public var maxTokens: Int
    /// 0 decodes greedily; otherwise logits are divided by it before the softmax.
    public var temperature: Double
    /// Nucleus sampling: keep the most likely tokens up to this mass, in (0, 1].
    public var topP: Double
    /// Seeds the sampler (unused when greedy).
    public var seed: UInt64
    /// MTP depths that may draft tokens each step: 0 decodes plainly, at most the model's D.
    public var draftDepths: Int
    /// Whether each step drafts only as many of the `draftDepths` as pay (AdaptiveDrafting.swift);
    /// false drafts all of them every step.
    public var adaptiveDrafting: Bool
    /// Per depth, the acceptance adaptive drafting starts from, in [0, 1] (the checkpoint's
    /// teacher-forced agreement, say); nil (or a missing entry) starts from 1. A depth whose
    /// prior is 0 is drafted only after it is seen to pass, that is never.
    public var acceptancePrior: [Double]?
    /// The positions the model was trained on (the training sequence length S): past them the
    /// main model and the depths see a sliding window of the last S/2 … S tokens (Generator.swift).
    /// nil never crops the context.
    public var contextLength: Int?

    /// - Parameters: see the properties.
    public init(maxTokens: Int = 64, temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0, draftDepths: Int = 0,
                adaptiveDrafting: Bool = true, acceptancePrior: [Double]? = nil, contextLength: Int? = nil) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.draftDepths = draftDepths
        self.adaptiveDrafting = adaptiveDrafting
        self.acceptancePrior = acceptancePrior
        self.contextLength = contextLength
    }
}

/// Counters of one generation (or of several, merged).
public struct GenerationStatistics: Sendable, Equatable {
    /// Main-model forward passes, the prompt's included.
    public var mainForwards = 0
    /// Forward passes that verified drafts (speculative decoding only).
    public var verifications = 0
    /// Tokens those verifications produced: accepted drafts plus the main model's own
    /// token, before the output is cut to `maxTokens`.
    public var verifiedTokens = 0
    /// `drafted[k]`: how often depth k's draft was checked (every earlier draft of its step accepted).
    public var drafted: [Int]
    /// `accepted[k]`: how often it was accepted.
    public var accepted: [Int]
    /// `stepsByDraftDepths[d]`: verifying forwards that checked d drafts (d = 0 … D′; a step
    /// with no draft is a plain one, chosen by adaptive drafting or at a window's end).
    public var stepsByDraftDepths: [Int]
    /// Times the context window moved and the caches were recomputed from the kept tokens
    /// (see ``GenerationOptions/contextLength``).
    public var windowShifts = 0
    /// Wall-clock seconds of the generation call (merged: summed).
    public var seconds = 0.0

    /// Zeroed counters for `depths` drafting depths.
    public init(depths: Int) {
        drafted = [Int](repeating: 0, count: depths)
        accepted = drafted
        stepsByDraftDepths = [Int](repeating: 0, count: depths + 1)
    }

    /// Per depth: accepted / drafted, the acceptance rate of depth k given that its step
    /// reached it (NaN for a depth never checked).
    public var acceptance: [Double] {
        zip(accepted, drafted).map { $1 > 0 ? Double($0) / Double($1) : .nan }
    }

    /// Mean tokens per verifying forward (1 for plain decoding); the prompt's forward,
    /// which yields one token in either mode, is not counted.
    public var tokensPerForward: Double {
        verifications > 0 ? Double(verifiedTokens) / Double(verifications) : 1
    }

    /// The sum of two sets of counters (same number of depths).
    public func merged(with other: GenerationStatistics) -> GenerationStatistics {
        precondition(drafted.count == other.drafted.count, "merging statistics of different depth counts")
        var out = self
        out.mainForwards += other.mainForwards
        out.verifications += other.verifications
        out.verifiedTokens += other.verifiedTokens
        out.seconds += other.seconds
        out.windowShifts += other.windowShifts
        for d in stepsByDraftDepths.indices { out.stepsByDraftDepths[d] += other.stepsByDraftDepths[d] }
        for k in drafted.indices {
            out.drafted[k] += other.drafted[k]
            out.accepted[k] += other.accepted[k]
        }
        return out
    }
}

/// The generated tokens and how they were obtained.
public struct GenerationResult: Sendable, Equatable {
    /// The `maxTokens` tokens after the prompt.
    public var tokens: [Int32]
    /// How they were obtained (forwards, drafts, acceptance, wall time).
    public var statistics: GenerationStatistics
}
