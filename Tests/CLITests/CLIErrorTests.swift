// Every failure of the adversarial pass, through the real binary: each is one `error: …`
// line on stderr, nothing on stdout, exit status 1, promptly (no trap, no hang, no
// allocation of what a hostile size asks for), with a message that names the flag.

import Foundation
import XCTest

final class CLIErrorTests: XCTestCase {
    /// A tiny checkpoint for the generate cases, trained once.
    private static let checkpoint: URL? = {
        guard let folder = try? temporaryFolder("cli-errors"),
              let r = try? runMTP(["train"] + tinyTrainFlags + ["--steps", "2", "--out", folder.path]), r.status == 0 else { return nil }
        return folder.appendingPathComponent("checkpoint.safetensors")
    }()

    func testArgumentErrorsAreOneErrorLineWithStatus1() throws {
        try assertError(["train", "--bogus"], mentions: "error: Unknown option '--bogus'")
        try assertError(["train", "--steps", "abc"], mentions: "'abc' is invalid for '--steps")
        try assertError(["loss"], mentions: "Missing expected argument")
        try assertError(["bench", "matmul", "--m"], mentions: "see 'mtp bench matmul --help'")
        try assertError(["nonsense"], mentions: "error: ")
        let help = try runMTP(["train", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--save-every"))
    }

    func testAnUnknownGEMMEngineIsRefusedAndAKnownOneIsUsed() throws {
        try assertError(["bench", "matmul", "--m", "8", "--k", "8", "--n", "8"], mentions: "MTP_GEMM=mkl: unknown GEMM engine",
                        environment: ["MTP_GEMM": "mkl"])
        #if os(Linux)
        let engines = ["openblas", "onednn"]
        #else
        let engines = ["openblas"]
        #endif
        for engine in engines {
            let r = try runMTP(["bench", "matmul", "--m", "64", "--k", "64", "--n", "64", "--repeats", "2", "--json"],
                               environment: ["MTP_GEMM": engine])
            XCTAssertEqual(r.status, 0, "\(engine): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("\"gemm_engine\":\"\(engine)"), "\(engine): \(r.stdout)")
        }
    }

    /// Loading oneDNN loads libgomp, which pins the loading thread to one CPU when
    /// OMP_PROC_BIND is set; every thread of `mtp` must keep the CPUs it was started with.
    func testOpenMPBindingDoesNotPinTheProcess() throws {
        #if os(Linux)
        func allowed(_ status: String) -> String? {
            status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }.map {
                $0.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
            }
        }
        let own = try XCTUnwrap(allowed(try String(contentsOfFile: "/proc/self/status", encoding: .utf8)))
        let run = try MTPProcess(["bench", "matmul", "--m", "512", "--k", "512", "--n", "512", "--repeats", "4000"],
                                 environment: ["MTP_GEMM": "onednn", "OMP_PROC_BIND": "true"])
        defer { run.send(SIGKILL); _ = run.finish(timeout: 5) }
        usleep(1_500_000)  // past the first product (the load), into the repeats
        let tasks = "/proc/\(run.process.processIdentifier)/task"
        let ids = try FileManager.default.contentsOfDirectory(atPath: tasks)
        XCTAssertFalse(ids.isEmpty)
        for id in ids {
            guard let status = try? String(contentsOfFile: "\(tasks)/\(id)/status", encoding: .utf8) else { continue }
            XCTAssertEqual(allowed(status), own, "thread \(id) of mtp was pinned")
        }
        #else
        throw XCTSkip("Linux only")
        #endif
    }

    func testNegativeNumbersParseAndAreRangeChecked() throws {
        try assertError(["train", "--lr", "-1"], mentions: "learning rate must be positive, got -1.0")
        try assertError(["train", "--weight-decay", "-0.5"], mentions: "--weight-decay must be a finite number >= 0, got -0.5")
        try assertError(["train", "--mtp-scale", "-2"], mentions: "--mtp-scale) must be a finite number >= 0")
        try assertError(["train", "--save-every", "-3"], mentions: "--save-every must be >= 0")
    }

    func testNonFiniteOptionsAreRefused() throws {
        try assertError(["train", "--clip", "nan"], mentions: "--clip must be a finite number")
        try assertError(["train", "--weight-decay", "nan"], mentions: "--weight-decay must be a finite number")
        try assertError(["train", "--mtp-scale", "inf"], mentions: "--mtp-scale) must be a finite number")
    }

    func testHugeSizesAreErrorsNamingTheFlag() throws {
        try assertError(["train", "--seq-len", "\(1 << 40)"], mentions: "--seq-len 1099511627776")
        try assertError(["train", "--hidden", "\(1 << 20)"], mentions: "hidden 1048576")
        try assertError(["train", "--documents", "1000000000000"], mentions: "--documents 1000000000000")
        try assertError(["train", "--batch-size", "1000000"], mentions: "--batch-size 1000000")
        try assertError(["bench", "loss", "--tokens", "\(1 << 40)"], mentions: "--tokens 1099511627776")
        try assertError(["bench", "matmul", "--m", "\(1 << 32)", "--k", "\(1 << 32)"], mentions: "--m 4294967296 --k 4294967296")
        try assertError(["bench", "attention", "--batch-size", "\(1 << 40)"], mentions: "--batch-size 1099511627776")
    }

    func testABatchLargerThanTheDataIsFoundBeforeTraining() throws {
        try assertError(["train"] + tinyTrainFlags + ["--batch-size", "5000", "--steps", "1"], mentions: "fewer than one batch")
    }

    func testHeadsWithoutTargetsAreRefused() throws {
        try assertError(["train", "--seq-len", "1"], mentions: "without targets")
        try assertError(["train", "--depths", "8", "--seq-len", "8"], mentions: "depth 7 without targets")
    }

