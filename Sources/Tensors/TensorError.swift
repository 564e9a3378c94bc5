/// An error in caller input to a tensor operation. The message names the
/// offending shapes or values.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Shapes that do not fit the operation.
    case shapeMismatch(String)
    /// A value outside the domain of the operation (axis, index, size...).
    case invalidArgument(String)
    /// An element type the operation does not accept.
    case unsupportedDType(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let m): "shape mismatch: \(m)"
        case .invalidArgument(let m): "invalid argument: \(m)"
        case .unsupportedDType(let m): "unsupported dtype: \(m)"
        }
    }
}

/// Normalises a possibly negative axis for a tensor of rank `rank`.
///
/// A rank-0 tensor has no axis to index, so every axis is out of range for it,
/// unless `scalarAllowed` (reductions, which like torch accept 0 and −1 on a
/// scalar and treat it as one element).
func normalizedAxis(_ axis: Int, rank: Int, op: String, scalarAllowed: Bool = false) throws -> Int {
    let r = scalarAllowed ? max(rank, 1) : rank
    let a = axis < 0 ? axis + r : axis
    guard a >= 0, a < r else {
        throw TensorError.invalidArgument("\(op): axis \(axis) is out of range for rank \(rank)")
    }
    return a
}

/// The number of elements of a shape.
@inlinable
func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }
