// The row kernel shared by every cross-entropy in this module.
//
// For a row of logits z (length V) and target t:
//   loss = logsumexp(z) − z_t
//   ∂loss/∂z_j = softmax(z)_j − [j = t]                       (p − y)
// With softcapping c > 0 the logits are first replaced by ĉ(z) = c·tanh(z/c), and
//   ∂ĉ/∂z = 1 − tanh²(z/c) = 1 − (ĉ/c)²
// multiplies the gradient. The kernel never allocates: it works in the caller's
// row buffer.

import Foundation
@_spi(Kernels) import Tensors

enum CrossEntropyKernel {
    /// Softcaps a row in place.
    @inline(__always)
    static func softcap(_ z: UnsafeMutablePointer<Float>, _ v: Int, _ c: Float) {
        for j in 0..<v { z[j] = c * Foundation.tanh(z[j] / c) }
    }

    /// max over a row (NaN-propagating through the later exp).
    @inline(__always)
    static func rowMax(_ z: UnsafePointer<Float>, _ v: Int) -> Float { VectorMath.max(z, count: v) }

    /// Σ exp(z − m) over a row; when `store`, also writes exp(z − m) into z.
    @inline(__always)
    static func sumExp(_ z: UnsafeMutablePointer<Float>, _ v: Int, _ m: Float, store: Bool) -> Float {
        var s8 = SIMD8<Float>(repeating: 0)
        let m8 = SIMD8<Float>(repeating: m)
        var j = 0
        while j + 8 <= v {
            let e = VectorMath.exp(UnsafeRawPointer(z + j).loadUnaligned(as: SIMD8<Float>.self) - m8)
            if store { UnsafeMutableRawPointer(z + j).storeBytes(of: e, as: SIMD8<Float>.self) }
            s8 += e
            j += 8
        }
        var s = s8.sum()
        if j < v {
            var t = SIMD8<Float>(repeating: -.infinity)
            for k in 0..<(v - j) { t[k] = z[j + k] }
            let e = VectorMath.exp(t - m8)
            for k in 0..<(v - j) {
                if store { z[j + k] = e[k] }
                s += e[k]
            }
        }
        return s
    }

    /// Loss of one row; when `gradWeight` is non-nil, overwrites the row with
    /// `gradWeight · (softmax − onehot) · softcap′`. Returns the loss and the row's
    /// logsumexp as `max + logSum` (kept apart: z − max is exact, so softmax
    /// recomputed as exp((z − max) − logSum) stays accurate at |z| ~ 1e4).
    ///
    /// The row must already be softcapped when `softcap > 0`.
    @inline(__always)
    static func row(_ z: UnsafeMutablePointer<Float>, _ v: Int, target t: Int, softcap c: Float,
                    gradWeight: Float?) -> (loss: Float, max: Float, logSum: Float) {
        let m = rowMax(z, v)
        let zt = z[t]
        guard let w = gradWeight else {
            let ls = VectorMath.log(sumExp(z, v, m, store: false))
            return ((m - zt) + ls, m, ls)
        }
        if c > 0 {
            let s = sumExp(z, v, m, store: false)
            let ls = VectorMath.log(s)
            let k = w / s
            for j in 0..<v {
                let capped = z[j]
                var g = VectorMath.exp(capped - m) * k
                if j == t { g -= w }
                z[j] = g * (1 - (capped / c) * (capped / c))
            }
            return ((m - zt) + ls, m, ls)
        }
        let s = sumExp(z, v, m, store: true)
        let ls = VectorMath.log(s)
        let k = SIMD8<Float>(repeating: w / s)
        var j = 0
        while j + 8 <= v {
            let p = UnsafeMutableRawPointer(z + j)
            p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) * k, as: SIMD8<Float>.self)
            j += 8
        }
        while j < v { z[j] *= k[0]; j += 1 }
        z[t] -= w
        return ((m - zt) + ls, m, ls)
    }

    /// Gradient of one row from its logits and saved logsumexp parts:
    /// `out = w · (exp((z − max) − logSum) − onehot)`; `out` may be `z`. A target `t < 0`
    /// lies outside this row (another rank's vocabulary shard): no one-hot term.
    @inline(__always)
    static func gradientFromLSE(_ z: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ v: Int,
                                target t: Int, max m: Float, logSum ls: Float, weight w: Float) {
        let m8 = SIMD8<Float>(repeating: m), l8 = SIMD8<Float>(repeating: ls), w8 = SIMD8<Float>(repeating: w)
        var j = 0
        while j + 8 <= v {
            let e = VectorMath.exp((UnsafeRawPointer(z + j).loadUnaligned(as: SIMD8<Float>.self) - m8) - l8)
            UnsafeMutableRawPointer(out + j).storeBytes(of: e * w8, as: SIMD8<Float>.self)
            j += 8
        }
        while j < v { out[j] = VectorMath.exp((z[j] - m) - ls) * w; j += 1 }
        if t >= 0 { out[t] -= w }
    }

    /// ``gradientFromLSE(_:_:_:target:max:logSum:weight:)`` of a softcapped row, in place:
    /// `z ← w · (exp((ĉ − max) − logSum) − onehot) · (1 − (ĉ/c)²)` where `z` holds ĉ.
    @inline(__always)
    static func softcappedGradientFromLSE(_ z: UnsafeMutablePointer<Float>, _ v: Int, target t: Int, max m: Float,
                                          logSum ls: Float, weight w: Float, softcap c: Float) {
        for j in 0..<v {
            let capped = z[j]
            var g = VectorMath.exp((capped - m) - ls) * w
            if j == t { g -= w }
            z[j] = g * (1 - (capped / c) * (capped / c))
        }
    }
}
