// How stages talk: activations go forward (stage s → s+1), gradients go backward
// (stage s+1 → s), each message a set of named tensors tagged with its
// microbatch. The schedules see only the `StageTransport` protocol, so a
// multi-process transport (MPI, sockets) can replace the in-process channels.

import Foundation
import Tensors

/// What one stage sends to a neighbour for one microbatch.
///
/// Tensors travel without autograd history (the receiver makes its own leaves), so a
/// transport may serialise them, e.g. as safetensors.
public struct StageMessage: Sendable {
    /// The direction of a message.
    public enum Kind: String, Sendable {
        /// Stage s → s+1: a stage's outputs (hidden states, MTP embeddings, positions, seqIdx).
        case activation
        /// Stage s+1 → s: the gradients of those outputs.
        case gradient
    }

    /// Activation or gradient.
    public var kind: Kind
    /// The microbatch this message belongs to.
    public var microbatch: Int
    /// The payload by name. The causal-LM stages send `hidden`, `positions`, `seq_idx` and
    /// `mtp_embeddings.{k}` for each MTP depth k (activations), and the gradients of the
    /// differentiable ones under the same names.
    public var tensors: [String: Tensor]

    /// A message; every tensor is detached from its autograd graph.
    public init(kind: Kind, microbatch: Int, tensors: [String: Tensor]) {
        self.kind = kind
        self.microbatch = microbatch
        self.tensors = tensors.mapValues { $0.detached() }
    }

    /// The tensor called `name`.
    ///
    /// - Throws: ``PipelineError`` naming the missing tensor and the ones present.
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else {
            throw PipelineError("\(kind.rawValue) message of microbatch \(microbatch) has no '\(name)' "
                + "(it has \(tensors.keys.sorted().joined(separator: ", ")))")
        }
        return t
    }
}

/// One stage's connection to its neighbours.
///
/// `send` never waits for the receiver to be ready to compute (a transport may buffer
/// or block on the wire, but it must not wait for the peer's schedule to reach the
/// matching receive, or a schedule could deadlock). `receive` blocks until the message
/// of that kind and microbatch arrives, in any order of arrival.
///
/// After ``abort(_:)`` on any stage's transport, every pending and later `send` and
/// `receive` of every stage throws ``PipelineStopped``: that is how one failing stage
/// stops the others instead of leaving them blocked.
public protocol StageTransport: AnyObject, Sendable {
    /// This stage's index s.
    var stage: Int { get }
    /// The number of stages P.
    var stageCount: Int { get }
    /// Sends an activation to stage s+1 or a gradient to stage s−1.
    ///
    /// - Throws: ``PipelineStopped`` after an abort; ``PipelineError`` when there is no
    ///   such neighbour.
    func send(_ message: StageMessage) throws
    /// Receives the activation of `microbatch` from stage s−1, or its gradient from stage s+1.
    ///
    /// - Throws: ``PipelineStopped`` after an abort; ``PipelineError`` when there is no
    ///   such neighbour.
    func receive(_ kind: StageMessage.Kind, microbatch: Int) throws -> StageMessage
    /// Stops every stage's communication because stage ``stage`` failed with `error`.
    func abort(_ error: any Error)
}

/// Thrown by a transport after some stage aborted the pipeline.
public struct PipelineStopped: Error, CustomStringConvertible {
    /// The stage that failed.
    public let stage: Int
    /// What it failed with, as text (the error itself stays with that stage).
    public let reason: String
    /// Stage `stage` stopped the pipeline because of `reason`.
    public init(stage: Int, reason: String) {
        self.stage = stage
        self.reason = reason
    }
    public var description: String { "the pipeline was stopped by stage \(stage): \(reason)" }
}
