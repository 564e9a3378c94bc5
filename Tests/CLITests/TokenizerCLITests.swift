// A run's tokenizer through the real binary: found again from any directory, refused when
// it changed since training, and parsed before a run or an export records or copies it.

import Foundation
import XCTest

final class TokenizerCLITests: XCTestCase {
    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    private let tinyModel = ["--layers", "1", "--hidden", "8", "--heads", "2", "--intermediate", "16", "--depths", "1",
                             "--batch-size", "2", "--seq-len", "8", "--eval-every", "1000", "--steps", "1"]

    /// A folder holding `tok.json` (the GPT-2 style fixture) and `data.txt` (30 short documents).
    private func trainingFolder() throws -> URL {
        let folder = try temporaryFolder("tokenizer-run")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("tokenizers/gpt2_style.tokenizer.json"),
                                         to: folder.appendingPathComponent("tok.json"))
        let text = (0..<30).map { "Document \($0): the quick brown fox jumps over the lazy dog." }.joined(separator: "\n\n")
        try Data(text.utf8).write(to: folder.appendingPathComponent("data.txt"))
        return folder
    }

    private func assertError(_ r: MTPResult, mentions fragments: [String], _ what: String, line: UInt = #line) {
        XCTAssertFalse(r.signaled, what, line: line)
        XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)", line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }.count, 1, "\(what): \(r.stderr)", line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\(what): '\(r.stderr)' lacks '\(f)'", line: line) }
    }

    func testARunFindsItsTokenizerFromAnotherDirectoryAndRefusesAChangedOne() throws {
        let folder = try trainingFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Trained with paths relative to the run's folder.
        let train = try runMTP(["train", "--data", "data.txt", "--tokenizer", "tok.json", "--out", "run"] + tinyModel, in: folder)
        XCTAssertEqual(train.status, 0, train.stderr)
        let checkpoint = folder.appendingPathComponent("run/checkpoint.safetensors").path
        let elsewhere = try temporaryFolder("tokenizer-elsewhere")
        defer { try? FileManager.default.removeItem(at: elsewhere) }

        let generate = ["generate", "--checkpoint", checkpoint, "--prompt", "the quick", "--max-tokens", "2"]
        let found = try runMTP(generate, in: elsewhere)
        XCTAssertEqual(found.status, 0, found.stderr)
        XCTAssertTrue(found.stdout.contains("prompt     the quick"), found.stdout)

        // The same path now holds other bytes (still a valid tokenizer): every reader refuses it.
        let tok = folder.appendingPathComponent("tok.json")
        try FileManager.default.removeItem(at: tok)
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("tokenizers/llama3_style.tokenizer.json"), to: tok)
        let changed = [tok.standardizedFileURL.path, "changed since training"]
        assertError(try runMTP(generate, in: elsewhere), mentions: changed, "generate")
        let out = elsewhere.appendingPathComponent("hf")
        assertError(try runMTP(["export", checkpoint, "--hf", out.path], in: elsewhere), mentions: changed, "export")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "export wrote before refusing")
        assertError(try runMTP(["train", "--resume", checkpoint, "--steps", "2"], in: elsewhere), mentions: changed, "resume")
        // Asked for by name, another file is used as given.
        let other = try runMTP(generate + ["--tokenizer", tok.path], in: elsewhere)
        XCTAssertEqual(other.status, 0, other.stderr)
    }

    /// A copy of the tiny GQA fixture's weights and configs in a new folder, with `tokenizer` as its tokenizer.json.
    private func pretrainedDirectory(_ name: String, tokenizer: Data) throws -> URL {
        let directory = try temporaryFolder(name)
        let model = fixtures.appendingPathComponent("hf/tiny_llama_gqa_tied")
        for file in ["config.json", "generation_config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: model.appendingPathComponent(file), to: directory.appendingPathComponent(file))
        }
        try tokenizer.write(to: directory.appendingPathComponent("tokenizer.json"))
        return directory
    }

    func testInitFromAndExportParseTheDirectorysTokenizerFirst() throws {
        let directory = try pretrainedDirectory("tokenizer-hf", tokenizer: Data("{bad".utf8))
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokenizer = directory.appendingPathComponent("tokenizer.json")
        let invalid = [tokenizer.path, "not a JSON object"]

        let run = directory.appendingPathComponent("run")
        assertError(try runMTP(["train", "--init-from", directory.path, "--out", run.path, "--documents", "40",
                                "--batch-size", "2", "--seq-len", "8", "--eval-every", "1000", "--steps", "1"]),
                    mentions: invalid, "train --init-from")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path), "train wrote a run before refusing")

        let out = directory.appendingPathComponent("hf")
        assertError(try runMTP(["export", directory.path, "--hf", out.path]), mentions: invalid, "export")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "export wrote before refusing")
        XCTAssertEqual(try Data(contentsOf: tokenizer), Data("{bad".utf8))
    }

    func testAPretrainedTokenizerOfAnotherKindIsKeptWhenNothingIsEncoded() throws {
        // A WordPiece tokenizer.json: valid for its own library, not one this package encodes with.
        let wordPiece = Data(#"{"version":"1.0","model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":1}}}"#.utf8)
        let directory = try pretrainedDirectory("tokenizer-wordpiece", tokenizer: wordPiece)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run")
        let train = try runMTP(["train", "--init-from", directory.path, "--out", run.path, "--documents", "40",
                                "--batch-size", "2", "--seq-len", "8", "--eval-every", "1000", "--steps", "1"])
        XCTAssertEqual(train.status, 0, "the built-in corpus never encodes text: \(train.stderr)")
        let out = directory.appendingPathComponent("hf")
        let export = try runMTP(["export", directory.path, "--hf", out.path])
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("tokenizer.json")), wordPiece, "copied as it is")
    }

    func testABacktrackingSplitPatternIsAnErrorNotAHang() throws {
        let folder = try trainingFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pattern = "(a|a)*b|(x+x+)+y"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("tok.json"))) as! [String: Any]
        json["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
            ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false]]]
        try JSONSerialization.data(withJSONObject: json).write(to: folder.appendingPathComponent("evil.json"))
        let train = try runMTP(["train", "--data", "data.txt", "--tokenizer", "tok.json", "--out", "run"] + tinyModel, in: folder)
        XCTAssertEqual(train.status, 0, train.stderr)
        let prompt = String(repeating: "a", count: 200)
        // Without a work budget each of these runs for minutes (2^n backtracking steps).
        assertError(try runMTP(["generate", "--checkpoint", "run/checkpoint.safetensors", "--tokenizer", "evil.json",
                                "--prompt", prompt, "--max-tokens", "2"], in: folder, timeout: 30),
                    mentions: ["'\(pattern)'", "backtracks"], "generate")
        try Data(("the fox\n\n" + prompt + "\n\nthe dog").utf8).write(to: folder.appendingPathComponent("hostile.txt"))
        assertError(try runMTP(["train", "--data", "hostile.txt", "--tokenizer", "evil.json", "--out", "evil-run"] + tinyModel,
                               in: folder, timeout: 30),
                    mentions: ["'\(pattern)'", "backtracks"], "train")
    }
}
