// What a run records as it goes: one entry per optimizer step and per held-out evaluation.

/// Held-out cross-entropy and top-1 accuracy, main head and each MTP depth.
public struct Evaluation: Codable, Equatable, Sendable {
    public var step: Int
    public var mainLoss: Double
    public var depthLosses: [Double]
    public var mainAccuracy: Double
    public var depthAccuracies: [Double]
}

/// One logged training step.
public struct StepRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var mainLoss: Float
    public var depthLosses: [Float]
    public var learningRate: Float
    public var gradientNorm: Float
}
