// Vectorised exp and log on SIMD8<Float> (AVX2 width), and row-block parallelism.
//
// exp: x = n·ln2 + r, |r| ≤ ln2/2, e^r by its degree-7 Taylor polynomial
// (truncation < 2e-9 relative), then scaled by 2^n in two steps so that
// subnormal results are exact to rounding. Inputs above 88.7228 give +inf,
// below -103.98 give 0, NaN propagates.
// log: x = m·2^e with m ∈ [√½, √2], f = m − 1 (exact), s = f/(2 + f),
// log m = f − f²/2 + s·(f²/2 + R(s²)) with fdlibm's degree-4 minimax R (as
// musl's logf): the rounding of s only reaches the small correction term.
// Subnormals are rescaled by 2^23 first; log 0 = -inf, log of a negative = NaN,
// log inf = inf.
// Measured max error over all 2³² Float32 inputs against Foundation's
// double-precision exp/log, in ulps of the correctly rounded result (release
// build): exp 1.22 ulp (at 59.265224), log 1.00 ulp (at 1.6038048e-28).
// (The earlier log, 2·atanh(s) with s = (m−1)/(m+1), reached 2.76 ulp near 1.13.)
// `MathKernelTests` re-measures a strided sweep and pins both at ≤ 2 ulp.

import Foundation

/// Vectorised elementary functions.
public enum VectorMath {
    @usableFromInline static let ln2Hi: Float = 0.693_145_751_953_125
    @usableFromInline static let ln2Lo: Float = 1.428_606_765_330_187e-06
    // Minimax coefficients of (2·atanh(s) − 2s)/s² ≈ Σ lgₖ·s²⁽ᵏ⁻¹⁾ on |s| ≤ 0.1716 (fdlibm / musl logf).
    @usableFromInline static let lg1: Float = 0.666_666_626_93
    @usableFromInline static let lg2: Float = 0.400_009_721_52
    @usableFromInline static let lg3: Float = 0.284_987_866_88
    @usableFromInline static let lg4: Float = 0.242_790_788_41

