import Foundation
import Model
import NN
import Tensors
import XCTest

/// `CausalLM.load(checkpoint:)`: the sizes from `model_config`, the weights from the tensors.
final class CheckpointLoadingTests: XCTestCase {
    private func write(_ tensors: [String: Tensor], metadata: [String: String]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString).safetensors")
        try SafeTensors.write(tensors, metadata: metadata, to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private let config = ModelConfig(vocabularySize: 10, hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 16, mtpDepths: 1)

    private func configJSON(_ c: ModelConfig) throws -> String {
        String(decoding: try JSONEncoder().encode(c), as: UTF8.self)
    }

    func testWeightsAndSizesComeBack() throws {
        let model = try CausalLM(config: config, seed: 7)
        let url = try write(model.parameterTensors(),
                            metadata: ["format": CausalLM.checkpointFormat, "model_config": try configJSON(config)])
        let (loaded, metadata) = try CausalLM.load(checkpoint: url)
        XCTAssertEqual(loaded.config, config)
        XCTAssertEqual(metadata["format"], CausalLM.checkpointFormat)
        for ((name, a), (_, b)) in zip(model.namedParameters(), loaded.namedParameters()) {
            XCTAssertEqual(a.value.floats, b.value.floats, name)
        }
    }

    func testForeignFilesAreRefusedByName() throws {
        let model = try CausalLM(config: config, seed: 7)
        let notOurs = try write(model.parameterTensors(), metadata: ["format": "pt"])
        XCTAssertThrowsError(try CausalLM.load(checkpoint: notOurs)) { XCTAssertTrue("\($0)".contains("not an mtp checkpoint"), "\($0)") }
        let garbled = try write(model.parameterTensors(), metadata: ["format": CausalLM.checkpointFormat, "model_config": "{"])
        XCTAssertThrowsError(try CausalLM.load(checkpoint: garbled)) { XCTAssertTrue("\($0)".contains("model_config"), "\($0)") }
        var missing = model.parameterTensors()
        missing["lm_head.weight"] = nil
        let partial = try write(missing, metadata: ["format": CausalLM.checkpointFormat, "model_config": try configJSON(config)])
        XCTAssertThrowsError(try CausalLM.load(checkpoint: partial)) { XCTAssertTrue("\($0)".contains("lm_head.weight"), "\($0)") }
    }
}
