// Hugging Face directories through the real binary: hostile ones are refused by every
// command that reads them (`generate --checkpoint`, `train --init-from`, `export`) with
// one error line naming the value, before anything of the size they claim is allocated;
// `export` overwrites nothing and a failed export leaves nothing.

import Foundation
import TestSupport
import XCTest

final class HuggingFaceCLITests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = try temporaryFolder("hf-cli")
        let folder = scratch!
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    }

    /// A copy of the fixture directory `name` in the scratch folder, with `fields` set in its config.json.
    private func copy(_ name: String, as copyName: String? = nil, setting fields: [String: Any] = [:]) throws -> URL {
        let url = scratch.appendingPathComponent(copyName ?? name)
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("hf/\(name)"), to: url)
        let config = url.appendingPathComponent("config.json")
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any])
        object.merge(fields) { _, new in new }
        try JSONSerialization.data(withJSONObject: object).write(to: config)
        return url
    }

    /// Each command that reads a Hugging Face directory, on `directory`.
    private func readers(of directory: URL) -> [[String]] {
        [["generate", "--checkpoint", directory.path, "--prompt-tokens", "1,2", "--max-tokens", "2"],
         ["train", "--init-from", directory.path, "--steps", "1", "--out", scratch.appendingPathComponent("run").path],
         ["export", directory.path, "--hf", scratch.appendingPathComponent("exported").path]]
    }

    func testConfigSizesTheWeightsDoNotHoldAreRefusedByEveryCommand() throws {
        let cases: [(fields: [String: Any], message: String)] = [
            (["vocab_size": 1_000_000_000_000], "but vocab_size 1000000000000, hidden_size 32 imply [1000000000000, 32]"),
            (["intermediate_size": 1_000_000_000_000], "intermediate_size 1000000000000"),
            (["num_hidden_layers": 1_000_000_000], "num_hidden_layers 1000000000"),
        ]
        for (i, c) in cases.enumerated() {
            let directory = try copy("tiny_llama_gqa_tied", as: "case\(i)", setting: c.fields)
            for command in readers(of: directory) { try assertError(command, mentions: c.message, within: 30) }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("exported").path))
    }

    func testFreshDepthsThatCannotFitAreRefused() throws {
        let directory = Self.fixtures.appendingPathComponent("hf/tiny_llama_gqa_tied")
        try assertError(["train", "--init-from", directory.path, "--depths", "1000000000", "--steps", "1",
                         "--out", scratch.appendingPathComponent("run").path], mentions: "1000000000 fresh MTP depths", within: 30)
    }

    func testADirectoryWithoutConfigIsNamedByEveryCommand() throws {
        let directory = try copy("tiny_llama_f16")
        try FileManager.default.removeItem(at: directory.appendingPathComponent("config.json"))
        for command in readers(of: directory) { try assertError(command, mentions: "\(directory.path) has no readable config.json") }
    }

    func testNonFiniteWeightsAreRefused() throws {
        // The fixture is float32: overwrite the first element of model.embed_tokens.weight with a NaN.
        let directory = try copy("tiny_llama_gqa_tied")
        let weights = directory.appendingPathComponent("model.safetensors")
        var bytes = try Data(contentsOf: weights)
        let header = try safetensorsHeader(weights)
        let entry = try XCTUnwrap((try JSONSerialization.jsonObject(with: header) as? [String: Any])?["model.embed_tokens.weight"] as? [String: Any])
        XCTAssertEqual(entry["dtype"] as? String, "F32")
        let begin = try XCTUnwrap((entry["data_offsets"] as? [Int])?.first) + 8 + header.count
        bytes.replaceSubrange(begin..<(begin + 4), with: [0x00, 0x00, 0xC0, 0x7F])
        try bytes.write(to: weights)
        for command in readers(of: directory) {
            try assertError(command, mentions: "'model.embed_tokens.weight' holds nan at element 0")
        }
    }

    func testAShardIndexThatDisagreesWithItsShardsIsRefused() throws {
        let directory = try copy("tiny_llama_sharded_bf16")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: index)) as? [String: Any])
        var map = try XCTUnwrap(object["weight_map"] as? [String: String])
        map["lm_head.weight"] = "model-00001-of-00002.safetensors"
        object["weight_map"] = map
        try JSONSerialization.data(withJSONObject: object).write(to: index)
        try assertError(readers(of: directory)[0], mentions: "'lm_head.weight' in model-00001-of-00002.safetensors, but it is stored in shard model-00002-of-00002.safetensors")
    }

    func testExportOverwritesNothing() throws {
        let input = try copy("tiny_llama_gqa_tied", as: "in")
        let run = scratch.appendingPathComponent("run1")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: run.appendingPathComponent("checkpoint.safetensors"))
        try FileManager.default.createSymbolicLink(atPath: scratch.appendingPathComponent("link").path, withDestinationPath: "in")
        let before = try fileContents(under: scratch)
        try assertError(["export", input.path, "--hf", ""], mentions: "--hf must name the output directory", in: scratch)
        try assertError(["export", input.path, "--hf", run.path], mentions: "\(run.path) exists and is not an empty directory")
        for spelling in ["in", "./../\(scratch.lastPathComponent)/in", "link", "in/."] {
            try assertError(["export", "in", "--hf", spelling, "--dtype", "bf16"], mentions: "--hf \(spelling)", in: scratch)
        }
        XCTAssertEqual(try fileContents(under: scratch), before)
        let help = try runMTP(["export", "--help"])
        XCTAssertTrue(help.stdout.contains("Nothing is overwritten"), help.stdout)
    }

    func testAFailedExportLeavesNothingBehind() throws {
        // A run whose tokenizer was removed after training: the export fails on it, and must
        // not leave the files it wrote before.
        let tokenizer = scratch.appendingPathComponent("tokenizer.json")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("tokenizers/gpt2_style.tokenizer.json"), to: tokenizer)
        let text = scratch.appendingPathComponent("data.txt")
        try Data(String(repeating: "the quick brown fox jumps over the lazy dog\n\n", count: 40).utf8).write(to: text)
        let run = scratch.appendingPathComponent("run")
        let trained = try runMTP(["train", "--data", text.path, "--tokenizer", tokenizer.path, "--layers", "1", "--hidden", "8",
                                  "--heads", "2", "--intermediate", "16", "--depths", "1", "--batch-size", "2", "--seq-len", "8",
                                  "--steps", "1", "--out", run.path])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        try FileManager.default.removeItem(at: tokenizer)
        let out = scratch.appendingPathComponent("exports/hf")
        try assertError(["export", run.appendingPathComponent("checkpoint.safetensors").path, "--hf", out.path],
                        mentions: tokenizer.path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(), ["data.txt", "run"])
    }
}
