// The Tensor value type: a runtime dtype, a shape, contiguous row-major
// storage shared copy-on-write, and an optional autograd node.

/// A scalar type that can fill or be read out of a ``Tensor``.
public protocol TensorScalar: Sendable {
    /// The dtype a tensor built from these scalars gets.
    static var dtype: DType { get }
    /// The value as Float32 (integers convert, Bool is 0 or 1).
    var floatValue: Float { get }
    /// The value as Int64 (floats by the one rule of ``Tensor/cast(to:)``: truncation
    /// toward zero, NaN gives 0, ±inf and out-of-range values saturate).
    var int64Value: Int64 { get }
    /// Builds the scalar from a Float32 (integers by the same rule as `int64Value`).
    init(floatValue: Float)
    /// Builds the scalar from an Int64.
    init(int64Value: Int64)
}

extension Float: TensorScalar {
    public static var dtype: DType { .float32 }
    public var floatValue: Float { self }
    public var int64Value: Int64 { Float.int64(self) }
    public init(floatValue: Float) { self = floatValue }
    public init(int64Value: Int64) { self = Float(int64Value) }
}

extension Double: TensorScalar {
    /// Doubles are stored as Float32: there is no float64 dtype.
    public static var dtype: DType { .float32 }
    public var floatValue: Float { Float(self) }
    public var int64Value: Int64 { Double.int64(self) }
    public init(floatValue: Float) { self = Double(floatValue) }
    public init(int64Value: Int64) { self = Double(int64Value) }
}

extension Float16: TensorScalar {
    public static var dtype: DType { .float16 }
    public var floatValue: Float { Float(self) }
    public var int64Value: Int64 { Float.int64(Float(self)) }
    public init(floatValue: Float) { self = Float16(floatValue) }
    public init(int64Value: Int64) { self = Float16(Float(int64Value)) }
}

extension Int32: TensorScalar {
    public static var dtype: DType { .int32 }
    public var floatValue: Float { Float(self) }
    public var int64Value: Int64 { Int64(self) }
    public init(floatValue: Float) { self = Float.int32(floatValue) }
    public init(int64Value: Int64) { self = Int32(truncatingIfNeeded: int64Value) }
}

extension Int64: TensorScalar {
    public static var dtype: DType { .int64 }
    public var floatValue: Float { Float(self) }
    public var int64Value: Int64 { self }
    public init(floatValue: Float) { self = Float.int64(floatValue) }
    public init(int64Value: Int64) { self = int64Value }
}

extension Int: TensorScalar {
    public static var dtype: DType { .int64 }
    public var floatValue: Float { Float(self) }
    public var int64Value: Int64 { Int64(self) }
    public init(floatValue: Float) { self = Int(Float.int64(floatValue)) }
    public init(int64Value: Int64) { self = Int(int64Value) }
}

extension Bool: TensorScalar {
    public static var dtype: DType { .bool }
    public var floatValue: Float { self ? 1 : 0 }
    public var int64Value: Int64 { self ? 1 : 0 }
    public init(floatValue: Float) { self = floatValue != 0 }
    public init(int64Value: Int64) { self = int64Value != 0 }
}

// The one float → integer rule, used by casts, tensor construction and read-back alike.
// PyTorch truncates toward zero and leaves NaN, inf and out-of-range values undefined;
// Swift's `Int64(_:)` traps on them. Here they are defined and never trap: truncation
// toward zero, NaN → 0, values at or beyond the type's range (±inf included) → its
// minimum or maximum.

extension Float {
    /// Float → Int64: truncation toward zero; NaN gives 0; out-of-range (±inf included) saturates.
    @inlinable
    static func int64(_ x: Float) -> Int64 {
        if x.isNaN { return 0 }
        if x >= 0x1p63 { return .max }
        if x <= -0x1p63 { return .min }
        return Int64(x.rounded(.towardZero))
    }

    /// Float → Int32 by the same rule: truncation toward zero; NaN gives 0; out-of-range saturates.
    @inlinable
    static func int32(_ x: Float) -> Int32 { Int32(clamping: int64(x)) }
}

extension Double {
    /// Double → Int64: truncation toward zero; NaN gives 0; out-of-range (±inf included) saturates.
    @inlinable
    static func int64(_ x: Double) -> Int64 {
        if x.isNaN { return 0 }
        if x >= 0x1p63 { return .max }
        if x <= -0x1p63 { return .min }
        return Int64(x.rounded(.towardZero))
    }
}

/// An n-dimensional array with a runtime element type and reverse-mode autograd.
///
/// Tensors are values: copies share storage until one of them is written
/// through ``withUnsafeMutableBytes(_:)``, which copies first when the storage
/// is shared. Every operation returns a new tensor.
public struct Tensor: @unchecked Sendable {
    /// The element type.
    public let dtype: DType
    /// The extent of each axis, outermost first.
    public let shape: [Int]
    var storage: TensorStorage
    var gradNode: GradNode?

