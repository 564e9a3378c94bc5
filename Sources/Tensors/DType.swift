// Element types and the conversions between them.
//
// Float16 and BFloat16 are storage formats: every kernel widens them to Float32,
// computes, and rounds the result back (round to nearest, ties to even).

/// The runtime element type of a ``Tensor``.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32, float16, bfloat16, int32, int64, bool

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float16, .bfloat16: 2
        case .int64: 8
        case .bool: 1
        }
    }

    /// Whether the type holds floating-point values.
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16: true
        default: false
        }
    }

    /// Whether the type holds integers (Bool excluded).
    public var isInteger: Bool { self == .int32 || self == .int64 }

    public var description: String { rawValue }

    /// The type PyTorch's promotion rules give to a binary op on `a` and `b`.
    ///
    /// Edge cases: float16 with bfloat16 promotes to float32 (as in PyTorch);
    /// any float with any integer gives the float; bool with anything gives the other.
    public static func promoted(_ a: DType, _ b: DType) -> DType {
        if a == b { return a }
        if a == .bool { return b }
        if b == .bool { return a }
        switch (a.isFloatingPoint, b.isFloatingPoint) {
        case (true, true):
            return .float32  // f32 with a half, or f16 with bf16
        case (true, false): return a
        case (false, true): return b
        case (false, false): return .int64
        }
    }
}

// MARK: - BFloat16 bit conversions

/// Rounds a Float32 to bfloat16 bits, ties to even; NaN stays a (quiet) NaN.
@inlinable
public func bfloat16Bits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
    let lsb = (bits >> 16) & 1
    let rounded = bits &+ 0x7FFF &+ lsb
    return UInt16(truncatingIfNeeded: rounded >> 16)
}

/// Widens bfloat16 bits to Float32 exactly.
@inlinable
public func float(fromBFloat16Bits b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}

/// Rounds a Float32 to IEEE binary16 bits (ties to even), using the native type.
@inlinable
public func float16Bits(_ x: Float) -> UInt16 {
    Float16(x).bitPattern
}

/// Widens IEEE binary16 bits to Float32 exactly.
@inlinable
public func float(fromFloat16Bits b: UInt16) -> Float {
    Float(Float16(bitPattern: b))
}
