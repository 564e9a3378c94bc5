// A Communicator serving as the group of a vocabulary-parallel loss: the loss module
// defines the two collectives it needs (LossGroup) without depending on MPI.

import Losses

/// The ``Losses/LossGroup`` of a ``Communicator``: the ranks of one tensor-parallel group.
public final class CommunicatorLossGroup: LossGroup, @unchecked Sendable {
    /// The communicator the collectives run on (immutable).
    public let communicator: any Communicator

    /// The group of `communicator`'s ranks, in its rank order.
    public init(_ communicator: any Communicator) { self.communicator = communicator }

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    public func allGather(_ values: [Float]) throws -> [Float] { try communicator.allGather(values) }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try communicator.allReduce(buffer, .sum) }
}