    init(storage: TensorStorage, shape: [Int], dtype: DType) {
        precondition(storage.byteCount == elementCount(shape) * dtype.byteSize, "storage size does not match shape")
        self.storage = storage
        self.shape = shape
        self.dtype = dtype
    }

    /// Number of elements.
    public var count: Int { elementCount(shape) }
    /// Number of axes.
    public var rank: Int { shape.count }

    // MARK: Construction

    /// A tensor of zeros of the given shape and dtype.
    public init(zeros shape: [Int], dtype: DType = .float32) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in \(shape)")
        self.init(storage: TensorStorage(byteCount: elementCount(shape) * dtype.byteSize), shape: shape, dtype: dtype)
    }

    /// Uninitialised storage, for kernels that write every element.
    @_spi(Kernels) public static func uninitialized(_ shape: [Int], dtype: DType) -> Tensor {
        Tensor(storage: TensorStorage(byteCount: elementCount(shape) * dtype.byteSize, zeroed: false), shape: shape, dtype: dtype)
    }

    /// A tensor holding `values` with the given shape.
    ///
    /// - Parameters:
    ///   - values: elements in row-major order.
    ///   - shape: the shape; its element count must equal `values.count`.
    ///   - dtype: the element type (defaults to the scalar's natural dtype).
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when the counts differ or an extent is negative.
    public init<S: TensorScalar>(_ values: [S], shape: [Int], dtype: DType? = nil) throws {
        guard shape.allSatisfy({ $0 >= 0 }), elementCount(shape) == values.count else {
            throw TensorError.shapeMismatch("\(values.count) values do not fill shape \(shape)")
        }
        self.init(validated: values, shape: shape, dtype: dtype)
    }

    /// Builds from values whose count the caller has checked against `shape`.
    init<S: TensorScalar>(validated values: [S], shape: [Int], dtype: DType?) {
        let dt = dtype ?? S.dtype
        self.init(storage: TensorStorage(byteCount: values.count * dt.byteSize, zeroed: false), shape: shape, dtype: dt)
        let raw = storage.bytes
        if dt == S.dtype && MemoryLayout<S>.stride == dt.byteSize && S.self != Bool.self {
            // Same layout (Float, Float16, Int32, Int64): one copy, no per-element conversion.
            values.withUnsafeBytes { if let base = $0.baseAddress { raw.copyMemory(from: base, byteCount: $0.count) } }
        } else if dt.isFloatingPoint {
            for (i, v) in values.enumerated() { storeFloat(v.floatValue, raw, i, dt) }
        } else if S.dtype.isFloatingPoint {
            // Floats become integers by the rule of `cast(to:)` (saturating, Bool is `!= 0`),
            // through Int64 so that a Double keeps its integer precision.
            for (i, v) in values.enumerated() {
                let n: Int64 = switch dt {
                case .bool: v.floatValue != 0 ? 1 : 0
                case .int32: Int64(Int32(clamping: v.int64Value))
                default: v.int64Value
                }
                storeInt(n, raw, i, dt)
            }
        } else {
            for (i, v) in values.enumerated() { storeInt(v.int64Value, raw, i, dt) }
        }
    }

    /// A 1-D tensor holding `values`.
    public init<S: TensorScalar>(_ values: [S], dtype: DType? = nil) {
        self.init(validated: values, shape: [values.count], dtype: dtype)
    }

    /// A rank-0 tensor holding one scalar.
    public init<S: TensorScalar>(scalar: S, dtype: DType? = nil) {
        self.init(validated: [scalar], shape: [], dtype: dtype)
    }

    /// A tensor of ones.
    public static func ones(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        full(shape, value: 1, dtype: dtype)
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        Tensor(zeros: shape, dtype: dtype)
    }

    /// A tensor with every element equal to `value` (converted to `dtype`).
    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32) -> Tensor {
        let t = Tensor.uninitialized(shape, dtype: dtype)
        let n = t.count, raw = t.storage.bytes
        switch dtype {
        case .float32:
            raw.bindMemory(to: Float.self, capacity: n).update(repeating: Float(value), count: n)
        case .float16, .bfloat16:
            let bits = dtype == .float16 ? float16Bits(Float(value)) : bfloat16Bits(Float(value))
            raw.bindMemory(to: UInt16.self, capacity: n).update(repeating: bits, count: n)
        case .int32:
            raw.bindMemory(to: Int32.self, capacity: n).update(repeating: Int32(clamping: Double.int64(value)), count: n)
        case .int64:
            raw.bindMemory(to: Int64.self, capacity: n).update(repeating: Double.int64(value), count: n)
        case .bool:
            raw.bindMemory(to: UInt8.self, capacity: n).update(repeating: value != 0 ? 1 : 0, count: n)
        }
        return t
    }

    /// `[start, start + step, …]` up to but excluding `end`.
    ///
    /// - Throws: ``TensorError/invalidArgument(_:)`` when `step` is 0.
    public static func arange(_ start: Int = 0, _ end: Int, step: Int = 1, dtype: DType = .int64) throws -> Tensor {
        guard step != 0 else { throw TensorError.invalidArgument("arange: step must be non-zero") }
        let n = Swift.max(0, (end - start + step - (step > 0 ? 1 : -1)) / step)
        return try Tensor((0..<n).map { Int64(start + $0 * step) }, shape: [n], dtype: dtype)
    }

    // MARK: Read-back

    /// All elements, converted to `S`, in row-major order.
    public func scalars<S: TensorScalar>(as: S.Type = S.self) -> [S] {
        let n = count, raw = storage.bytes
        if dtype.isFloatingPoint {
            return (0..<n).map { S(floatValue: loadFloat(raw, $0, dtype)) }
        }
        return (0..<n).map { S(int64Value: loadInt(raw, $0, dtype)) }
    }

    /// The single element of a one-element tensor.
    ///
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when the tensor has more or fewer than one element.
    public func item<S: TensorScalar>(as: S.Type = S.self) throws -> S {
        guard count == 1 else { throw TensorError.shapeMismatch("item() needs exactly one element, shape is \(shape)") }
        return scalars(as: S.self)[0]
    }

    /// Elements as Float32.
    public var floats: [Float] { scalars(as: Float.self) }

    /// Elements as Int64.
    public var int64s: [Int64] { scalars(as: Int64.self) }

    // MARK: Raw access

    /// Calls `body` with the raw bytes of the storage.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.bytes, count: storage.byteCount))
    }

    /// Calls `body` with writable raw bytes, copying the storage first if it is shared.
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return try body(UnsafeMutableRawBufferPointer(start: storage.bytes, count: storage.byteCount))
    }

    /// Whether two tensors share one storage block (copy-on-write has not split them).
    public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }

    /// Builds a tensor from raw little-endian bytes of `dtype` elements.
    ///
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when the byte count does not match the shape.
    public init(rawBytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError.shapeMismatch("negative extent in \(shape)") }
        let (n, o) = shape.reduce((1, false)) { acc, d in
            let (p, of) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || of)
        }
        let (bytes, o2) = n.multipliedReportingOverflow(by: dtype.byteSize)
        guard !o, !o2, bytes == rawBytes.count else {
            throw TensorError.shapeMismatch("\(rawBytes.count) bytes do not fill \(dtype) shape \(shape)")
        }
        self.init(storage: TensorStorage(byteCount: bytes, zeroed: false), shape: shape, dtype: dtype)
        if bytes > 0 { storage.bytes.copyMemory(from: rawBytes.baseAddress!, byteCount: bytes) }
    }
}

