// What keeps a run's work when something goes wrong inside it.
//
// Non-finite steps. A step whose gradient norm, main loss or any MTP depth loss is NaN or
// infinite is skipped: its gradients are dropped, the weights and AdamW moments stay as
// they were, and the step still counts (its batch is consumed and the learning-rate
// schedule moves on, so the data order of a seed never depends on the skips). Its record
// keeps the non-finite values, and its number is listed in ``Trainer/skippedSteps``. After
// ``NonFiniteSteps/consecutiveLimit`` skipped steps in a row the run stops (see
// ``TrainingRun``) with its last finite state saved. Every rank of a multi-process run
// sees the same norm and losses (they are reduced before this test), so all skip alike.
//
// Checkpoints. Besides the run's options and history a checkpoint stores a checksum of
// its tensors (verified on load) and the skipped steps (AdamW's own step count is the
// step minus the skips, so a resumed run continues bit for bit).

import Foundation
import Model
import Tensors

/// The policy for steps whose loss or gradient norm is not finite.
public enum NonFiniteSteps {
    /// Skipped steps in a row after which a run stops.
    public static let consecutiveLimit = 5

    /// Whether a step's norm and losses are all finite (else it is skipped).
    public static func isFinite(_ record: StepRecord) -> Bool {
        record.gradientNorm.isFinite && record.mainLoss.isFinite && record.depthLosses.allSatisfy(\.isFinite)
    }
}

extension Trainer {
    /// How many steps in a row, ending with the last one, were skipped.
    public var consecutiveSkippedSteps: Int {
        var n = 0
        while n < skippedSteps.count, skippedSteps[skippedSteps.count - 1 - n] == step - n { n += 1 }
        return n
    }

    /// Drops the gradients of a step that is not applied.
    func dropGradients() {
        for (_, p) in model.namedParameters() { p.zeroGrad() }
    }

    /// The metadata a checkpoint adds for its own integrity and for the skip policy.
    func robustnessMetadata(_ tensors: [String: Tensor]) throws -> [String: String] {
        ["payload_checksum": SafeTensors.payloadChecksum(tensors),
         "skipped_steps": String(decoding: try JSONEncoder().encode(skippedSteps), as: UTF8.self)]
    }

    /// The skipped steps a checkpoint lists (none when it predates them).
    static func skippedSteps(in metadata: [String: String], source: String, step: Int) throws -> [Int] {
        guard let s = metadata["skipped_steps"] else { return [] }
        guard let steps = try? JSONDecoder().decode([Int].self, from: Data(s.utf8)),
              steps.allSatisfy({ (1...Swift.max(step, 1)).contains($0) }), steps.count <= step else {
            throw TrainingError("\(source): unreadable skipped_steps metadata '\(s.prefix(80))'")
        }
        return steps
    }

    /// Reads a checkpoint and checks it before anything is built from it: its payload
    /// checksum (when it has one), its metadata, and its model configuration against the
    /// shapes of its tensors.
    ///
    /// - Returns: the tensors, the recorded run (options, step, history, evaluations) and skipped steps.
    /// - Throws: a SafeTensors error for an unreadable file, ``TrainingError`` or
    ///   ``Model/ModelError`` for one that is damaged or not an mtp checkpoint.
    public static func readCheckpoint(_ url: URL) throws -> RecordedRun {
        let (tensors, metadata) = try SafeTensors.read(contentsOf: url)
        return try recordedRun(tensors: tensors, metadata: metadata, source: url.path)
    }

    /// ``readCheckpoint(_:)`` of a checkpoint's bytes held in memory; `source` names it in errors.
    public static func readCheckpoint(from data: Data, source: String) throws -> RecordedRun {
        let (tensors, metadata) = try SafeTensors.read(from: data)
        return try recordedRun(tensors: tensors, metadata: metadata, source: source)
    }

    /// What a checkpoint holds: its tensors, the recorded run and its skipped steps.
    public typealias RecordedRun = (tensors: [String: Tensor], options: TrainingOptions, step: Int, history: [StepRecord],
                                    evaluations: [Evaluation], skippedSteps: [Int])

    private static func recordedRun(tensors: [String: Tensor], metadata: [String: String], source: String) throws -> RecordedRun {
        let run = try checkpointMetadata(metadata, source: source)
        try CausalLM.verifyPayload(tensors, metadata: metadata, source: source)
        try run.options.validate()
        try run.options.model.checkMatches(tensors, source: source)
        let skipped = try skippedSteps(in: metadata, source: source, step: run.step)
        return (tensors, run.options, run.step, run.history, run.evaluations, skipped)
    }
}
