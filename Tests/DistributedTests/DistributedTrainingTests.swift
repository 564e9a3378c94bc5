import Foundation
import Tensors
import XCTest

/// `mtp train` across real `mpirun` ranks against the single process with the same seed and
/// global batch: loss trajectory and final parameters (and AdamW moments) to 1e-5 relative.
final class DistributedTrainingTests: XCTestCase {
    /// A tiny model and short run: the debug build trains it in seconds.
    private let model = ["--layers", "2", "--hidden", "16", "--heads", "2", "--intermediate", "32", "--seq-len", "16",
                         "--batch-size", "4", "--documents", "300"]

    private func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private struct Run {
        var tensors: [String: Tensor]
        var history: [[String: Any]]
        var json: [String: Any]
    }

    private func read(_ out: URL, _ result: MPIJob.Result) throws -> Run {
        XCTAssertEqual(result.status, 0, result.output)
        let (tensors, metadata) = try SafeTensors.read(contentsOf: out.appendingPathComponent("checkpoint.safetensors"))
        let history = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data((metadata["history"] ?? "").utf8)) as? [[String: Any]])
        let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], result.output)
        return Run(tensors: tensors, history: history, json: json)
    }

    private func train(ranks: Int, _ arguments: [String], out: URL) throws -> Run {
        let args = ["train"] + model + arguments + ["--json", "--out", out.path]
        let result = ranks == 0 ? try MPIJob.runAlone(args, timeout: 300) : try MPIJob.run(ranks: ranks, arguments: args, timeout: 300)
        return try read(out, result)
    }

    /// The largest max|a − b| / max|a| over every tensor, and the largest relative loss difference over the steps.
    private func compare(_ a: Run, _ b: Run, _ label: String) {
        XCTAssertEqual(Set(a.tensors.keys), Set(b.tensors.keys), label)
        var worst = 0.0
        for (name, x) in a.tensors {
            guard let y = b.tensors[name] else { continue }
            let xs = x.floats, ys = y.floats
            let scale = Double(xs.map { abs($0) }.max() ?? 0)
            let diff = Double(zip(xs, ys).map { abs($0 - $1) }.max() ?? 0)
            worst = max(worst, scale > 0 ? diff / scale : diff)
        }
        XCTAssertLessThanOrEqual(worst, 1e-5, "\(label): parameters/moments differ by \(worst)")
        XCTAssertEqual(a.history.count, b.history.count, label)
        for (s, (p, q)) in zip(a.history, b.history).enumerated() {
            let x = (p["mainLoss"] as? NSNumber)?.doubleValue ?? .nan, y = (q["mainLoss"] as? NSNumber)?.doubleValue ?? .nan
            XCTAssertLessThanOrEqual(abs(x - y) / abs(x), 1e-5, "\(label): step \(s + 1) main loss \(x) vs \(y)")
            let dx = (p["depthLosses"] as? [NSNumber] ?? []).map(\.doubleValue), dy = (q["depthLosses"] as? [NSNumber] ?? []).map(\.doubleValue)
            XCTAssertEqual(dx.count, dy.count)
            for (u, v) in zip(dx, dy) { XCTAssertLessThanOrEqual(abs(u - v) / abs(u), 1e-5, "\(label): step \(s + 1) depth loss") }
        }
        print("\(label): worst parameter/moment relative difference \(worst) over \(a.tensors.count) tensors, \(a.history.count) steps")
    }

    func testDataAndPipelineLayoutsMatchTheSingleProcess() throws {
        try MPIJob.requireMPI()
        let root = try folder()
        let steps = ["--steps", "20", "--eval-every", "10"]
        let single = try train(ranks: 0, steps, out: root.appendingPathComponent("single"))
        XCTAssertEqual(single.json["ranks"] as? Int, 1)
        XCTAssertEqual(single.history.count, 20)
        for (d, p) in [(2, 1), (1, 2), (2, 2)] {
            let run = try train(ranks: d * p, steps + ["--data-parallel", "\(d)", "--pipeline-stages", "\(p)"],
                                out: root.appendingPathComponent("d\(d)p\(p)"))
            XCTAssertEqual(run.json["ranks"] as? Int, d * p)
            let layout = run.json["layout"] as? [String: Int]
            XCTAssertEqual(layout, ["data": d, "pipeline": p, "tensor": 1, "context": 1])
            compare(single, run, "D=\(d) P=\(p)")
        }
    }

    /// The embedding and head split by vocabulary rows (V = 67: shards of 34 and 33 rows) over
    /// T = 2, alone and combined with D = 2 and with P = 2 (the fused loss with MTP on the last
    /// stage's sharded head); the checkpoint gathers the shards and moments into the
    /// single-process layout, so `compare` checks every table row.
    func testTensorParallelLayoutsMatchTheSingleProcess() throws {
        try MPIJob.requireMPI()
        let root = try folder()
        let steps = ["--steps", "20", "--eval-every", "10", "--vocab", "67"]
        let single = try train(ranks: 0, steps, out: root.appendingPathComponent("single"))
        for (d, p, t) in [(1, 1, 2), (2, 1, 2), (1, 2, 2)] {
            let run = try train(ranks: d * p * t, steps + ["--data-parallel", "\(d)", "--pipeline-stages", "\(p)",
                                                             "--tensor-parallel", "\(t)"],
                                out: root.appendingPathComponent("d\(d)p\(p)t\(t)"))
            XCTAssertEqual(run.json["layout"] as? [String: Int], ["data": d, "pipeline": p, "tensor": t, "context": 1])
            let traffic = run.json["traffic_per_step"] as? [String: Int]
            XCTAssertGreaterThan(traffic?["tensor_bytes"] ?? 0, 0)
            compare(single, run, "D=\(d) P=\(p) T=\(t)")
        }
    }

    /// Every packed row of 16 tokens split over C ranks by the zigzag split (2C chunks; rank c
    /// holds chunks c and 2C−1−c). The corpus's documents are 16–48 tokens long, so rows hold
    /// document boundaries and documents span the cuts: the attention's document mask and each
    /// MTP depth's boundary masking must come from the whole rows. C = 2 and 4 alone, C = 2
    /// with T = 2 and with D = 2.
    func testContextParallelLayoutsMatchTheSingleProcess() throws {
        try MPIJob.requireMPI()
        let root = try folder()
        let steps = ["--steps", "20", "--eval-every", "10", "--vocab", "67"]
        let single = try train(ranks: 0, steps, out: root.appendingPathComponent("single"))
        for (d, t, c) in [(1, 1, 2), (1, 1, 4), (1, 2, 2), (2, 1, 2)] {
            let run = try train(ranks: d * t * c, steps + ["--data-parallel", "\(d)", "--tensor-parallel", "\(t)",
                                                             "--context-parallel", "\(c)"],
                                out: root.appendingPathComponent("d\(d)t\(t)c\(c)"))
            XCTAssertEqual(run.json["layout"] as? [String: Int], ["data": d, "pipeline": 1, "tensor": t, "context": c])
            let traffic = run.json["traffic_per_step"] as? [String: Int]
            XCTAssertGreaterThan(traffic?["context_bytes"] ?? 0, 0)
            compare(single, run, "D=\(d) T=\(t) C=\(c)")
        }
    }

    /// `--recompute` under context parallelism (each recomputed attention all-gathers its keys
    /// and values again in the backward pass, on every rank in the same order) and across
    /// pipeline ranks: the same history and parameters, bit for bit, as keeping the activations.
    func testRecomputedBlocksGiveTheSameRunUnderContextAndPipelineParallelism() throws {
        try MPIJob.requireMPI()
        let root = try folder()
        let steps = ["--steps", "6", "--eval-every", "3", "--vocab", "67"]
        for (name, layout) in [("c2", ["--context-parallel", "2"]), ("p2", ["--pipeline-stages", "2"])] {
            let kept = try train(ranks: 2, steps + layout, out: root.appendingPathComponent(name))
            let recomputed = try train(ranks: 2, steps + layout + ["--recompute"], out: root.appendingPathComponent(name + "r"))
            XCTAssertEqual(recomputed.json["recompute"] as? Bool, true)
            XCTAssertEqual(kept.history as NSArray, recomputed.history as NSArray, name)
            XCTAssertEqual(Set(kept.tensors.keys), Set(recomputed.tensors.keys))
            for (key, t) in kept.tensors { XCTAssertEqual(t.floats, recomputed.tensors[key]?.floats, "\(name): \(key)") }
        }
    }

    func testCheckpointsResumeAcrossLayouts() throws {
        try MPIJob.requireMPI()
        let root = try folder()
        let steps = ["--steps", "12", "--eval-every", "4"]
        let whole = try train(ranks: 0, steps, out: root.appendingPathComponent("whole"))
        // 6 steps on 2 data-parallel ranks, the rest in one process.
        _ = try train(ranks: 2, steps + ["--data-parallel", "2", "--stop-at", "6"], out: root.appendingPathComponent("a"))
        let resumed = try train(ranks: 0, ["--resume", root.appendingPathComponent("a/checkpoint.safetensors").path],
                                out: root.appendingPathComponent("b"))
        compare(whole, resumed, "D=2 then single process")
        // 6 steps in one process, the rest as a 2-stage pipeline across ranks.
        _ = try train(ranks: 0, steps + ["--stop-at", "6"], out: root.appendingPathComponent("c"))
        let piped = try train(ranks: 2, ["--resume", root.appendingPathComponent("c/checkpoint.safetensors").path,
                                         "--pipeline-stages", "2"], out: root.appendingPathComponent("d"))
        compare(whole, piped, "single process then P=2")
        // 6 steps with the vocabulary tables split over 2 ranks (the checkpoint gathers them), the rest in one process.
        _ = try train(ranks: 2, steps + ["--tensor-parallel", "2", "--stop-at", "6"], out: root.appendingPathComponent("e"))
        let gathered = try train(ranks: 0, ["--resume", root.appendingPathComponent("e/checkpoint.safetensors").path],
                                 out: root.appendingPathComponent("f"))
        compare(whole, gathered, "T=2 then single process")
    }

    func testAKilledRankEndsTheJob() throws {
        try MPIJob.requireMPI()
        let out = try folder().appendingPathComponent("killed")
        var killedAt: Date?
        let args = MPIJob.launcherOptions + ["-np", "2", MPIJob.mtp, "train"] + model
            + ["--steps", "100000", "--data-parallel", "2", "--out", out.path]
        let result = try MPIJob.launch(MPIJob.mpirun!, args, timeout: 120) { job in
            // Wait for both ranks and a few steps, then kill rank 1's process.
            let deadline = Date().addingTimeInterval(60)
            var ranks: [Int32] = []
            while Date() < deadline && ranks.count < 2 {
                Thread.sleep(forTimeInterval: 0.2)
                ranks = MPIJob.children(of: job.processIdentifier).sorted()
            }
            Thread.sleep(forTimeInterval: 2)
            if let victim = ranks.last {
                kill(victim, SIGKILL)
                killedAt = Date()
            }
        }
        let ended = Date()
        let killed = try XCTUnwrap(killedAt, "no rank process was found to kill")
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertLessThan(ended.timeIntervalSince(killed), 20, "the job went on \(ended.timeIntervalSince(killed)) s after a rank died")
    }

    func testAFailingRankAbortsEveryRankWithItsError() throws {
        try MPIJob.requireMPI()
        // Only rank 0 writes: an output folder under a regular file fails there alone, while
        // rank 1 goes on into the first collective; the abort must end it too.
        let root = try folder()
        let file = root.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        let start = Date()
        let result = try MPIJob.run(ranks: 2, arguments: ["train"] + model + ["--steps", "100000", "--data-parallel", "2",
                                                                                "--out", file.appendingPathComponent("out").path],
                                    timeout: 120)
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)
        XCTAssertEqual(result.stderr.components(separatedBy: "error: rank 0:").count - 1, 1, result.output)
    }

    func testMisconfiguredJobsAreRefusedByName() throws {
        try MPIJob.requireMPI()
        let out = try folder()
        let wrongCount = try MPIJob.run(ranks: 2, arguments: ["train"] + model + ["--data-parallel", "3", "--out", out.path],
                                        timeout: 60)
        XCTAssertNotEqual(wrongCount.status, 0)
        XCTAssertTrue(wrongCount.stderr.contains("2 ranks") && wrongCount.stderr.contains("--data-parallel 3"), wrongCount.output)
        let different = try MPIJob.run(programs: [["train"] + model + ["--data-parallel", "2", "--seed", "1", "--out", out.path],
                                                  ["train"] + model + ["--data-parallel", "2", "--seed", "2", "--out", out.path]],
                                       timeout: 60)
        XCTAssertNotEqual(different.status, 0)
        XCTAssertTrue(different.stderr.contains("different options"), different.output)
        let alone = try MPIJob.runAlone(["train"] + model + ["--data-parallel", "2", "--out", out.path], timeout: 60)
        XCTAssertEqual(alone.status, 1)
        XCTAssertTrue(alone.stderr.contains("mpirun"), alone.output)
    }
}