// MARK: - Element load/store on raw storage

@inline(__always)
func loadFloat(_ raw: UnsafeMutableRawPointer, _ i: Int, _ dt: DType) -> Float {
    switch dt {
    case .float32: raw.load(fromByteOffset: i * 4, as: Float.self)
    case .float16: float(fromFloat16Bits: raw.load(fromByteOffset: i * 2, as: UInt16.self))
    case .bfloat16: float(fromBFloat16Bits: raw.load(fromByteOffset: i * 2, as: UInt16.self))
    case .int32: Float(raw.load(fromByteOffset: i * 4, as: Int32.self))
    case .int64: Float(raw.load(fromByteOffset: i * 8, as: Int64.self))
    case .bool: raw.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
    }
}

@inline(__always)
func storeFloat(_ v: Float, _ raw: UnsafeMutableRawPointer, _ i: Int, _ dt: DType) {
    switch dt {
    case .float32: raw.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
    case .float16: raw.storeBytes(of: float16Bits(v), toByteOffset: i * 2, as: UInt16.self)
    case .bfloat16: raw.storeBytes(of: bfloat16Bits(v), toByteOffset: i * 2, as: UInt16.self)
    case .int32: raw.storeBytes(of: Float.int32(v), toByteOffset: i * 4, as: Int32.self)
    case .int64: raw.storeBytes(of: Float.int64(v), toByteOffset: i * 8, as: Int64.self)
    case .bool: raw.storeBytes(of: UInt8(v != 0 ? 1 : 0), toByteOffset: i, as: UInt8.self)
    }
}

@inline(__always)
func loadInt(_ raw: UnsafeMutableRawPointer, _ i: Int, _ dt: DType) -> Int64 {
    switch dt {
    case .int32: Int64(raw.load(fromByteOffset: i * 4, as: Int32.self))
    case .int64: raw.load(fromByteOffset: i * 8, as: Int64.self)
    case .bool: Int64(raw.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0)
    default: Float.int64(loadFloat(raw, i, dt))
    }
}

@inline(__always)
func storeInt(_ v: Int64, _ raw: UnsafeMutableRawPointer, _ i: Int, _ dt: DType) {
    switch dt {
    case .int32: raw.storeBytes(of: Int32(truncatingIfNeeded: v), toByteOffset: i * 4, as: Int32.self)
    case .int64: raw.storeBytes(of: v, toByteOffset: i * 8, as: Int64.self)
    case .bool: raw.storeBytes(of: UInt8(v != 0 ? 1 : 0), toByteOffset: i, as: UInt8.self)
    default: storeFloat(Float(v), raw, i, dt)
    }
}
