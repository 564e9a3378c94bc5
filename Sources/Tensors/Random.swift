// A small, portable, seeded random generator: the same seed gives the same
// numbers on every platform and Swift version.
//
// Generator: SplitMix64 (Steele, Lea & Flood 2014). uniform: the top 24 bits of
// each 64-bit output scaled by 2⁻²⁴, so values lie in [0, 1) on a 2⁻²⁴ grid.
// normal: Box–Muller on two uniforms, u₁ mapped to (0, 1] so log never sees 0,
// using both outputs of each pair.

import Foundation

/// SplitMix64: a 64-bit state advanced by a Weyl step, output through a mixing function.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose sequence depends only on `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Float in [0, 1).
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }
}

extension Tensor {
    /// Uniform samples in `[low, high)` from the generator.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, dtype: DType = .float32,
                               generator: inout SplitMix64) -> Tensor {
        let n = elementCount(shape)
        return makeFloat(shape) { p in
            for i in 0..<n { p[i] = low + (high - low) * generator.nextUniform() }
        }.rounded(to: dtype)
    }

    /// Uniform samples in `[low, high)` from a generator seeded with `seed`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, dtype: DType = .float32, seed: UInt64) -> Tensor {
        var g = SplitMix64(seed: seed)
        return uniform(shape, low: low, high: high, dtype: dtype, generator: &g)
    }

    /// Normal samples with the given mean and standard deviation (Box–Muller).
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, dtype: DType = .float32,
                              generator: inout SplitMix64) -> Tensor {
        let n = elementCount(shape)
        return makeFloat(shape) { p in
            var i = 0
            while i < n {
                let u1 = 1 - generator.nextUniform()  // (0, 1]
                let u2 = generator.nextUniform()
                let r = (-2 * Foundation.log(u1)).squareRoot()
                p[i] = mean + std * r * Foundation.cos(2 * .pi * u2)
                if i + 1 < n { p[i + 1] = mean + std * r * Foundation.sin(2 * .pi * u2) }
                i += 2
            }
        }.rounded(to: dtype)
    }

    /// Normal samples from a generator seeded with `seed`.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, dtype: DType = .float32, seed: UInt64) -> Tensor {
        var g = SplitMix64(seed: seed)
        return normal(shape, mean: mean, std: std, dtype: dtype, generator: &g)
    }
}
