// What a run records as it goes: one entry per optimizer step and per held-out evaluation.

/// Held-out cross-entropy and top-1 accuracy, main head and each MTP depth, and what
/// predicts speculative decoding's acceptance.
///
/// Depth k's targets are the main head's minus the first k + 1 of every document (it
/// predicts k + 1 tokens further), so its CE is compared with the main head's CE on that
/// same target set, ``mainLossOnDepthTargets``: on short documents the skipped opening
/// tokens are the hardest, and the plain main CE makes the depths look better than they are.
public struct Evaluation: Codable, Equatable, Sendable {
    public var step: Int
    public var mainLoss: Double
    public var depthLosses: [Double]
    public var mainAccuracy: Double
    public var depthAccuracies: [Double]
    /// Per depth k, the teacher-forced agreement: the fraction of depth k's targets at which
    /// depth k's argmax equals the main head's argmax for the same target token (Megatron-LM's
    /// MTP acceptance metric; what greedy drafting of depth k passes at, given the tokens before
    /// it). nil in checkpoints written before it was recorded.
    public var depthAgreements: [Double]?
    /// Per depth k, the main head's CE on depth k's target set. nil in older checkpoints.
    public var mainLossOnDepthTargets: [Double]?

    public init(step: Int, mainLoss: Double, depthLosses: [Double], mainAccuracy: Double, depthAccuracies: [Double],
                depthAgreements: [Double]? = nil, mainLossOnDepthTargets: [Double]? = nil) {
        self.step = step
        self.mainLoss = mainLoss
        self.depthLosses = depthLosses
        self.mainAccuracy = mainAccuracy
        self.depthAccuracies = depthAccuracies
        self.depthAgreements = depthAgreements
        self.mainLossOnDepthTargets = mainLossOnDepthTargets
    }
}

/// One logged training step.
public struct StepRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var mainLoss: Float
    public var depthLosses: [Float]
    public var learningRate: Float
    public var gradientNorm: Float
}
