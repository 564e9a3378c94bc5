// A group of processes that exchange Float32 buffers: the collectives of data,
// pipeline, tensor and context parallelism, and point-to-point messages.
//
// Letters: N ranks in the group, r this rank, n elements of a buffer.
// Every collective is called by every rank of the group, in the same order, with
// buffers of the agreed sizes (MPI's rule); a rank that deviates hangs the group,
// so callers agree on sizes before they call (the options check at start-up).
//
// Cost model (ring algorithms, β seconds per byte): all-reduce moves 2(N−1)/N · 4n
// bytes per rank, all-gather and reduce-scatter (N−1)/N · 4n.

/// How a reduction combines the ranks' values, element by element.
public enum ReduceOperation: String, Sendable, CaseIterable {
    /// x₀ + x₁ + … (in an order the engine chooses: results may differ in the last bits
    /// from a sequential sum).
    case sum
    /// The largest value.
    case max
    /// The smallest value.
    case min
}

/// A failure of the communication engine or a misuse of a communicator, naming the
/// operation and the values involved.
public struct DistributedError: Error, CustomStringConvertible, Equatable {
    /// What failed, with the values.
    public let message: String
    /// An error carrying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// A group of ranks that communicate (MPI's communicator).
///
/// Buffers are Float32 and operated on in place where the engine allows; every
/// call of a collective must be made by all ranks of the group in the same order.
public protocol Communicator: AnyObject, Sendable {
    /// This process's index in the group, `0 ..< size`.
    var rank: Int { get }
    /// The number of ranks N.
    var size: Int { get }

    /// The sub-group of the ranks that pass the same `color`, ordered by `key` (then by
    /// rank). Every rank of this group must call it.
    /// - Throws: ``DistributedError`` for a negative colour or an engine failure.
    func split(color: Int, key: Int) throws -> any Communicator

    /// Replaces `buffer` on every rank by the element-wise reduction over the ranks.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws

    /// `output[r·n ..< (r+1)·n]` ← rank r's `input` (n elements) for every r; output has N·n elements.
    func allGather(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws

    /// Reduces the ranks' `input` (N·n elements) element-wise and leaves block r
    /// (`n` elements) of the result in rank r's `output`.
    func reduceScatter(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>,
                       _ operation: ReduceOperation) throws

    /// Copies `root`'s `buffer` into every rank's `buffer`.
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws

    /// Copies `root`'s bytes to every rank (sizes may differ beforehand: the count travels first).
    func broadcast(bytes: inout [UInt8], root: Int) throws

    /// Sends `buffer` to rank `destination` with `tag` (returns once the buffer may be reused).
    func send(_ buffer: UnsafeBufferPointer<Float>, to destination: Int, tag: Int) throws

    /// Receives exactly `buffer.count` elements from rank `source` with `tag`, blocking.
    func receive(into buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int) throws

    /// Sends `bytes` to rank `destination` with `tag` (any length; the receiver learns it).
    func send(bytes: [UInt8], to destination: Int, tag: Int) throws

    /// Starts sending `bytes` to rank `destination` with `tag` and returns at once; the
    /// message is on its way once the returned request's ``PendingSend/wait()`` returns.
    /// (A blocking send of a large message waits for the matching receive, which can
    /// deadlock two ranks that send to each other first; this never does.)
    func startSend(bytes: [UInt8], to destination: Int, tag: Int) throws -> any PendingSend

    /// Receives the next byte message from rank `source` with `tag`, whatever its length, blocking.
    func receiveBytes(from source: Int, tag: Int) throws -> [UInt8]

    /// Returns when every rank of the group has called it.
    func barrier() throws

    /// Ends every process of the whole job with `code` (MPI_Abort); never returns.
    func abort(code: Int32) -> Never
}

/// A send that was started and may not have completed.
public protocol PendingSend: AnyObject {
    /// Whether the send has completed (the bytes may be released); never blocks.
    func isComplete() throws -> Bool
    /// Blocks until the send has completed.
    func wait() throws
}

extension Communicator {
    /// ``allReduce(_:_:)`` on an array.
    public func allReduce(_ values: inout [Float], _ operation: ReduceOperation) throws {
        try values.withUnsafeMutableBufferPointer { try allReduce($0, operation) }
    }

    /// ``allGather(_:into:)`` of an array: N · `values.count` elements, rank order.
    public func allGather(_ values: [Float]) throws -> [Float] {
        var out = [Float](repeating: 0, count: values.count * size)
        try values.withUnsafeBufferPointer { input in
            try out.withUnsafeMutableBufferPointer { try allGather(input, into: $0) }
        }
        return out
    }

    /// ``reduceScatter(_:into:_:)`` of an array whose count is a multiple of N.
    /// - Throws: ``DistributedError`` when `values.count` is not a multiple of N.
    public func reduceScatter(_ values: [Float], _ operation: ReduceOperation) throws -> [Float] {
        guard values.count % size == 0 else {
            throw DistributedError("reduce-scatter of \(values.count) elements over \(size) ranks: not a multiple")
        }
        var out = [Float](repeating: 0, count: values.count / size)
        try values.withUnsafeBufferPointer { input in
            try out.withUnsafeMutableBufferPointer { try reduceScatter(input, into: $0, operation) }
        }
        return out
    }

    /// ``broadcast(_:root:)`` on an array.
    public func broadcast(_ values: inout [Float], root: Int) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Whether every rank holds the same `bytes` (compared with rank 0's copy, then agreed
    /// by an all-reduce so every rank returns the same answer).
    public func allAgree(on bytes: [UInt8]) throws -> Bool {
        var root = bytes
        try broadcast(bytes: &root, root: 0)
        var mismatch: [Float] = [root == bytes ? 0 : 1]
        try allReduce(&mismatch, .max)
        return mismatch[0] == 0
    }

    /// Throws unless `rank` is in `0 ..< size`.
    func checkRank(_ other: Int, _ role: String) throws {
        guard other >= 0 && other < size else {
            throw DistributedError("\(role) rank \(other) is outside 0..<\(size)")
        }
    }
}
