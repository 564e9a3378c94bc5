// Elementwise unary and binary ops, each followed by its pullback.
//
// Floating results keep the (promoted) input dtype; half types compute in
// Float32 and round once at the end. Unary float ops on integer input give Float32.

import Foundation

// MARK: - Kernels

extension Tensor {
    /// The dtype a float-valued op on this tensor returns.
    var floatResultDType: DType { dtype.isFloatingPoint ? dtype : .float32 }

    /// `f` applied to every element, computed in Float32.
    @inline(__always) func mapFloats(_ f: (Float) -> Float) -> Tensor {
        let x = float32Values(), n = count
        let out = Tensor.makeFloat(shape) { o in
            let p = x.floatPointer
            for i in 0..<n { o[i] = f(p[i]) }
        }
        return out.rounded(to: floatResultDType)
    }

    /// `f` applied eight elements at a time, in parallel over large tensors.
    func mapFloatsSIMD(_ f: (SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        let x = float32Values(), n = count
        let out = Tensor.makeFloat(shape) { o in
            let p = x.floatPointer
            let blocks = (n + 8191) / 8192
            Parallel.forEachBlock(count: blocks, minimumPerBlock: 4) { r in
                let lo = r.lowerBound * 8192, hi = min(n, r.upperBound * 8192)
                VectorMath.map(p + lo, o + lo, count: hi - lo, f)
            }
        }
        return out.rounded(to: floatResultDType)
    }

    /// `f(a, b)` with broadcasting, computed in Float32, result in `dtype`.
    @inline(__always) static func zipFloats(_ a: Tensor, _ b: Tensor, dtype: DType, _ f: (Float, Float) -> Float) throws -> Tensor {
        let shape = try broadcastShape(a.shape, b.shape)
        let x = a.float32Values(), y = b.float32Values()
        let px = x.floatPointer, py = y.floatPointer
        let n = elementCount(shape)
        let out = Tensor.makeFloat(shape) { o in
            if a.shape == b.shape {
                for i in 0..<n { o[i] = f(px[i], py[i]) }
            } else if b.count == 1 && a.shape == shape {
                let s = py[0]; for i in 0..<n { o[i] = f(px[i], s) }
            } else if a.count == 1 && b.shape == shape {
                let s = px[0]; for i in 0..<n { o[i] = f(s, py[i]) }
            } else {
                let st = [broadcastStrides(a.shape, to: shape), broadcastStrides(b.shape, to: shape)]
                forEachBroadcastRow(shape, st) { oo, offs, len, rs in
                    var ia = offs[0], ib = offs[1]
                    for j in 0..<len { o[oo + j] = f(px[ia], py[ib]); ia += rs[0]; ib += rs[1] }
                }
            }
        }
        return out.rounded(to: dtype)
    }

    /// `f(a, b)` with broadcasting, computed in Int64, result in `dtype`.
    static func zipInts(_ a: Tensor, _ b: Tensor, dtype: DType, _ f: (Int64, Int64) -> Int64) throws -> Tensor {
        let shape = try broadcastShape(a.shape, b.shape)
        let x = a.cast(to: .int64), y = b.cast(to: .int64)
        let px = x.int64Pointer, py = y.int64Pointer
        let out = Tensor.uninitialized(shape, dtype: .int64)
        let o = out.int64Pointer
        let st = [broadcastStrides(a.shape, to: shape), broadcastStrides(b.shape, to: shape)]
        forEachBroadcastRow(shape, st) { oo, offs, len, rs in
            var ia = offs[0], ib = offs[1]
            for j in 0..<len { o[oo + j] = f(px[ia], py[ib]); ia += rs[0]; ib += rs[1] }
        }
        return out.cast(to: dtype)
    }

    /// A rank-0 tensor holding `value`, typed so that it does not promote `other`
    /// (PyTorch's rule for Python scalars).
    static func scalarOperand(_ value: Double, like other: Tensor) -> Tensor {
        let integral = value.rounded() == value && Swift.abs(value) < 9e18
        let dt: DType = other.dtype.isFloatingPoint ? other.dtype
            : (integral && other.dtype != .bool ? other.dtype : (integral ? .int64 : .float32))
        return full([], value: value, dtype: dt)
    }

    /// The scalar operand of an arithmetic op: like ``scalarOperand(_:like:)``, except that
    /// with a half-type tensor it stays Float32 (the caller rounds the result once), as
    /// torch computes `half_tensor * 0.3` with the scalar in Float32, not rounded to the half type.
    static func arithmeticScalar(_ value: Double, like other: Tensor) -> Tensor {
        other.dtype == .float16 || other.dtype == .bfloat16 ? full([], value: value, dtype: .float32) : scalarOperand(value, like: other)
    }
}

// MARK: - Unary ops

extension Tensor {
    /// −x.
    public static prefix func - (x: Tensor) -> Tensor {
        if !x.dtype.isFloatingPoint {
            // Integer negation wraps like PyTorch's (no trap on Int64.min).
            return orUnchanged(x) { try zipInts(Tensor.zeros([], dtype: x.dtype), x, dtype: x.dtype, &-) }
        }
        return x.mapFloats { -$0 }.recording([x]) { g in [-g] }
    }

