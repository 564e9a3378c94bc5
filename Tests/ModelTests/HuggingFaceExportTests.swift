// Export to a Hugging Face directory: the DeepSeek-V3 MTP layout, `format: pt`, no
// optimizer state, dtype conversion, a round trip back through the importer, and an
// output that never overwrites anything and is complete or absent.

import Foundation
@testable import Model
import NN
import Tensors
import TestSupport
import XCTest

final class HuggingFaceExportTests: XCTestCase {
    private let config = ModelConfig(vocabularySize: 20, hiddenSize: 16, layers: 2, heads: 4, intermediateSize: 24, mtpDepths: 2,
                                     keyValueHeads: 2, rmsNormEpsilon: 1e-5, ropeTheta: 1e5)

    private func block(_ prefix: String) -> [String] {
        ["input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
         "self_attn.o_proj.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
         "mlp.down_proj.weight"].map { prefix + "." + $0 }
    }

    func testKeysFollowLlamaAndDeepSeekV3() throws {
        let model = try CausalLM(config: config, seed: 3)
        let names = try model.huggingFaceLayout().map(\.name)
        var expected = ["model.embed_tokens.weight"] + block("model.layers.0") + block("model.layers.1")
            + ["model.norm.weight", "lm_head.weight"]
        for layer in [2, 3] {
            let p = "model.layers.\(layer)"
            expected += [p + ".enorm.weight", p + ".hnorm.weight", p + ".eh_proj.weight"] + block(p)
                + [p + ".shared_head.norm.weight", p + ".embed_tokens.weight", p + ".shared_head.head.weight"]
        }
        XCTAssertEqual(names, expected)
    }

    func testRoundTripThroughTheDirectory() throws {
        for tied in [false, true] {
            var c = config
            c.tieWordEmbeddings = tied
            let model = try CausalLM(config: c, seed: 5)
            // Norms away from one, so a swapped norm shows.
            for (name, p) in model.namedParameters() where name.hasSuffix("norm.weight") {
                p.value = randomTensor(p.shape, 0.5, 1.5, seed: UInt64(name.count))
            }
            let dir = try temporaryDirectory(self)
            let written = try model.exportHuggingFace(to: dir)
            XCTAssertEqual(written.map(\.lastPathComponent), ["config.json", "generation_config.json", "model.safetensors"])
            let (tensors, metadata) = try SafeTensors.read(contentsOf: dir.appendingPathComponent("model.safetensors"))
            XCTAssertEqual(metadata["format"], "pt")
            XCTAssertFalse(tensors.keys.contains { $0.hasPrefix("optimizer") })
            XCTAssertEqual(tensors["lm_head.weight"] == nil, tied)
            XCTAssertEqual(tensors["model.layers.3.embed_tokens.weight"]?.floats, model.embedTokens.weight.value.floats)
            XCTAssertEqual(tensors["model.layers.2.shared_head.head.weight"]?.floats, model.lmHead.weight.value.floats)
            XCTAssertEqual(tensors["model.layers.3.shared_head.norm.weight"]?.floats,
                           model.mtp?.depths[1].finalLayernorm.weight.value.floats)

            let back = try CausalLM.load(huggingFace: dir, mtpLossScalingFactor: c.mtpLossScalingFactor)
            XCTAssertEqual(back.config, c)
            let ours = model.namedParameters(), theirs = back.namedParameters()
            XCTAssertEqual(ours.map(\.name), theirs.map(\.name))
            for (a, b) in zip(ours, theirs) { XCTAssertEqual(a.parameter.value.floats, b.parameter.value.floats, a.name) }
        }
    }

    func testHalfPrecisionExportsRoundToTheDType() throws {
        let model = try CausalLM(config: config, seed: 9)
        for dtype in [DType.bfloat16, .float16] {
            let dir = try temporaryDirectory(self)
            try model.exportHuggingFace(to: dir, options: HuggingFaceExportOptions(dtype: dtype))
            let tensors = try SafeTensors.read(contentsOf: dir.appendingPathComponent("model.safetensors")).tensors
            XCTAssertTrue(tensors.values.allSatisfy { $0.dtype == dtype })
            let back = try CausalLM.load(huggingFace: dir)
            let w = model.layers[0].selfAttn.kProj.weight.value
            XCTAssertEqual(back.layers[0].selfAttn.kProj.weight.value.floats, w.cast(to: dtype).cast(to: .float32).floats)
        }
    }

