// The error of the MTP functions: a kind to switch on and a message naming the values.

/// An invalid input to an MTP function: one case per kind a caller may handle, each
/// carrying a message that names the offending values.
public enum MTPError: Error, Equatable, CustomStringConvertible {
    /// A tensor whose shape or rank does not fit (labels, `seqIdx`, `cuSeqlens`, targets).
    case shapeMismatch(String)
    /// A tensor of the wrong element type (integer labels, `seqIdx`, `cuSeqlens`).
    case invalidDType(String)
    /// A tensor the call needs and did not get (an output's logits or hidden states,
    /// a case file's labels).
    case missingTensor(String)
    /// A list whose length is not the number of MTP depths.
    case depthCountMismatch(String)
    /// An argument outside its domain or a combination the SPEC forbids (both or neither
    /// per-depth outputs, targets with packing, a dim or depth out of range, an unknown
    /// case-file value).
    case invalidArgument(String)

    /// What went wrong, naming shapes and values.
    public var message: String {
        switch self {
        case .shapeMismatch(let m), .invalidDType(let m), .missingTensor(let m), .depthCountMismatch(let m),
             .invalidArgument(let m): m
        }
    }

    /// The message alone (the SPEC's wording, which error outputs and fixtures match).
    public var description: String { message }
}
