import Foundation
import Tensors
import XCTest

/// `mpirun -np T mtp loss CASE --tensor-parallel T` against the single-process `mtp loss CASE`
/// on the SPEC §6 fixtures (V = 13 or 11: never divisible by 2 or 4, so the shards are uneven):
/// the loss on every rank, `per_depth`, `loss_rows`, and every gradient — each rank's shard
/// of the LM head and logits, the full hidden states — to 1e-5 relative.
final class VocabularyParallelLossTests: XCTestCase {
    private static let cases = [
        // Fused linear CE: reductions, softcap, ignored rows, numLabelTokens.
        "loss_fused_sum_bshd", "loss_fused_softcap30", "loss_fused_softcap2_flat", "loss_fused_none_bshd",
        "loss_fused_mean_flat", "loss_fused_ignore_index_minus1", "loss_fused_all_ignored_mean",
        "loss_fused_num_label_tokens_12", "loss_fused_num_label_tokens_0",
        // Masked and chunked CE from sharded logits.
        "loss_masked_mask_mean", "loss_masked_mask_sum", "loss_masked_none_bshd", "loss_masked_logits_1e4",
        "loss_masked_ignore_index_minus1", "loss_masked_equal_logits_row",
        "loss_chunked_sum_bshd_chunk5", "loss_chunked_mean_flat_chunk3", "loss_chunked_none_bshd_chunk4",
        // MTP depths sharing the one shard (fused) or the sharded head (logits losses on hidden states).
        "mtp_fused_bshd", "mtp_fused_softcap2_mean", "mtp_fused_thd_cuseqlens_1xn", "mtp_fused_num_label_tokens_20",
        "mtp_masked_hidden_bshd", "mtp_chunked_hidden_bshd", "mtp_masked_bshd_seqidx_S", "mtp_per_depth_targets",
        "mtp_none_reduction",
        // Main loss + MTP depths through PipelineCausalLMLoss.
        "pipeline_tuple_fused_mean", "pipeline_model_output_fused", "pipeline_tuple_fused_seqidx",
        "pipeline_tuple_masked_hidden", "pipeline_model_output_masked_logits",
    ]