    /// eˣ (vectorised, see ``VectorMath/exp(_:)-(SIMD8<Float>)``).
    public func exp() -> Tensor {
        let y = mapFloatsSIMD(VectorMath.exp)
        let yf = y.float32Values()
        return y.recording([self]) { g in [try g * yf] }
    }

    /// Natural logarithm (vectorised); log 0 = −inf, log of a negative = NaN.
    public func log() -> Tensor {
        let y = mapFloatsSIMD(VectorMath.log)
        let x = self
        return y.recording([self]) { g in [try g / x.float32Values()] }
    }

    /// Hyperbolic tangent.
    public func tanh() -> Tensor {
        let y = mapFloats { Foundation.tanh($0) }
        let yf = y.float32Values()
        return y.recording([self]) { g in [try g * (1 - yf * yf)] }
    }

    /// Square root.
    public func sqrt() -> Tensor {
        let y = mapFloats { $0.squareRoot() }
        let yf = y.float32Values()
        return y.recording([self]) { g in [try g * 0.5 / yf] }
    }

    /// 1/√x.
    public func rsqrt() -> Tensor {
        let y = mapFloats { 1 / $0.squareRoot() }
        let yf = y.float32Values()
        return y.recording([self]) { g in [try g * (-0.5) * yf * yf * yf] }
    }

    /// Logistic sigmoid 1/(1+e⁻ˣ).
    public func sigmoid() -> Tensor {
        let y = mapFloats { 1 / (1 + Foundation.exp(-$0)) }
        let yf = y.float32Values()
        return y.recording([self]) { g in [try g * yf * (1 - yf)] }
    }

    /// SiLU (swish): x·σ(x).
    public func silu() -> Tensor {
        let y = mapFloats { $0 / (1 + Foundation.exp(-$0)) }
        let x = self
        return y.recording([self]) { g in
            let s = x.float32Values().mapFloats { 1 / (1 + Foundation.exp(-$0)) }
            return [try g * s * (1 + x.float32Values() * (1 - s))]
        }
    }

    /// xᵖ for a scalar exponent.
    public func pow(_ p: Float) -> Tensor {
        let y = mapFloats { Foundation.pow($0, p) }
        let x = self
        return y.recording([self]) { g in [try g * p * x.float32Values().mapFloats { Foundation.pow($0, p - 1) }] }
    }

    /// |x| (gradient sign(x), 0 at 0). Integers stay integers (|Int64.min| wraps to itself, as in torch).
    public func abs() -> Tensor {
        if !dtype.isFloatingPoint { return Tensor.orUnchanged(self) { try Tensor.maximum(self, -self) } }
        let y = mapFloats { Swift.abs($0) }
        let x = self
        return y.recording([self]) { g in [try g * x.float32Values().mapFloats { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }] }
    }
}

// MARK: - Binary ops

extension Tensor {
    /// Elementwise sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        let dt = DType.promoted(a.dtype, b.dtype)
        if !dt.isFloatingPoint { return try zipInts(a, b, dtype: dt, &+) }
        return try zipFloats(a, b, dtype: dt, +).recording([a, b]) { g in
            [try g.summed(toShape: a.shape), try g.summed(toShape: b.shape)]
        }
    }

