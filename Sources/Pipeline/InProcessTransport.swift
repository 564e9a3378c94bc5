// The in-process StageTransport: stages are threads of one process, joined by
// condition-variable channels.

import Foundation

/// In-process transport: one unbounded, condition-variable channel per direction and
/// pair of neighbouring stages, shared by the P endpoints that ``connecting(stages:)``
/// returns (one per stage thread).
public final class InProcessTransport: StageTransport, @unchecked Sendable {
    // Immutable after init; the channels synchronise themselves.
    public let stage: Int
    public let stageCount: Int
    private let forward: [Channel]   // forward[s]: s → s+1
    private let backward: [Channel]  // backward[s]: s+1 → s

    private init(stage: Int, stageCount: Int, forward: [Channel], backward: [Channel]) {
        self.stage = stage
        self.stageCount = stageCount
        self.forward = forward
        self.backward = backward
    }

    /// The P connected endpoints of a fresh pipeline, endpoint s for stage s.
    ///
    /// Precondition: `stages >= 1`.
    public static func connecting(stages: Int) -> [InProcessTransport] {
        precondition(stages >= 1, "a pipeline needs at least one stage, got \(stages)")
        let forward = (0..<stages - 1).map { _ in Channel() }
        let backward = (0..<stages - 1).map { _ in Channel() }
        return (0..<stages).map { InProcessTransport(stage: $0, stageCount: stages, forward: forward, backward: backward) }
    }

    public func send(_ message: StageMessage) throws {
        switch message.kind {
        case .activation:
            guard stage + 1 < stageCount else { throw PipelineError("stage \(stage) is the last: no stage to send activations to") }
            try forward[stage].put(message)
        case .gradient:
            guard stage > 0 else { throw PipelineError("stage 0 is the first: no stage to send gradients to") }
            try backward[stage - 1].put(message)
        }
    }

    public func receive(_ kind: StageMessage.Kind, microbatch: Int) throws -> StageMessage {
        switch kind {
        case .activation:
            guard stage > 0 else { throw PipelineError("stage 0 is the first: no stage sends it activations") }
            return try forward[stage - 1].take(kind, microbatch: microbatch)
        case .gradient:
            guard stage + 1 < stageCount else { throw PipelineError("stage \(stage) is the last: no stage sends it gradients") }
            return try backward[stage].take(kind, microbatch: microbatch)
        }
    }

    public func abort(_ error: any Error) {
        let stopped = error as? PipelineStopped ?? PipelineStopped(stage: stage, reason: String(describing: error))
        for c in forward + backward { c.close(stopped) }
    }
}

/// An unbounded queue with a blocking, matching take.
private final class Channel: @unchecked Sendable {
    // Every field is read and written with `condition` held.
    private let condition = NSCondition()
    private var queue: [StageMessage] = []
    private var failure: PipelineStopped?

    func put(_ message: StageMessage) throws {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        queue.append(message)
        condition.broadcast()
    }

    func take(_ kind: StageMessage.Kind, microbatch: Int) throws -> StageMessage {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let failure { throw failure }
            if let i = queue.firstIndex(where: { $0.kind == kind && $0.microbatch == microbatch }) {
                return queue.remove(at: i)
            }
            condition.wait()
        }
    }

    /// Wakes every waiter; this and every later put or take throws `error` (the first close wins).
    func close(_ error: PipelineStopped) {
        condition.lock()
        defer { condition.unlock() }
        if failure == nil { failure = error }
        queue.removeAll()
        condition.broadcast()
    }
}
