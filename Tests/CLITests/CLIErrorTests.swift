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
        try assertError(["bench", "matmul", "--m", "8", "--k", "8", "--n", "8"], mentions: "MTP_BLAS_SPLIT='abc' must be 0",
                        environment: ["MTP_BLAS_SPLIT": "abc"])
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
        try assertError(["loss", folder.path], mentions: "\(folder.path): is a directory, expected a file")
        try assertError(["loss", "/dev/null"], mentions: "/dev/null: is not a regular file")
        try assertError(["loss", ""], mentions: "the case file path is empty")
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/cases/loss_masked_all_ignored_sum.safetensors")
        try assertError(["loss", fixture.path, "--grads", folder.path], mentions: "\(folder.path): is a directory, expected a file")
        try assertError(["loss", fixture.path, "--grads", ""], mentions: "--grads needs a file path, got an empty string")
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
        try assertError(c + ["--documents", "0"], mentions: "--documents must be >= 1, got 0")
        try assertError(c + ["--speculative", "--draft-depths", "0"], mentions: "--draft-depths must be in 1...1 (the checkpoint's MTP depths), got 0")
        try assertError(c + ["--speculative", "--draft-depths", "2"], mentions: "--draft-depths must be in 1...1 (the checkpoint's MTP depths), got 2")
    }

    func testARunIsNeverReplacedWithoutBeingAsked() throws {
        let cwd = try temporaryFolder("no-replace")
        defer { try? FileManager.default.removeItem(at: cwd) }
        let run = cwd.appendingPathComponent("run")
        let first = try runMTP(["train"] + tinyTrainFlags + ["--steps", "2", "--out", run.path])
        XCTAssertEqual(first.status, 0, first.stderr)
        let checkpoint = run.appendingPathComponent("checkpoint.safetensors")
        let before = try Data(contentsOf: checkpoint)
        try assertError(["train"] + tinyTrainFlags + ["--steps", "2", "--seed", "7", "--out", run.path],
                        mentions: "--out \(run.path) already holds a run")
        XCTAssertEqual(try Data(contentsOf: checkpoint), before, "the first run's checkpoint was replaced")
        let replaced = try runMTP(["train"] + tinyTrainFlags + ["--steps", "2", "--seed", "7", "--out", run.path, "--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        XCTAssertNotEqual(try Data(contentsOf: checkpoint), before, "--overwrite replaces it")
        // Without --out, a second run goes to runs/default-2 and the first stays.
        for _ in 0..<2 { XCTAssertEqual(try runMTP(["train"] + tinyTrainFlags + ["--steps", "1"], in: cwd).status, 0) }
        let runs = try FileManager.default.contentsOfDirectory(atPath: cwd.appendingPathComponent("runs").path).sorted()
        XCTAssertEqual(runs, ["default", "default-2"])
        // Folders where the run writes its files, and an empty --out, are refused before training.
        let blocked = cwd.appendingPathComponent("blocked")
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("losses.svg"), withIntermediateDirectories: true)
        try assertError(["train"] + tinyTrainFlags + ["--out", blocked.path], mentions: "losses.svg is a folder", within: 20)
        try assertError(["train"] + tinyTrainFlags + ["--out", ""], mentions: "--out needs a folder path", within: 20)
    }

    func testTwoRunsAtOnceNeverShareAFolder() throws {
        let cwd = try temporaryFolder("concurrent-runs")
        defer { try? FileManager.default.removeItem(at: cwd) }
        // A long run without --out, its first checkpoint far away: it holds runs/default.
        let long = try MTPProcess(["train"] + tinyTrainFlags + ["--steps", "100000", "--save-every", "0"], in: cwd)
        defer { long.send(SIGKILL); _ = long.finish(timeout: 30) }
        let lock = cwd.appendingPathComponent("runs/default/.mtp-train.lock").path
        let deadline = Date().addingTimeInterval(60)
        func held() -> Bool {
            let fd = open(lock, O_RDONLY)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            if flock(fd, LOCK_SH | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
            return true
        }
        while !held() && Date() < deadline { usleep(100_000) }
        XCTAssertTrue(held(), "the long run never claimed runs/default")
        let second = try runMTP(["train"] + tinyTrainFlags + ["--steps", "1"], in: cwd)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("runs/default-2/checkpoint.safetensors"), second.stdout)
        try assertError(["train"] + tinyTrainFlags + ["--steps", "1", "--out", cwd.appendingPathComponent("runs/default").path],
                        mentions: "is in use by an mtp train running now")
        // generate without --checkpoint takes the newest run, and says which.
        let generated = try runMTP(["generate", "--max-tokens", "2", "--documents", "40"], in: cwd)
        XCTAssertEqual(generated.status, 0, generated.stderr)
        XCTAssertTrue(generated.stderr.contains("checkpoint: runs/default-2/checkpoint.safetensors (the newest run under runs/)"),
                      generated.stderr)
    }

    func testARunOnARelativeDataPathResumesFromAnyFolder() throws {
        let home = try temporaryFolder("relative-data")
        let elsewhere = try temporaryFolder("relative-data-cwd")
        defer { for f in [home, elsewhere] { try? FileManager.default.removeItem(at: f) } }
        let text = (0..<60).map { "Document \($0): the quick brown fox jumps over the lazy dog \($0 * 7)." }.joined(separator: "\n\n")
        try Data(text.utf8).write(to: home.appendingPathComponent("data.txt"))
        let flags = ["--layers", "1", "--hidden", "8", "--heads", "2", "--intermediate", "16", "--depths", "1",
                     "--batch-size", "2", "--seq-len", "8", "--eval-every", "1000"]
        let first = try runMTP(["train", "--data", "data.txt", "--steps", "4", "--stop-at", "2", "--out", "run"] + flags, in: home)
        XCTAssertEqual(first.status, 0, first.stderr)
        let checkpoint = home.appendingPathComponent("run/checkpoint.safetensors").path
        let resumed = try runMTP(["train", "--resume", checkpoint, "--stop-at", "3"], in: elsewhere)
        XCTAssertEqual(resumed.status, 0, "a relative --data path must not tie the run to its folder: \(resumed.stderr)")
        let spelledOut = try runMTP(["train", "--resume", checkpoint, "--data", home.path + "/./data.txt"], in: elsewhere)
        XCTAssertEqual(spelledOut.status, 0, "the same file by another spelling is the same data: \(spelledOut.stderr)")
        try assertError(["train", "--resume", checkpoint, "--documents", "5"], mentions: "--documents applies to the built-in corpus only")
    }

    func testBenchSizesThatOverflowAreErrors() throws {
        try assertError(["bench", "loss", "--depths", "\(Int.max)"], mentions: "--depths must be in 0..<")
        try assertError(["bench", "train", "--seq-len", "\(Int.max)"], mentions: "overflow a 64-bit count")
        try assertError(["bench", "train", "--batch-size", "\(Int.max)"], mentions: "overflow a 64-bit count")
        try assertError(["bench", "loss", "--repeats", "\(Int.max)"], mentions: "--repeats must be in 3...10000")
        try assertError(["loss", "x.safetensors", "--tensor-parallel", "0"], mentions: "--tensor-parallel must be at least 1, got 0")
        try assertError(["bench", "matmul", "--m", "8", "--k", "8", "--n", "8"], mentions: "MTP_ROW_KERNEL='bogus' must be generic, avx2 or avx512",
                        environment: ["MTP_ROW_KERNEL": "bogus"])
        try assertError(["train", "--data", "x.txt", "--write-held-out", "run/losses.svg"], mentions: "losses.svg is a name the run writes")
    }

    func testRunsThatCannotLearnAnythingAreRefusedAndErrorsStartTheirLine() throws {
        let folder = try temporaryFolder("no-targets")
        defer { try? FileManager.default.removeItem(at: folder) }
        // uint16 tokens where every other one is the separator: every document is one token long.
        var bytes = Data()
        for i in 0..<4000 { let v = UInt16(i % 2 == 0 ? 0 : 1 + i % 40); bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
        let tokens = folder.appendingPathComponent("tiny.bin")
        try bytes.write(to: tokens)
        try assertError(["train", "--tokens", tokens.path, "--vocab", "50", "--separator", "0", "--layers", "1", "--hidden", "8",
                         "--heads", "2", "--intermediate", "16", "--batch-size", "2", "--seq-len", "8", "--out", folder.appendingPathComponent("run").path],
                        mentions: "no training document has 2 or more tokens")
        try assertError(["train", "--pipeline-stages", "2", "--batch-size", "4", "--print-schedule", "--json"],
                        mentions: "--print-schedule prints text; drop --json")
        // Weights that overflow are never written over a checkpoint.
        let overflow = folder.appendingPathComponent("overflow")
        try assertError(["train"] + tinyTrainFlags + ["--steps", "5", "--lr", "1e38", "--weight-decay", "1e30", "--out", overflow.path],
                        mentions: "the weights are no longer finite, so no checkpoint is written")
        XCTAssertFalse(FileManager.default.fileExists(atPath: overflow.appendingPathComponent("checkpoint.safetensors").path))
        // A run that fails after its progress bar: the error is still a line of its own.
        try assertError(["train"] + tinyTrainFlags + ["--steps", "6", "--mtp-scale", "1e38", "--out", folder.appendingPathComponent("inf").path],
                        mentions: "were skipped")
    }

    func testLayoutFlagsNameTheirValue() throws {
        try assertError(["train", "--data-parallel", "-1"], mentions: "--data-parallel must be at least 1, got -1")
        try assertError(["train", "--context-parallel=-2"], mentions: "--context-parallel must be at least 1, got -2")
        try assertError(["train", "--pipeline-stages", "2", "--stage-layers", "99999999999999999999,1"],
                        mentions: "block count 99999999999999999999 is too large")
    }

    func testResumeRefusesFlagsItWouldIgnore() throws {
        let run = try temporaryFolder("resume-flags")
        defer { try? FileManager.default.removeItem(at: run) }
        XCTAssertEqual(try runMTP(["train"] + tinyTrainFlags + ["--steps", "4", "--stop-at", "2", "--out", run.path]).status, 0)
        let checkpoint = run.appendingPathComponent("checkpoint.safetensors").path
        try assertError(["train", "--resume", checkpoint, "--freeze-trunk"], mentions: "--freeze-trunk cannot be combined with --resume")
        try assertError(["train", "--resume", checkpoint, "--tokenizer", checkpoint], mentions: "--tokenizer cannot be combined with --resume")
        try assertError(["train", "--resume", checkpoint, "--init-from", run.path], mentions: "--init-from cannot be combined with --resume")
        try assertError(["train", "--resume", checkpoint, "--stop-at", "2"], mentions: "--stop-at 2 is not after the checkpoint's step 2")
    }

    func testHugeDepthsAreRefusedBeforeTheFloors() throws {
        var flags = tinyTrainFlags
        if let i = flags.firstIndex(of: "--depths") { flags.removeSubrange(i...(i + 1)) }
        for depths in ["99999999999", "\(Int.max)"] {
            try assertError(["train"] + flags + ["--depths", depths], mentions: "leaves MTP depth", within: 20)
        }
        try assertError(["train", "--documents", "40", "--depths", "50", "--seq-len", "64", "--layers", "1", "--hidden", "8",
                         "--heads", "2", "--intermediate", "16", "--batch-size", "2"], mentions: "has no held-out targets (every held-out document is too short for it)",
                        within: 60)
    }

    func testControlCharactersInAnErrorAreEscaped() throws {
        let folder = try temporaryFolder("control-bytes")
        defer { try? FileManager.default.removeItem(at: folder) }
        // A case file whose only tensor is named ESC "[31mred" (a terminal colour sequence) plus a NUL.
        let header = Data(#"{"\u001b[31mred\u0000":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        var file = Data((0..<8).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) })
        file.append(header)
        file.append(Data([0, 0, 0, 0]))
        let url = folder.appendingPathComponent("case.safetensors")
        try file.write(to: url)
        try assertError(["loss", url.path], mentions: #"\u{1B}[31mred\u{0}"#)
        let r = try runMTP(["loss", url.path])
        XCTAssertFalse(r.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0 }, "raw control bytes on stderr")
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