    /// Elementwise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        let dt = DType.promoted(a.dtype, b.dtype)
        if !dt.isFloatingPoint { return try zipInts(a, b, dtype: dt, &-) }
        return try zipFloats(a, b, dtype: dt, -).recording([a, b]) { g in
            [try g.summed(toShape: a.shape), try (-g).summed(toShape: b.shape)]
        }
    }

    /// Elementwise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        let dt = DType.promoted(a.dtype, b.dtype)
        if !dt.isFloatingPoint { return try zipInts(a, b, dtype: dt, &*) }
        return try zipFloats(a, b, dtype: dt, *).recording([a, b]) { g in
            [try (g * b.detached()).summed(toShape: a.shape), try (g * a.detached()).summed(toShape: b.shape)]
        }
    }

    /// Elementwise true division with broadcasting (integers divide as floats, like PyTorch).
    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        var dt = DType.promoted(a.dtype, b.dtype)
        if !dt.isFloatingPoint { dt = .float32 }
        return try zipFloats(a, b, dtype: dt, /).recording([a, b]) { g in
            let bf = b.float32Values()
            return [try (g / bf).summed(toShape: a.shape),
                    try (-(g * a.float32Values()) / (bf * bf)).summed(toShape: b.shape)]
        }
    }

    /// Elementwise maximum (the gradient goes to `a` where `a >= b`).
    public static func maximum(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let dt = DType.promoted(a.dtype, b.dtype)
        if !dt.isFloatingPoint { return try zipInts(a, b, dtype: dt) { Swift.max($0, $1) } }
        let y = try zipFloats(a, b, dtype: dt) { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }
        return y.recording([a, b]) { g in
            let pick = try zipFloats(a, b, dtype: .float32) { $0 >= $1 ? 1 : 0 }
            return [try (g * pick).summed(toShape: a.shape), try (g * (1 - pick)).summed(toShape: b.shape)]
        }
    }

    /// Elementwise minimum (the gradient goes to `a` where `a <= b`).
    public static func minimum(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try -maximum(-a, -b)
    }

    // Scalars on either side never change the tensor's dtype class; a half-type result is
    // computed against the Float32 scalar and rounded once.
    public static func + (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try (a + arithmeticScalar(s, like: a)).rounded(to: a.dtype) } }
    public static func - (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try (a - arithmeticScalar(s, like: a)).rounded(to: a.dtype) } }
    public static func * (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try (a * arithmeticScalar(s, like: a)).rounded(to: a.dtype) } }
    public static func / (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try (a / arithmeticScalar(s, like: a)).rounded(to: a.dtype) } }
    public static func + (s: Double, a: Tensor) -> Tensor { orUnchanged(a) { try (arithmeticScalar(s, like: a) + a).rounded(to: a.dtype) } }
    public static func - (s: Double, a: Tensor) -> Tensor { orUnchanged(a) { try (arithmeticScalar(s, like: a) - a).rounded(to: a.dtype) } }
    public static func * (s: Double, a: Tensor) -> Tensor { orUnchanged(a) { try (arithmeticScalar(s, like: a) * a).rounded(to: a.dtype) } }
    public static func / (s: Double, a: Tensor) -> Tensor { orUnchanged(a) { try (arithmeticScalar(s, like: a) / a).rounded(to: a.dtype) } }
    @_disfavoredOverload public static func + (a: Tensor, s: Float) -> Tensor { a + Double(s) }
    @_disfavoredOverload public static func - (a: Tensor, s: Float) -> Tensor { a - Double(s) }
    @_disfavoredOverload public static func * (a: Tensor, s: Float) -> Tensor { a * Double(s) }
    @_disfavoredOverload public static func / (a: Tensor, s: Float) -> Tensor { a / Double(s) }
    @_disfavoredOverload public static func * (s: Float, a: Tensor) -> Tensor { Double(s) * a }
    @_disfavoredOverload public static func - (s: Float, a: Tensor) -> Tensor { Double(s) - a }

    /// A scalar always broadcasts, so these ops cannot fail; the fallback is unreachable.
    private static func orUnchanged(_ a: Tensor, _ body: () throws -> Tensor) -> Tensor {
        do { return try body() } catch { preconditionFailure("scalar broadcast failed: \(error)") }
    }
}

