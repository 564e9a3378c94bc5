// The learning-rate schedule (linear warm-up, cosine decay) and global-norm clipping.

import Foundation

/// Linear warm-up to the peak rate, then cosine decay to `minimumRatio · peak`.
public struct LearningRateSchedule: Sendable, Equatable {
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minimumRatio: Float

    public init(peak: Float, warmupSteps: Int, totalSteps: Int, minimumRatio: Float = 0.1) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minimumRatio = minimumRatio
    }

    /// The rate for 0-based step `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = Swift.max(1, totalSteps - warmupSteps)
        let progress = Swift.min(1, Float(step - warmupSteps) / Float(span))
        let cosine = 0.5 * (1 + Foundation.cos(Float.pi * progress))
        return peak * (minimumRatio + (1 - minimumRatio) * cosine)
    }
}

/// The factor that brings a gradient of global norm `norm` down to `maxNorm` (1 when within).
public func clippingScale(norm: Float, maxNorm: Float) -> Float {
    guard maxNorm > 0, norm.isFinite, norm > maxNorm else { return 1 }
    return maxNorm / (norm + 1e-6)
}
