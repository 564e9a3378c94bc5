// The errors of the training layer: options, data that does not fill a batch, checkpoints.

/// An error in training options, data or checkpoints, naming the offending value.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    /// What was wrong, with the value.
    public let message: String
    /// An error carrying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