// MARK: - Comparisons and selection

infix operator .== : ComparisonPrecedence
infix operator .!= : ComparisonPrecedence
infix operator .< : ComparisonPrecedence
infix operator .<= : ComparisonPrecedence
infix operator .> : ComparisonPrecedence
infix operator .>= : ComparisonPrecedence

extension Tensor {
    static func compare(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Bool, _ fi: (Int64, Int64) -> Bool) throws -> Tensor {
        if !a.dtype.isFloatingPoint && !b.dtype.isFloatingPoint {
            return try zipInts(a, b, dtype: .bool) { fi($0, $1) ? 1 : 0 }
        }
        return try zipFloats(a, b, dtype: .float32) { f($0, $1) ? 1 : 0 }.cast(to: .bool)
    }

    /// Elementwise `a == b` as a Bool tensor.
    public static func .== (a: Tensor, b: Tensor) throws -> Tensor { try compare(a, b, ==, ==) }
    /// Elementwise `a != b` as a Bool tensor (NaN != NaN is true).
    public static func .!= (a: Tensor, b: Tensor) throws -> Tensor { try compare(a, b, !=, !=) }
    /// Elementwise `a < b` as a Bool tensor.
    public static func .< (a: Tensor, b: Tensor) throws -> Tensor { try compare(a, b, <, <) }
    /// Elementwise `a <= b` as a Bool tensor.
    public static func .<= (a: Tensor, b: Tensor) throws -> Tensor { try compare(a, b, <=, <=) }
    /// Elementwise `a > b` as a Bool tensor.
    public static func .> (a: Tensor, b: Tensor) throws -> Tensor { try compare(a, b, >, >) }
    /// Elementwise `a >= b` as a Bool tensor.
    public static func .>= (a: Tensor, b: Tensor) throws -> Tensor { try compare(a, b, >=, >=) }

    /// Elementwise `a == s`.
    public static func .== (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try a .== scalarOperand(s, like: a) } }
    /// Elementwise `a != s`.
    public static func .!= (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try a .!= scalarOperand(s, like: a) } }
    /// Elementwise `a < s`.
    public static func .< (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try a .< scalarOperand(s, like: a) } }
    /// Elementwise `a > s`.
    public static func .> (a: Tensor, s: Double) -> Tensor { orUnchanged(a) { try a .> scalarOperand(s, like: a) } }

    /// Elementwise selection: `a` where `condition` is true, else `b`, with broadcasting.
    ///
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when the three shapes do not broadcast.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let shape = try broadcastShape(condition.shape, try broadcastShape(a.shape, b.shape))
        let c = try condition.cast(to: .bool).expanded(to: shape)
        let ca = try a.detached().expanded(to: shape), cb = try b.detached().expanded(to: shape)
        let dt = DType.promoted(a.dtype, b.dtype)
        let mask = c.storage.bytes.assumingMemoryBound(to: UInt8.self)
        let n = elementCount(shape)
        if !dt.isFloatingPoint {
            let x = ca.cast(to: .int64), y = cb.cast(to: .int64)
            let out = Tensor.uninitialized(shape, dtype: .int64)
            for i in 0..<n { out.int64Pointer[i] = mask[i] != 0 ? x.int64Pointer[i] : y.int64Pointer[i] }
            return out.cast(to: dt)
        }
        let x = ca.float32Values(), y = cb.float32Values()
        let out = Tensor.makeFloat(shape) { o in
            for i in 0..<n { o[i] = mask[i] != 0 ? x.floatPointer[i] : y.floatPointer[i] }
        }.rounded(to: dt)
        let keep = c.cast(to: .float32)
        return out.recording([a, b]) { g in
            [try (g * keep).summed(toShape: a.shape), try (g * (1 - keep)).summed(toShape: b.shape)]
        }
    }
}
