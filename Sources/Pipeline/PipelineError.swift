// The error of an invalid pipeline request.

/// An invalid pipeline request (sizes, schedules, partitions, batches). The message names the values.
public struct PipelineError: Error, Equatable, CustomStringConvertible {
    /// What went wrong.
    public let message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
