// Importing Hugging Face Llama-architecture directories written by `transformers`
// (scripts/reference/make_hf_fixtures.py): our logits against the ones transformers
// computed, for GQA + tied embeddings (fp32), a sharded bf16 model and an f16 one.

import Foundation
import Model
import NN
import Tensors
import TestSupport
import XCTest

final class HuggingFaceImportTests: XCTestCase {
    private func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> CausalLM {
        let directory = fixtureURL("hf/\(name)")
        let model = try CausalLM.load(huggingFace: directory)
        let expected = try SafeTensors.read(contentsOf: directory.appendingPathComponent("expected.safetensors")).tensors
        let ids = try XCTUnwrap(expected["input_ids"]), reference = try XCTUnwrap(expected["logits"])
        let ours = try logits(of: model, ids: ids)
        XCTAssertEqual(ours.shape, reference.shape, file: file, line: line)
        let worst = largestDifference(ours.floats, reference.floats)
        print("\(name): max |ours − transformers| = \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-4, name, file: file, line: line)
        return model
    }

    func testGroupedQueryTiedModelMatchesTransformers() throws {
        let model = try check("tiny_llama_gqa_tied")
        XCTAssertEqual(model.config.keyValueHeads, 2)
        XCTAssertEqual(model.config.heads, 4)
        XCTAssertTrue(model.config.tieWordEmbeddings)
        XCTAssertEqual(model.config.rmsNormEpsilon, 1e-5)
        XCTAssertEqual(model.config.ropeTheta, 500_000)
        XCTAssertEqual(model.config.mtpDepths, 0)
        XCTAssertTrue(model.lmHead.weight === model.embedTokens.weight)
        XCTAssertFalse(model.namedParameters().contains { $0.name == "lm_head.weight" })
    }

    func testShardedBFloat16ModelMatchesTransformers() throws {
        let directory = fixtureURL("hf/tiny_llama_sharded_bf16")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.safetensors").path))
        let model = try check("tiny_llama_sharded_bf16")
        XCTAssertFalse(model.config.tieWordEmbeddings)
        XCTAssertEqual(model.lmHead.weight.value.dtype, .float32)
    }

    func testFloat16ModelMatchesTransformers() throws {
        let model = try check("tiny_llama_f16")
        XCTAssertEqual(model.config.keyValueHeads, model.config.heads)
    }

    func testFreshDepthsStartFromTheTrunk() throws {
        let model = try CausalLM.load(huggingFace: fixtureURL("hf/tiny_llama_gqa_tied"), depths: 2)
        let mtp = try XCTUnwrap(model.mtp)
        XCTAssertEqual(mtp.depths.count, 2)
        let h = model.config.hiddenSize
        let last = model.layers[model.layers.count - 1].parameterTensors()
        for depth in mtp.depths {
            let w = depth.ehProj.weight.value.floats
            for o in 0..<h {
                for i in 0..<(2 * h) { XCTAssertEqual(w[o * 2 * h + i], i == h + o ? 1 : 0) }
            }
            for (name, t) in depth.blocks[0].parameterTensors() { XCTAssertEqual(t.floats, last[name]?.floats, name) }
            XCTAssertEqual(depth.finalLayernorm.weight.value.floats, model.norm.weight.value.floats)
            XCTAssertEqual(depth.enorm.weight.value.floats, [Float](repeating: 1, count: h))
        }
        // The trunk is untouched by the new depths.
        let expected = try SafeTensors.read(contentsOf: fixtureURL("hf/tiny_llama_gqa_tied/expected.safetensors")).tensors
        let worst = largestDifference(try logits(of: model, ids: expected["input_ids"]!).floats, expected["logits"]!.floats)
        XCTAssertLessThanOrEqual(worst, 1e-4)
        // A depth count that contradicts the directory's is refused.
        let exported = try temporaryDirectory(self)
        try model.exportHuggingFace(to: exported)
        XCTAssertThrowsError(try CausalLM.load(huggingFace: exported, depths: 3)) {
            XCTAssertTrue("\($0)".contains("num_nextn_predict_layers"), "\($0)")
        }
    }
}
