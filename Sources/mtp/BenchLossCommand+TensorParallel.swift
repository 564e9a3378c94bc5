import ArgumentParser
import Distributed
import Foundation
import Losses
import Tensors

/// One rank's figures of `mtp bench loss`.
struct BenchLossFigures {
    var seconds: Double
    var peakBytes: Int
    var rssGrowthBytes: Int
    /// The head (or this rank's shard) and its gradient: 2 · 4 · V_r · H.
    var headBytes: Int
    /// Bytes this rank handed to all-gathers and all-reduces in one measured step.
    var collectiveBytesPerStep: Int
    var collectivesPerStep: Int
}

extension BenchLossCommand {
    /// `mpirun -np T mtp bench loss --tensor-parallel T`: every rank measures its shard; rank 0
    /// prints each rank's time, peak bytes, head bytes and collective bytes per step.
    func runVocabularyParallel() throws {
        var world: (any Communicator)?
        do {
            guard ProcessGroup.isDistributed else {
                throw ValidationError("--tensor-parallel \(tensorParallel) needs an MPI job of T ranks: mpirun -np \(tensorParallel) mtp bench loss …")
            }
            let w = try ProcessGroup.world()
            world = w
            guard w.size == tensorParallel else { throw ValidationError("the job has \(w.size) ranks but --tensor-parallel is \(tensorParallel)") }
            // Ranks on one host share its cores: each gets its share of BLAS threads (as mtp train does).
            let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? w.size
            _ = BLAS.shareThreads(among: local)
            let mine = try measure(group: CommunicatorGroup(w))
            // Doubles travel bit for bit (allReduceSum of one-hot vectors).
            var row = [Double](repeating: 0, count: 6 * w.size)
            for (i, x) in [mine.seconds, Double(mine.peakBytes), Double(mine.rssGrowthBytes), Double(mine.headBytes),
                           Double(mine.collectiveBytesPerStep), Double(mine.collectivesPerStep)].enumerated() {
                row[6 * w.rank + i] = x
            }
            let all = try w.allReduceSum(row)
            guard w.rank == 0 else { return }
            let single = 2 * 4 * vocab * hidden
            print("mtp bench loss  loss=\(loss.rawValue) N=\(tokens) H=\(hidden) V=\(vocab) D=\(depths) tensor_parallel=\(tensorParallel)")
            var ranks: [[String: Any]] = []
            for r in 0..<w.size {
                let f = Array(all[(6 * r)..<(6 * r + 6)])
                print(String(format: "  rank %d  median %.3f s  peak %.1f MB  head+grad %.1f MB (%.3f of one process)  collectives %d, %.1f KB/step",
                             r, f[0], f[1] / 1e6, f[3] / 1e6, f[3] / Double(single), Int(f[5]), f[4] / 1e3))
                ranks.append(["rank": r, "seconds": JSONOutput.number(f[0]), "peak_bytes": Int(f[1]), "rss_growth_bytes": Int(f[2]),
                              "head_bytes": Int(f[3]), "collective_bytes_per_step": Int(f[4]), "collectives_per_step": Int(f[5])])
            }
            if json {
                try JSONOutput.print(["tensor_parallel": tensorParallel, "single_process_head_bytes": single,
                                      "seconds": JSONOutput.number((0..<w.size).map { all[6 * $0] }.max() ?? 0), "per_rank": ranks])
            }
        } catch {
            let message = "\(error)".replacingOccurrences(of: "\n", with: " ")
            FileHandle.standardError.write(Data("error: rank \(world?.rank ?? -1): \(message)\n".utf8))
            if let world, world.size > 1 { world.abort(code: 1) }
            throw ExitCode(1)
        }
    }
}