    private func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/cases")
    }

    private func json(_ result: MPIJob.Result) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.output)
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], result.output)
    }

    /// Rows of rank r's shard: the first V mod T ranks hold ⌈V/T⌉ rows (computed here, not by the code under test).
    private func shardRange(_ v: Int, _ t: Int, _ r: Int) -> Range<Int> {
        var lo = 0
        for k in 0..<r { lo += v / t + (k < v % t ? 1 : 0) }
        return lo ..< lo + v / t + (r < v % t ? 1 : 0)
    }

    /// max|a − b| / max|a| (max|a − b| when a is zero).
    private func relative(_ a: [Float], _ b: [Float]) -> Double {
        XCTAssertEqual(a.count, b.count)
        let scale = Double(a.map { abs($0) }.max() ?? 0)
        let diff = Double(zip(a, b).map { abs($0 - $1) }.max() ?? 0)
        return scale > 0 ? diff / scale : diff
    }

    func testEveryRankMatchesTheSingleProcess() throws {
        try MPIJob.requireMPI()
        let dir = try folder()
        var worst = 0.0
        // The fused cases again in chunks of a few rows (a budget of 20 floats: one row of
        // V = 13 in one process, two rows of ⌈13/T⌉ on every rank), so every rank issues
        // several all-gathers and the chunk counts must agree across uneven shards.
        var files = Self.cases.map { ($0, Self.fixtures.appendingPathComponent("\($0).safetensors").path) }
        for name in Self.cases where name.contains("fused") {
            var (tensors, metadata) = try SafeTensors.read(contentsOf: Self.fixtures.appendingPathComponent("\(name).safetensors"))
            metadata["chunk_budget_floats"] = "20"
            let url = dir.appendingPathComponent("\(name)_chunked.safetensors")
            try SafeTensors.write(tensors, metadata: metadata, to: url)
            files.append(("\(name)_chunked", url.path))
        }
        for (name, file) in files {
            let single = dir.appendingPathComponent("\(name).single").path
            let reference = try json(try MPIJob.runAlone(["loss", file, "--grads", single], timeout: 60))
            let (grads, _) = try SafeTensors.read(contentsOf: URL(fileURLWithPath: single))
            let (inputs, _) = try SafeTensors.read(contentsOf: URL(fileURLWithPath: file))
            let v = inputs["lm_head.weight"]?.shape[0] ?? inputs.first { $0.key.contains("logits") }!.value.shape.last!
            let loss = (reference["loss"] as! NSNumber).doubleValue
            for t in [2, 4] {
                let label = "\(name) T=\(t)"
                let out = dir.appendingPathComponent("\(name).t\(t)").path
                let parallel = try json(try MPIJob.run(ranks: t, arguments: ["loss", file, "--tensor-parallel", "\(t)", "--grads", out],
                                                       timeout: 120))
                let l = (parallel["loss"] as! NSNumber).doubleValue
                worst = max(worst, abs(l - loss) / max(abs(loss), 1e-30))
                XCTAssertLessThanOrEqual(abs(l - loss), 1e-5 * abs(loss), "\(label): loss \(l) vs \(loss)")
                for key in ["loss_rows", "per_depth"] {
                    let a = (reference[key] as? [NSNumber] ?? []).map(\.floatValue), b = (parallel[key] as? [NSNumber] ?? []).map(\.floatValue)
                    XCTAssertEqual(a.count, b.count, "\(label): \(key)")
                    if !a.isEmpty { XCTAssertLessThanOrEqual(relative(a, b), 1e-5, "\(label): \(key)") }
                }
                for r in 0..<t {
                    let (shard, _) = try SafeTensors.read(contentsOf: URL(fileURLWithPath: "\(out).rank\(r)"))
                    let rankLoss = Double(try XCTUnwrap(shard["loss"], label).floats.reduce(0, +))
                    XCTAssertLessThanOrEqual(abs(rankLoss - loss), 1e-5 * max(abs(loss), 1e-30), "\(label): rank \(r) loss")
                    XCTAssertEqual(Set(shard.keys.filter { $0 != "loss" }), Set(grads.keys), "\(label): rank \(r) gradient names")
                    for (key, full) in grads {
                        guard let mine = shard[key] else { continue }
                        let rows = shardRange(v, t, r)
                        let expected: Tensor
                        if key == "grad.lm_head.weight" {
                            expected = try full.sliced(axis: 0, rows)
                        } else if key.contains("logits") {
                            expected = try full.sliced(axis: full.rank - 1, rows)
                        } else {
                            expected = full
                        }
                        XCTAssertEqual(mine.shape, expected.shape, "\(label): rank \(r) \(key)")
                        let d = relative(expected.floats, mine.floats)
                        worst = max(worst, d)
                        XCTAssertLessThanOrEqual(d, 1e-5, "\(label): rank \(r) \(key) differs by \(d)")
                    }
                }
            }
        }
        print("vocabulary-parallel loss: \(files.count) cases × T ∈ {2, 4}: worst relative difference \(worst)")
    }

    func testAJobOfAnotherSizeIsRefused() throws {
        try MPIJob.requireMPI()
        let file = Self.fixtures.appendingPathComponent("loss_fused_sum_bshd.safetensors").path
        let result = try MPIJob.run(ranks: 2, arguments: ["loss", file, "--tensor-parallel", "3"], timeout: 60)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("the job has 2 ranks but --tensor-parallel is 3"), result.output)
        // Without --tensor-parallel every rank would evaluate the whole case (and write the same --grads).
        let plain = try MPIJob.run(ranks: 2, arguments: ["loss", file], timeout: 60)
        XCTAssertNotEqual(plain.status, 0)
        XCTAssertTrue(plain.stderr.contains("the job has 2 ranks but --tensor-parallel is 1"), plain.output)
    }

    func testARanksGradientFileIsNeverTheCaseFile() throws {
        try MPIJob.requireMPI()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mtp-tp-grads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let caseFile = folder.appendingPathComponent("x.rank0")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("loss_fused_sum_bshd.safetensors"), to: caseFile)
        let before = try Data(contentsOf: caseFile)
        let result = try MPIJob.run(ranks: 2, arguments: ["loss", caseFile.path, "--tensor-parallel", "2",
                                                          "--grads", folder.appendingPathComponent("x").path], timeout: 60)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("the case file itself"), result.output)
        XCTAssertEqual(try Data(contentsOf: caseFile), before, "rank 0 wrote its gradients over the case")
    }
}
