// The kill-and-resume soak: a small run killed at random moments (SIGKILL: no chance to
// save; SIGINT: the polite stop) and resumed each time, ten times, then run to its end,
// must end with tensors — weights and AdamW moments — bit-identical to an uninterrupted
// run of the same seed and steps. Resumes give `--resume` and `--save-every` only:
// everything else (data, documents, options, output folder) comes from the checkpoint.
// A run that finishes before its signal starts the soak over (its folder is removed).

import Foundation
import XCTest

final class KillResumeSoakTests: XCTestCase {
    private let steps = 160
    private var flags: [String] { ["train"] + tinyTrainFlags + ["--steps", "\(steps)", "--save-every", "1", "--seed", "7"] }

    /// Every tensor of a checkpoint, as raw bytes by name.
    private func tensorBytes(_ url: URL) throws -> [String: Data] {
        let data = try Data(contentsOf: url)
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        var out: [String: Data] = [:]
        for (name, entry) in header where name != "__metadata__" {
            let offsets = try XCTUnwrap((entry as? [String: Any])?["data_offsets"] as? [Int])
            out[name] = data.subdata(in: (8 + n + offsets[0])..<(8 + n + offsets[1]))
        }
        return out
    }

    private func soak(signal: Int32, seed: UInt64) throws {
        let root = try temporaryFolder("soak")
        defer { try? FileManager.default.removeItem(at: root) }
        let straight = root.appendingPathComponent("straight"), interrupted = root.appendingPathComponent("interrupted")
        let reference = try runMTP(flags + ["--out", straight.path], timeout: 600)
        XCTAssertEqual(reference.status, 0, reference.stderr)

        let checkpoint = interrupted.appendingPathComponent("checkpoint.safetensors")
        func start() throws -> MTPProcess {
            FileManager.default.fileExists(atPath: checkpoint.path)
                ? try MTPProcess(["train", "--resume", checkpoint.path, "--save-every", "1"])
                : try MTPProcess(flags + ["--out", interrupted.path])
        }
        var rng = SystemRandomNumberGenerator.seeded(seed)
        var interruptions = 0, attempts = 0
        var resumePoints: [Int] = []
        while interruptions < 10 && attempts < 40 {
            attempts += 1
            let p = try start()
            usleep(UInt32(Double.random(in: 0.3...1.2, using: &rng) * 1e6))
            guard p.process.isRunning else {
                // It finished before the signal: start the soak again from scratch.
                _ = p.finish()
                try? FileManager.default.removeItem(at: interrupted)
                continue
            }
            p.send(signal)
            let r = p.finish(timeout: 120)
            if signal == SIGINT, !r.signaled, r.status != 0 {
                // Stopped politely: status 130 and how to resume.
                XCTAssertEqual(r.status, 130, r.stderr)
                XCTAssertTrue(r.stderr.contains("resume with: mtp train --resume"), r.stderr)
            }
            interruptions += 1
            if let header = try? safetensorsHeader(checkpoint),
               let m = (try? JSONSerialization.jsonObject(with: header) as? [String: Any])?["__metadata__"] as? [String: String],
               let step = m["step"].flatMap(Int.init) {
                resumePoints.append(step)
            }
        }
        // The signals landed inside the run, at different steps, not all before or after it.
        XCTAssertGreaterThanOrEqual(Set(resumePoints.filter { (1..<steps).contains($0) }).count, 3, "resume points \(resumePoints)")
        print("soak (signal \(signal)): resumed from steps \(resumePoints)")
        XCTAssertEqual(interruptions, 10, "the run kept finishing before the signal")
        let last = try start().finish(timeout: 600)
        XCTAssertEqual(last.status, 0, last.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: interrupted.path)
        XCTAssertFalse(names.contains { $0.contains(".partial-") }, "temporaries left: \(names)")
        let a = try tensorBytes(straight.appendingPathComponent("checkpoint.safetensors")), b = try tensorBytes(checkpoint)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        let differing = a.keys.filter { a[$0] != b[$0] }.sorted()
        XCTAssertEqual(differing, [], "tensors not bit-identical after \(interruptions) interruptions")
    }

    func testTenSIGKILLsAndResumesEndBitIdentical() throws {
        try soak(signal: SIGKILL, seed: 1)
    }

    func testTenSIGINTsAndResumesEndBitIdentical() throws {
        try soak(signal: SIGINT, seed: 2)
    }
}

extension SystemRandomNumberGenerator {
    /// A seeded generator for the soak's delays (SplitMix64), so a failing schedule can be rerun.
    static func seeded(_ seed: UInt64) -> SplitMix { SplitMix(state: seed) }
}

/// SplitMix64.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
