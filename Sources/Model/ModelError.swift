// The errors of the model layer: configurations and weights that do not fit.

/// An error in a model configuration or its weights, naming the offending value.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    /// What was wrong, with the value.
    public let message: String
    /// An error carrying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
