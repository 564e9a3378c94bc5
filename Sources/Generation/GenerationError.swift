// The error of invalid generation input (prompt, options).

/// An error in generation input (prompt, options), naming the offending value.
public struct GenerationError: Error, CustomStringConvertible, Equatable {
    /// What was wrong, with the value.
    public let message: String
    /// An error carrying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
