// A Communicator serving as the group of a vocabulary-parallel loss (LossGroup) or of
// context-parallel attention (SequenceGroup): those modules define the collectives they
// need without depending on MPI.

import Losses
import NN

/// The ``Losses/LossGroup`` and ``NN/SequenceGroup`` of a ``Communicator``: the ranks of one
/// tensor- or context-parallel group.
/// Used by one thread at a time (the counts are not synchronised).
public final class CommunicatorGroup: LossGroup, SequenceGroup, @unchecked Sendable {
    /// The communicator the collectives run on (immutable).
    public let communicator: any Communicator

    /// The group of `communicator`'s ranks, in its rank order.
    public init(_ communicator: any Communicator) { self.communicator = communicator }

    /// Bytes this rank handed to the collectives so far (all-gather inputs, all-reduce buffers).
    public private(set) var bytes = 0
    /// Collectives called so far.
    public private(set) var calls = 0

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    public func allGather(_ values: [Float]) throws -> [Float] {
        bytes += 4 * values.count
        calls += 1
        return try communicator.allGather(values)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        bytes += 4 * buffer.count
        calls += 1
        try communicator.allReduce(buffer, .sum)
    }

    public func reduceScatterSum(_ values: [Float]) throws -> [Float] {
        bytes += 4 * values.count
        calls += 1
        return try communicator.reduceScatter(values, .sum)
    }

    /// Starts the byte and call counts again.
    public func resetCounts() {
        bytes = 0
        calls = 0
    }
}