    /// e^x, lane-wise. Always inlined: row kernels in other modules call it per vector.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // Written with comparisons, selects and bit casts only: the generic SIMD
        // `clamped`, `rounded` and Float→Int conversions compile to scalar loops
        // (measured 14× slower).
        var xc = x
        xc.replace(with: SIMD8(repeating: -104), where: x .< -104)
        xc.replace(with: SIMD8(repeating: 89), where: x .> 89)
        // Adding 1.5·2²³ rounds to the nearest integer (ties to even); the sum's low
        // mantissa bits hold that integer.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = xc * 1.442_695_040_888_963_4 + magic
        let n = t - magic
        let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let r = xc - n * ln2Hi - n * ln2Lo
        var p = SIMD8<Float>(repeating: 1.0 / 5040)
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2^n = 2^n1 · 2^n2 with both halves representable as normal floats.
        let n1 = ni &>> 1
        let n2 = ni &- n1
        let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD8<Float>.self)
        let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD8<Float>.self)
        var y = p * s1 * s2
        y.replace(with: SIMD8(repeating: .infinity), where: x .> 88.722_839)
        y.replace(with: SIMD8(repeating: 0), where: x .< -103.972_08)
        y.replace(with: x, where: x .!= x)
        return y
    }

    /// Natural logarithm, lane-wise.
    @inlinable
    public static func log(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let tiny = x .< Float.leastNormalMagnitude
        var xs = x
        xs.replace(with: x * 8_388_608, where: tiny)  // 2^23
        let bits = unsafeBitCast(xs, to: SIMD8<Int32>.self)
        var e = ((bits &>> 23) & 0xFF) &- 127
        var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F80_0000, to: SIMD8<Float>.self)
        let big = m .> 1.414_213_5
        m.replace(with: m * 0.5, where: big)
        e.replace(with: e &+ 1, where: big)
        // Int32 → Float for |e| < 2²² by the same magic-number trick (no generic conversion).
        var ef = unsafeBitCast(e &+ 0x4B40_0000, to: SIMD8<Float>.self) - 12_582_912
        ef.replace(with: ef - 23, where: tiny)
        // log m = log(1 + f) = f − hfsq + s·(hfsq + R), s = f/(2 + f), with f = m − 1 exact
        // (Sterbenz): the rounding of s only reaches the small correction term.
        let f = m - 1
        let s = f / (2 + f)
        let z = s * s, w = z * z
        let r = z * (lg1 + w * lg3) + w * (lg2 + w * lg4)
        let hfsq = 0.5 * f * f
        var y = s * (hfsq + r) + ef * ln2Lo - hfsq + f + ef * ln2Hi
        y.replace(with: SIMD8(repeating: -.infinity), where: x .== 0)
        y.replace(with: SIMD8(repeating: .nan), where: x .< 0)
        y.replace(with: SIMD8(repeating: .infinity), where: x .== .infinity)
        y.replace(with: x, where: x .!= x)
        return y
    }

    /// The largest of `x[0..<n]` (−inf for n = 0). A NaN is not guaranteed to win here;
    /// callers propagate it through the exp that follows.
    @inlinable @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var m8 = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            m8.replace(with: v, where: v .> m8)  // not pointwiseMax: its generic form is a scalar loop
            i += 8
        }
        var m = m8.max()
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// Σ a[i]·b[i] over `n` elements, eight lanes at a time (a fixed order: the same
    /// inputs always give the same bits).
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
                * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// `x[i] ← exp(x[i] − shift)` for i < n, in place; returns the sum of the new values.
    @inlinable @inline(__always)
    public static func expShifted(_ x: UnsafeMutablePointer<Float>, count n: Int, shift: Float) -> Float {
        let s8 = SIMD8<Float>(repeating: shift)
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let p = UnsafeMutableRawPointer(x + i)
            let e = exp(p.loadUnaligned(as: SIMD8<Float>.self) - s8)
            p.storeBytes(of: e, as: SIMD8<Float>.self)
            acc += e
            i += 8
        }
        var total = acc.sum()
        while i < n {
            x[i] = exp(x[i] - shift)
            total += x[i]
            i += 1
        }
        return total
    }

    /// Scalar e^x with the same algorithm (for tails and single values).
    @inlinable
    public static func exp(_ x: Float) -> Float { exp(SIMD8(repeating: x))[0] }

    /// Scalar log with the same algorithm.
    @inlinable
    public static func log(_ x: Float) -> Float { log(SIMD8(repeating: x))[0] }

    /// `out[i] = f(in[i])` for `n` elements, eight at a time.
    @inlinable
    public static func map(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count n: Int,
                           _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(output + i).storeBytes(of: f(v), as: SIMD8<Float>.self)
            i += 8
        }
        if i < n {
            var v = SIMD8<Float>(repeating: 0)
            for j in 0..<(n - i) { v[j] = input[i + j] }
            let r = f(v)
            for j in 0..<(n - i) { output[i + j] = r[j] }
        }
    }
}

/// Row-block parallelism over the machine's cores.
public enum Parallel {
    /// The number of blocks work is split into (the active processor count).
    public static let width = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint sub-ranges covering `0..<count`, concurrently when
    /// there are at least `2 · minimumPerBlock` items. The split depends only on
    /// `count`, `minimumPerBlock` and the core count, so results are deterministic.
    public static func forEachBlock(count: Int, minimumPerBlock: Int = 1, _ body: (Range<Int>) -> Void) {
        let blocks = min(width, max(1, count / max(minimumPerBlock, 1)))
        if blocks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let per = (count + blocks - 1) / blocks
        withoutActuallyEscaping(body) { body in
            // The blocks are disjoint; callers write only inside their own range.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: blocks) { b in
                let lo = b * per, hi = min(count, lo + per)
                if lo < hi { shared.value(lo..<hi) }
            }
        }
    }
}

/// Wraps a value that is safe to share for the duration of a parallel region.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
