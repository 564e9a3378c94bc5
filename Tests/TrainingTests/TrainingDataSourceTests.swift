// A checkpoint records where its documents came from; the best speculative acceptance
// is known only for the built-in corpus. Older checkpoints (no record) still load.

import Data
import Foundation
import Losses
import Model
import Training
import XCTest

final class TrainingDataSourceTests: XCTestCase {
    private func options(_ source: TrainingDataSource?) -> TrainingOptions {
        var o = TrainingOptions(model: ModelConfig(vocabularySize: 24, hiddenSize: 16, layers: 1, heads: 2,
                                                   intermediateSize: 32, mtpDepths: 2))
        o.batchSize = 2
        o.sequenceLength = 16
        o.dataSource = source
        return o
    }

    /// The options read back from a checkpoint of a trainer with `source`.
    private func checkpointOptions(_ source: TrainingDataSource?) throws -> TrainingOptions {
        let o = options(source)
        let docs: [[Int32]] = (0..<20).map { d in (0..<12).map { Int32(($0 + d) % 24) } }
        let trainer = try Trainer(options: o, train: Array(docs.prefix(16)), heldOut: Array(docs.suffix(4)))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("source-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try trainer.saveCheckpoint(to: url)
        return try Trainer.loadModel(checkpoint: url).options
    }

    func testTextCheckpointHasNoBestAcceptance() throws {
        let o = try checkpointOptions(.text(path: "/data/book \"1\".txt"))
        XCTAssertEqual(o.dataSource, .text(path: "/data/book \"1\".txt"))
        XCTAssertNil(o.bestAcceptance(depths: 2))
        XCTAssertNil(try checkpointOptions(.tokens(path: "train.bin")).bestAcceptance(depths: 2))
    }

    func testBuiltInCheckpointReportsOnePerDepth() throws {
        let o = try checkpointOptions(.builtIn)
        XCTAssertEqual(o.dataSource, .builtIn)
        XCTAssertEqual(o.bestAcceptance(depths: 2), [1, 1])
    }

    func testCheckpointsWithoutTheRecordLoadAsUnknown() throws {
        // training_options as written before the source was recorded.
        let old = """
        {"batchSize":16,"evalEvery":20,"gradientAccumulation":1,"gradientClip":1,"heldOutFraction":0.1,"learningRate":0.003,\
        "loss":"fused","model":{"heads":2,"hiddenSize":16,"intermediateSize":32,"layers":1,"mtpDepths":2,\
        "mtpLossScalingFactor":0.3,"vocabularySize":64},"seed":0,"sequenceLength":64,"steps":40,"warmupSteps":30,"weightDecay":0.05}
        """
        let o = try JSONDecoder().decode(TrainingOptions.self, from: Data(old.utf8))
        XCTAssertNil(o.dataSource)
        XCTAssertNil(o.bestAcceptance(depths: 2))
        XCTAssertEqual(o.loss, .fused)
        // Re-encoded without a source, the options are byte for byte what they were.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        XCTAssertEqual(String(decoding: try encoder.encode(o), as: UTF8.self), old)
    }

    func testAnUnknownLossKindIsRejected() {
        var json = String(decoding: try! JSONEncoder().encode(options(nil)), as: UTF8.self)
        json = json.replacingOccurrences(of: "\"fused\"", with: "\"hinge\"")
        XCTAssertThrowsError(try JSONDecoder().decode(TrainingOptions.self, from: Data(json.utf8)))
        XCTAssertEqual(LossKind.allCases.map(\.rawValue), ["fused", "masked", "chunked"])
    }
}
