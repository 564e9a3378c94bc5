import ArgumentParser
import Distributed
import Foundation
import LossCases
import Tensors

extension LossCommand {
    /// `mpirun -np T mtp loss CASE --tensor-parallel T [--grads OUT]`: the case on T ranks, each
    /// holding one vocabulary shard of the head and logits. Rank 0 prints the JSON of the
    /// single-process command; with --grads, rank r writes `OUT.rank<r>`: its gradients (shards
    /// of lm_head.weight and logits, full hidden states) and the loss it computed.
    func runVocabularyParallel() throws {
        var world: (any Communicator)?
        do {
            guard tensorParallel >= 1 else {
                FileHandle.standardError.write(Data("error: --tensor-parallel must be at least 1, got \(tensorParallel)\n".utf8))
                throw ExitCode(1)
            }
            guard ProcessGroup.isDistributed else {
                throw ValidationError("--tensor-parallel \(tensorParallel) needs an MPI job of T ranks: mpirun -np \(tensorParallel) mtp loss …")
            }
            let w = try ProcessGroup.world()
            world = w
            guard w.size == tensorParallel else {
                throw ValidationError("the job has \(w.size) ranks but --tensor-parallel is \(tensorParallel)")
            }
            if let grads, sameFile("\(grads).rank\(w.rank)", caseFile) {
                throw ValidationError("--grads \(grads) makes rank \(w.rank) write \(grads).rank\(w.rank), the case file itself")
            }
            let result = try LossCase(contentsOf: URL(fileURLWithPath: caseFile))
                .evaluate(vocabularyParallel: CommunicatorGroup(w))
            if let grads {
                var named: [String: Tensor] = ["loss": result.loss]
                for (name, g) in result.gradients { named["grad.\(name)"] = g }
                try SafeTensors.write(named, to: URL(fileURLWithPath: "\(grads).rank\(w.rank)"))
            }
            try w.barrier()
            guard w.rank == 0 else { return }
            let rows = result.loss.floats
            var object: [String: Any] = ["loss": JSONOutput.number(rows.reduce(0) { $0 + Double($1) })]
            if result.loss.rank > 0 { object["loss_rows"] = JSONOutput.numbers(rows) }
            if let perDepth = result.perDepth { object["per_depth"] = JSONOutput.numbers(perDepth) }
            try JSONOutput.print(object)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            let message = printable("\(error)")
            FileHandle.standardError.write(Data("error: rank \(world?.rank ?? -1): \(message)\n".utf8))
            if let world, world.size > 1 { world.abort(code: 1) }
            throw ExitCode(1)
        }
    }
}
