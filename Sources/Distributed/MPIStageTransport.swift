// Pipeline stages on separate ranks: a StageTransport over a Communicator whose
// rank s runs stage s. The schedules, stage split and loss normalisation of the
// Pipeline module run unchanged; only the channel between neighbours differs.
//
// A message is a safetensors blob (the named tensors, with kind and microbatch in its
// metadata) sent with a non-blocking send: `send` returns at once, as the protocol
// requires, so two neighbours that both send before they receive (1F1B does) never
// wait on each other. Tags: 1 for activations, 2 for gradients; MPI keeps messages of
// one source and tag in order, and `receive` keeps any that arrive before they are
// wanted (a schedule may take microbatches in another order than they were sent).

import Foundation
import Pipeline
import Tensors

/// A ``Pipeline/StageTransport`` between ranks: rank s of `communicator` is stage s.
public final class MPIStageTransport: StageTransport, @unchecked Sendable {
    // Used by the one thread that runs this rank's stage.
    public let stage: Int
    public let stageCount: Int
    private let communicator: any Communicator
    private var pending: [any PendingSend] = []
    private var early: [StageMessage] = []
    private var failure: PipelineStopped?
    /// Bytes of the messages this stage has sent so far.
    public private(set) var bytesSent = 0

    private static let activationTag = 1
    private static let gradientTag = 2

    /// The transport of this rank's stage.
    ///
    /// - Parameter communicator: the pipeline group, one rank per stage in stage order.
    public init(communicator: any Communicator) {
        self.communicator = communicator
        stage = communicator.rank
        stageCount = communicator.size
    }

    public func send(_ message: StageMessage) throws {
        if let failure { throw failure }
        let destination: Int
        switch message.kind {
        case .activation:
            guard stage + 1 < stageCount else { throw PipelineError("stage \(stage) is the last: no stage to send activations to") }
            destination = stage + 1
        case .gradient:
            guard stage > 0 else { throw PipelineError("stage 0 is the first: no stage to send gradients to") }
            destination = stage - 1
        }
        let blob = try SafeTensors.encode(message.tensors, metadata: ["kind": message.kind.rawValue,
                                                                      "microbatch": String(message.microbatch)])
        bytesSent += blob.count
        pending.append(try communicator.startSend(bytes: [UInt8](blob), to: destination, tag: Self.tag(message.kind)))
        pending = try pending.filter { try !$0.isComplete() }
    }

    public func receive(_ kind: StageMessage.Kind, microbatch: Int) throws -> StageMessage {
        if let failure { throw failure }
        if let i = early.firstIndex(where: { $0.kind == kind && $0.microbatch == microbatch }) { return early.remove(at: i) }
        let source: Int
        switch kind {
        case .activation:
            guard stage > 0 else { throw PipelineError("stage 0 is the first: no stage sends it activations") }
            source = stage - 1
        case .gradient:
            guard stage + 1 < stageCount else { throw PipelineError("stage \(stage) is the last: no stage sends it gradients") }
            source = stage + 1
        }
        while true {
            let bytes = try communicator.receiveBytes(from: source, tag: Self.tag(kind))
            let (tensors, metadata) = try SafeTensors.read(from: Data(bytes))
            guard metadata["kind"] == kind.rawValue, let m = metadata["microbatch"].flatMap(Int.init) else {
                throw PipelineError("stage \(stage) received a malformed \(kind.rawValue) message from rank \(source)")
            }
            let message = StageMessage(kind: kind, microbatch: m, tensors: tensors)
            if m == microbatch { return message }
            early.append(message)
        }
    }

    /// Marks this transport stopped; its later calls throw ``Pipeline/PipelineStopped``. The
    /// other ranks are stopped by the driver, which ends the job (``Communicator/abort(code:)``)
    /// when a stage fails: a rank blocked in a receive cannot be woken otherwise.
    public func abort(_ error: any Error) {
        if failure == nil {
            failure = error as? PipelineStopped ?? PipelineStopped(stage: stage, reason: String(describing: error))
        }
    }

    /// Waits until every message this stage sent has left (call before reusing or ending the job).
    public func flush() throws {
        for p in pending { try p.wait() }
        pending.removeAll()
    }

    private static func tag(_ kind: StageMessage.Kind) -> Int {
        kind == .activation ? activationTag : gradientTag
    }
}
