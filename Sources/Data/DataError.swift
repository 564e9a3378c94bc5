// The errors of the data path: corpus parameters, data files, packing, splits.

/// Why data could not be generated, read, packed or split. Each message names
/// the offending value (and file, document, offset where there is one).
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// A parameter outside its domain (a size, a fraction, a count).
    case invalidArgument(String)
    /// A file that could not be opened or read.
    case unreadableFile(String)
    /// A file whose contents do not have the expected format.
    case malformedFile(String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(String)

    /// A one-line summary naming the case and its message.
    public var description: String {
        switch self {
        case .invalidArgument(let m): "invalid argument: \(m)"
        case .unreadableFile(let m): "unreadable file: \(m)"
        case .malformedFile(let m): "malformed file: \(m)"
        case .tokenOutOfRange(let m): "token out of range: \(m)"
        }
    }
}