    func testTokenizerIsCopied() throws {
        let model = try CausalLM(config: config, seed: 1)
        let dir = try temporaryDirectory(self)
        let tokenizer = fixtureURL("tokenizers/gpt2_style.tokenizer.json")
        try model.exportHuggingFace(to: dir, options: HuggingFaceExportOptions(tokenizer: tokenizer, eosTokenID: 0))
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("tokenizer.json")), try Data(contentsOf: tokenizer))
        let generation = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("generation_config.json")))
        XCTAssertEqual((generation as? [String: Any])?["eos_token_id"] as? Int, 0)
    }

    func testExportOverwritesNothing() throws {
        let model = try CausalLM(config: config, seed: 2)
        let root = try temporaryDirectory(self)
        // A directory holding anything, a file, and a dangling symbolic link are refused, untouched.
        let full = root.appendingPathComponent("run1")
        try FileManager.default.createDirectory(at: full, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: full.appendingPathComponent("config.json"))
        let file = root.appendingPathComponent("notes.txt")
        try Data("keep".utf8).write(to: file)
        let dangling = root.appendingPathComponent("dangling")
        try FileManager.default.createSymbolicLink(atPath: dangling.path, withDestinationPath: "nowhere")
        let before = try fileContents(under: root)
        for target in [full, file, dangling] {
            XCTAssertThrowsError(try model.exportHuggingFace(to: target)) {
                XCTAssertTrue("\($0)".contains("\(target.path) exists and is not an empty directory"), "\($0)")
            }
        }
        XCTAssertEqual(try fileContents(under: root), before)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dangling.path), "nowhere")

        // A Hugging Face directory exported onto itself, however its path is spelt, is refused.
        let input = root.appendingPathComponent("in")
        try model.exportHuggingFace(to: input)
        let link = root.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "in")
        let exported = try fileContents(under: input)
        let loaded = try CausalLM.load(huggingFace: input)
        for spelling in [input.path, link.path, input.path + "/", root.path + "/./in/../in", link.path + "/."] {
            XCTAssertThrowsError(try loaded.exportHuggingFace(to: URL(fileURLWithPath: spelling),
                                                              options: HuggingFaceExportOptions(dtype: .bfloat16)), spelling)
        }
        XCTAssertEqual(try fileContents(under: input), exported)

        // An empty directory is filled.
        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        XCTAssertEqual(try model.exportHuggingFace(to: empty).count, 3)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: empty.path).sorted(),
                       ["config.json", "generation_config.json", "model.safetensors"])
    }

    func testAFailedExportLeavesNothingBehind() throws {
        let model = try CausalLM(config: config, seed: 4)
        let root = try temporaryDirectory(self)
        let missing = root.appendingPathComponent("no-such-tokenizer.json")
        for target in [root.appendingPathComponent("hf"), root.appendingPathComponent("new/deeper/hf")] {
            XCTAssertThrowsError(try model.exportHuggingFace(to: target, options: HuggingFaceExportOptions(tokenizer: missing))) {
                XCTAssertTrue("\($0)".contains(missing.path), "\($0)")
            }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), [], target.path)
        }
    }

    func testAFailureAfterStagingRemovesTheStagingAndTheFoldersItMade() throws {
        let model = try CausalLM(config: config, seed: 4)
        let root = try temporaryDirectory(self)
        HuggingFaceDirectory.failAfterStaging = true
        defer { HuggingFaceDirectory.failAfterStaging = false }
        // A new directory under new parents: staged beside it, then everything removed.
        XCTAssertThrowsError(try model.exportHuggingFace(to: root.appendingPathComponent("new/deeper/hf"))) {
            XCTAssertTrue("\($0)".contains("injected fault"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), [])
        // An existing empty directory: staged inside it, left empty again.
        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        XCTAssertThrowsError(try model.exportHuggingFace(to: empty))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: empty.path), [])
    }

    func testWeightsBeyondTheDtypeOrNotFiniteAreRefused() throws {
        let model = try CausalLM(config: config, seed: 4)
        let root = try temporaryDirectory(self)
        let entry = try XCTUnwrap(model.huggingFaceLayout().first { $0.name == "model.norm.weight" })
        var values = entry.parameter.value.floats
        values[1] = 1e6  // f16's largest finite value is 65504
        entry.parameter.value = try Tensor(values, shape: entry.parameter.value.shape)
        XCTAssertThrowsError(try model.exportHuggingFace(to: root.appendingPathComponent("f16"),
                                                         options: HuggingFaceExportOptions(dtype: .float16))) {
            XCTAssertTrue("\($0)".contains("model.norm.weight holds 1000000.0 at element 1, beyond float16's range"), "\($0)")
        }
        XCTAssertNoThrow(try model.exportHuggingFace(to: root.appendingPathComponent("bf16"), options: HuggingFaceExportOptions(dtype: .bfloat16)))
        values[1] = .infinity
        entry.parameter.value = try Tensor(values, shape: entry.parameter.value.shape)
        XCTAssertThrowsError(try model.exportHuggingFace(to: root.appendingPathComponent("f32"))) {
            XCTAssertTrue("\($0)".contains("model.norm.weight holds inf at element 1; weights must be finite"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), ["bf16"])
    }

    func testAFolderNamedLikeTheStagingIsNotOursToRemove() throws {
        let model = try CausalLM(config: config, seed: 4)
        let root = try temporaryDirectory(self)
        let theirs = root.appendingPathComponent(".hf.partial-\(getpid())")
        try FileManager.default.createDirectory(at: theirs, withIntermediateDirectories: false)
        try Data("mine".utf8).write(to: theirs.appendingPathComponent("work.txt"))
        try model.exportHuggingFace(to: root.appendingPathComponent("hf"))
        XCTAssertEqual(try String(contentsOf: theirs.appendingPathComponent("work.txt"), encoding: .utf8), "mine")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted(), [theirs.lastPathComponent, "hf"].sorted())
    }

    func testAnExistingEmptyDirectoryIsFilledInPlace() throws {
        // Kept, not replaced: a mount point or a folder in a read-only parent cannot be renamed over.
        let model = try CausalLM(config: config, seed: 4)
        let root = try temporaryDirectory(self)
        let empty = root.appendingPathComponent("volume")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        let inode = { (try FileManager.default.attributesOfItem(atPath: empty.path)[.systemFileNumber] as? NSNumber)?.intValue }
        let before = try inode()
        let written = try model.exportHuggingFace(to: empty)
        XCTAssertEqual(try inode(), before, "the directory was replaced")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: empty.path).sorted(),
                       written.map(\.lastPathComponent).sorted())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), ["volume"])
        XCTAssertNoThrow(try CausalLM.load(huggingFace: empty))
    }
}
