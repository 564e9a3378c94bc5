// The group of one: every collective is the identity (or a copy), so code written for
// N ranks runs unchanged in a plain process, without mpirun.

import Foundation

/// A communicator of size 1.
///
/// Collectives return their input; a message sent to rank 0 waits in a mailbox until
/// received (a receive with nothing waiting throws instead of blocking forever, since no
/// other rank could ever send it).
public final class SingleProcessCommunicator: Communicator, @unchecked Sendable {
    private let lock = NSLock()
    private var mailbox: [Int: [[Float]]] = [:]
    private var byteMailbox: [Int: [[UInt8]]] = [:]

    /// The group of this process alone.
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func split(color: Int, key: Int) throws -> any Communicator {
        guard color >= 0 else { throw DistributedError("split colour must be >= 0, got \(color)") }
        return SingleProcessCommunicator()
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws {}

    public func allGather(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws {
        try requireCount(output.count, input.count, "all-gather output")
        if let source = input.baseAddress, let target = output.baseAddress, source != UnsafePointer(target) {
            target.update(from: source, count: input.count)
        }
    }

    public func reduceScatter(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>,
                              _ operation: ReduceOperation) throws {
        try requireCount(input.count, output.count, "reduce-scatter input")
        if let source = input.baseAddress, let target = output.baseAddress, source != UnsafePointer(target) {
            target.update(from: source, count: output.count)
        }
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws { try checkRank(root, "broadcast root") }

    public func broadcast(bytes: inout [UInt8], root: Int) throws { try checkRank(root, "broadcast root") }

    public func send(_ buffer: UnsafeBufferPointer<Float>, to destination: Int, tag: Int) throws {
        try checkRank(destination, "destination")
        lock.lock()
        defer { lock.unlock() }
        mailbox[tag, default: []].append(Array(buffer))
    }

    public func receive(into buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int) throws {
        try checkRank(source, "source")
        lock.lock()
        defer { lock.unlock() }
        guard var queue = mailbox[tag], !queue.isEmpty else {
            throw DistributedError("receive from rank 0 with tag \(tag): nothing was sent, and no other rank exists")
        }
        let message = queue.removeFirst()
        mailbox[tag] = queue
        guard message.count == buffer.count else {
            throw DistributedError("receive with tag \(tag) expects \(buffer.count) elements, the message has \(message.count)")
        }
        for (i, x) in message.enumerated() { buffer[i] = x }
    }

    public func send(bytes: [UInt8], to destination: Int, tag: Int) throws {
        try checkRank(destination, "destination")
        lock.lock()
        defer { lock.unlock() }
        byteMailbox[tag, default: []].append(bytes)
    }

    public func startSend(bytes: [UInt8], to destination: Int, tag: Int) throws -> any PendingSend {
        try send(bytes: bytes, to: destination, tag: tag)
        return CompletedSend()
    }

    public func receiveBytes(from source: Int, tag: Int) throws -> [UInt8] {
        try checkRank(source, "source")
        lock.lock()
        defer { lock.unlock() }
        guard var queue = byteMailbox[tag], !queue.isEmpty else {
            throw DistributedError("receive from rank 0 with tag \(tag): nothing was sent, and no other rank exists")
        }
        let message = queue.removeFirst()
        byteMailbox[tag] = queue
        return message
    }

    public func barrier() throws {}

    public func abort(code: Int32) -> Never { exit(code) }

    private func requireCount(_ actual: Int, _ expected: Int, _ what: String) throws {
        guard actual == expected else { throw DistributedError("\(what) has \(actual) elements, expected \(expected) (one rank)") }
    }
}

/// A send that completed when it started (the mailbox holds a copy).
final class CompletedSend: PendingSend {
    func isComplete() throws -> Bool { true }
    func wait() throws {}
}
