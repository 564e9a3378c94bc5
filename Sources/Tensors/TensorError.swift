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
func normalizedAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < max(rank, 1) || (rank == 0 && a == 0) else {
        throw TensorError.invalidArgument("\(op): axis \(axis) is out of range for rank \(rank)")
    }
    return a
}

/// The number of elements of a shape.
@inlinable
func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }
