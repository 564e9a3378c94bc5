// Conversions between dtypes, and the Float32 working copies kernels use.

extension Tensor {
    /// The values converted to `dtype` (bfloat16/float16 round to nearest even;
    /// floats to integers truncate toward zero, NaN gives 0, and values beyond the
    /// integer type's range, ±inf included, saturate to its minimum or maximum; anything
    /// to Bool is `!= 0`). Tensor construction and ``Tensor/scalars(as:)`` use the same rule.
    ///
    /// Differentiable between floating types: the gradient passes through unchanged.
    public func cast(to dtype: DType) -> Tensor {
        if dtype == self.dtype { return self }
        let n = count
        var out = Tensor.uninitialized(shape, dtype: dtype)
        let src = storage.bytes, dst = out.storage.bytes
        switch (self.dtype, dtype) {
        case (.float32, .bfloat16):
            let s = src.assumingMemoryBound(to: Float.self), d = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { d[i] = bfloat16Bits(s[i]) }
        case (.float32, .float16):
            let s = src.assumingMemoryBound(to: Float.self), d = dst.assumingMemoryBound(to: Float16.self)
            for i in 0..<n { d[i] = Float16(s[i]) }
        case (.bfloat16, .float32):
            let s = src.assumingMemoryBound(to: UInt16.self), d = dst.assumingMemoryBound(to: Float.self)
            for i in 0..<n { d[i] = float(fromBFloat16Bits: s[i]) }
        case (.float16, .float32):
            let s = src.assumingMemoryBound(to: Float16.self), d = dst.assumingMemoryBound(to: Float.self)
            for i in 0..<n { d[i] = Float(s[i]) }
        default:
            if dtype.isFloatingPoint || self.dtype.isFloatingPoint && dtype != .bool {
                for i in 0..<n { storeFloat(loadFloat(src, i, self.dtype), dst, i, dtype) }
            } else if dtype == .bool && self.dtype.isFloatingPoint {
                for i in 0..<n { dst.storeBytes(of: UInt8(loadFloat(src, i, self.dtype) != 0 ? 1 : 0), toByteOffset: i, as: UInt8.self) }
            } else {
                for i in 0..<n { storeInt(loadInt(src, i, self.dtype), dst, i, dtype) }
            }
        }
        if self.dtype.isFloatingPoint && dtype.isFloatingPoint {
            out = out.recording([self]) { g in [g] }
        }
        return out
    }

    /// A Float32 tensor with these values and no autograd history (shares storage when already Float32).
    @_spi(Kernels) public func float32Values() -> Tensor {
        dtype == .float32 ? detached() : detached().cast(to: .float32)
    }

    /// The storage as Float32 elements. Precondition: dtype is float32.
    @_spi(Kernels) public var floatPointer: UnsafeMutablePointer<Float> {
        precondition(dtype == .float32, "floatPointer on a \(dtype) tensor")
        return storage.bytes.assumingMemoryBound(to: Float.self)
    }

    /// The storage as Int64 elements. Precondition: dtype is int64.
    var int64Pointer: UnsafeMutablePointer<Int64> {
        precondition(dtype == .int64, "int64Pointer on a \(dtype) tensor")
        return storage.bytes.assumingMemoryBound(to: Int64.self)
    }

    /// Calls `body` with the elements as Float32 (converting a copy when needed).
    public func withFloatBuffer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let f = float32Values()
        return try body(UnsafeBufferPointer(start: f.floatPointer, count: f.count))
    }

    /// Calls `body` with the elements as Int64 (converting a copy when needed).
    public func withInt64Buffer<R>(_ body: (UnsafeBufferPointer<Int64>) throws -> R) rethrows -> R {
        let f = dtype == .int64 ? self : cast(to: .int64)
        return try body(UnsafeBufferPointer(start: f.int64Pointer, count: f.count))
    }

    /// A new Float32 tensor whose elements `fill` writes (all of them).
    @_spi(Kernels) public static func makeFloat(_ shape: [Int], _ fill: (UnsafeMutablePointer<Float>) throws -> Void) rethrows -> Tensor {
        let t = Tensor.uninitialized(shape, dtype: .float32)
        try fill(t.floatPointer)
        return t
    }

    /// A Float32 result converted to `dtype` when that is a half type.
    @_spi(Kernels) public func rounded(to dtype: DType) -> Tensor {
        dtype == .float32 || !dtype.isFloatingPoint ? self : cast(to: dtype)
    }

    /// Writes rows `rows` of this tensor, read as `[*, rowLength]`, into `out` as Float32.
    @_spi(Kernels) public func convertRows(_ rows: Range<Int>, rowLength: Int, into out: UnsafeMutablePointer<Float>) {
        let lo = rows.lowerBound * rowLength, n = rows.count * rowLength
        let raw = storage.bytes
        switch dtype {
        case .float32:
            out.update(from: raw.assumingMemoryBound(to: Float.self) + lo, count: n)
        case .bfloat16:
            let s = raw.assumingMemoryBound(to: UInt16.self) + lo
            for i in 0..<n { out[i] = float(fromBFloat16Bits: s[i]) }
        case .float16:
            let s = raw.assumingMemoryBound(to: Float16.self) + lo
            for i in 0..<n { out[i] = Float(s[i]) }
        default:
            for i in 0..<n { out[i] = loadFloat(raw, lo + i, dtype) }
        }
    }
}