    func testPipelineFlagsAreBoundedAndBlameTheRightFlag() throws {
        try assertError(["train", "--pipeline-stages", "1000000", "--print-schedule"], mentions: "more than the 10 blocks", within: 20)
        let r = try runMTP(["train", "--pipeline-stages", "5", "--batch-size", "2"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("by default") && r.stderr.contains("give --microbatches M"), r.stderr)
        XCTAssertFalse(r.stderr.contains("--microbatches 5 must"), r.stderr)
    }

    func testDataFlagsThatWouldBeIgnoredAreRefused() throws {
        let folder = try temporaryFolder("data-flags")
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = folder.appendingPathComponent("a.txt")
        try Data("some text\n\nmore text\n".utf8).write(to: text)
        try assertError(["train", "--data", text.path, "--vocab", "100"], mentions: "--vocab does not apply to --data")
        try assertError(["train", "--separator", "3"], mentions: "--separator applies to --tokens")
        try assertError(["train", "--allow-data-change"], mentions: "--allow-data-change needs --resume")
    }

    func testPresetAndHeldOutTextNeedByteLevelData() throws {
        let folder = try temporaryFolder("preset-flags")
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = folder.appendingPathComponent("a.txt")
        try Data("some text\n\nmore text\n".utf8).write(to: text)
        try assertError(["train", "--preset", "bytes-10min"], mentions: "--preset bytes-10min is for byte-level text")
        try assertError(["train", "--preset", "bytes-11min", "--data", text.path], mentions: "bytes-11min")
        try assertError(["train", "--write-held-out", folder.appendingPathComponent("h.txt").path],
                        mentions: "--write-held-out needs byte-level --data")
        // The data file itself (or any existing file) is never overwritten.
        let before = try Data(contentsOf: text)
        try assertError(["train", "--data", text.path, "--steps", "1", "--seq-len", "4", "--batch-size", "1",
                         "--write-held-out", text.path, "--out", folder.appendingPathComponent("run").path],
                        mentions: "exists; name a new file")
        XCTAssertEqual(try Data(contentsOf: text), before)
    }

    func testFileSystemErrorsAreHuman() throws {
        let folder = try temporaryFolder("fs")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("plain")
        try Data("x".utf8).write(to: file)
        try assertError(["train"] + tinyTrainFlags + ["--steps", "1", "--out", file.appendingPathComponent("run").path],
                        mentions: "cannot create the folder")
        try assertError(["loss", folder.appendingPathComponent("missing.safetensors").path], mentions: "missing.safetensors")
    }

    func testLossRefusesToOverwriteItsOwnCase() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/cases/loss_masked_all_ignored_sum.safetensors")
        guard FileManager.default.fileExists(atPath: fixture.path) else { throw XCTSkip("no fixture \(fixture.path)") }
        let folder = try temporaryFolder("grads")
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("case.safetensors")
        try FileManager.default.copyItem(at: fixture, to: copy)
        let before = try Data(contentsOf: copy)
        try assertError(["loss", copy.path, "--grads", folder.path + "/./case.safetensors"], mentions: "is the case file itself")
        XCTAssertEqual(try Data(contentsOf: copy), before)
    }

    func testGenerateSizesAreChecked() throws {
        guard let checkpoint = Self.checkpoint else { throw XCTSkip("could not train the tiny checkpoint") }
        let c = ["generate", "--checkpoint", checkpoint.path]
        try assertError(c + ["--max-tokens", "\(1 << 40)"], mentions: "--max-tokens 1099511627776", within: 30)
        try assertError(c + ["--max-tokens", "\(Int.max)"], mentions: "--max-tokens \(Int.max)", within: 30)
        try assertError(c + ["--prompt-index", "\(Int.max)"], mentions: "--prompt-index \(Int.max) is past", within: 30)
        try assertError(c + ["--prompt-index=-1"], mentions: "--prompt-index must be >= 0, got -1")
        try assertError(c + ["--prompt-index", "-1"], mentions: "--prompt-index must be >= 0, got -1")
    }

    func testResumeContinuesTheRecordedRunNextToItsCheckpoint() throws {
        let folder = try temporaryFolder("resume")
        let cwd = try temporaryFolder("resume-cwd")
        defer { try? FileManager.default.removeItem(at: folder); try? FileManager.default.removeItem(at: cwd) }
        let first = try runMTP(["train"] + tinyTrainFlags + ["--steps", "4", "--stop-at", "2", "--out", folder.path])
        XCTAssertEqual(first.status, 0, first.stderr)
        let checkpoint = folder.appendingPathComponent("checkpoint.safetensors").path
        try assertError(["train", "--resume", checkpoint, "--lr", "0.5", "--loss", "masked", "--seed", "5"],
                        mentions: "--lr 0.5 (checkpoint: 0.003), --loss masked (checkpoint: fused), --seed 5 (checkpoint: 0)")
        try assertError(["train", "--resume", checkpoint, "--documents", "50"], mentions: "--documents 40 → 50")
        let resumed = try runMTP(["train", "--resume", checkpoint, "--steps", "6"], in: cwd)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cwd.appendingPathComponent("runs").path), "wrote into ./runs/default")
        let header = try JSONSerialization.jsonObject(with: safetensorsHeader(URL(fileURLWithPath: checkpoint))) as? [String: Any]
        XCTAssertEqual((header?["__metadata__"] as? [String: String])?["step"], "6", "extended with --steps 6, next to its checkpoint")
    }
}

/// The JSON header of a safetensors file.
func safetensorsHeader(_ url: URL) throws -> Data {
    let data = try Data(contentsOf: url)
    let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    return data.subdata(in: 8..<(8 + n))
}
