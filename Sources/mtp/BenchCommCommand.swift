import ArgumentParser
import Distributed
import Foundation
import Model
import Training

/// `mtp bench comm`: the collectives of the process group, timed by message size.
struct BenchCommCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm",
        abstract: "All-reduce bus bandwidth by message size over the ranks of an MPI job.",
        discussion: """
        Run under mpirun, e.g. `mpirun -np 2 mtp bench comm`. Bus bandwidth is NCCL-tests' \
        definition: 2(N-1)/N × message bytes / time, the per-rank traffic of a ring all-reduce. \
        Two ranks on one host measure shared-memory transport, not a network. Rank 0 prints.
        """)

    @Option(help: "Message sizes in Float32 elements, comma-separated.")
    var sizes = "1024,16384,262144,1048576,4194304"
    @Option(help: "Timed repeats per size after one warm-up (the median is reported).") var repeats = 10
    @Flag(help: "Print one JSON object as the last line.") var json = false
    @Flag(help: "Print every rank's results of each collective on rank-dependent input (one JSON line per rank), then exit.")
    var dumpCollectives = false

    @Option(help: "Training steps of the default model measured per layout (0 skips the training traffic).")
    var modelSteps = 5
    @Option(help: "Microbatches per replica in the pipeline layout.") var microbatches = 4

    func run() throws {
        try reportingErrors {
            let world = try ProcessGroup.world()
            if dumpCollectives { return try dump(world) }
            guard !sizes.split(separator: ",", omittingEmptySubsequences: false).contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
                throw ValidationError("--sizes must list element counts separated by commas, got '\(sizes)'")
            }
            let counts = try sizes.split(separator: ",").map { text -> Int in
                guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n > 0, n <= 1 << 28 else {
                    throw ValidationError("--sizes must list element counts in 1...\(1 << 28), got '\(text)'")
                }
                return n
            }
            guard repeats > 0, repeats <= 10_000 else { throw ValidationError("--repeats must be in 1...10000, got \(repeats)") }
            guard modelSteps >= 0, modelSteps <= 1000 else { throw ValidationError("--model-steps must be in 0...1000, got \(modelSteps)") }
            let samples = try CommunicationBenchmark.allReduce(world, sizes: counts, repeats: repeats)
            var traffic: [CommunicationBenchmark.TrainingTraffic] = []
            if modelSteps > 0 && world.size > 1 {
                let options = TrainingOptions(model: ModelConfig(vocabularySize: 64))
                for layout in [ParallelLayout(data: world.size), ParallelLayout(pipeline: world.size)] {
                    traffic.append(try CommunicationBenchmark.trainingTraffic(world, layout: layout, options: options, documents: 2000,
                                                                              steps: modelSteps, microbatches: microbatches))
                }
            }
            guard world.rank == 0 else { return }
            if json { return try printJSON(world.size, samples, traffic) }
            for s in samples {
                print(String(format: "all-reduce %9d floats (%9d bytes): median %.6f s, bus bandwidth %.3f GB/s",
                             s.elements, 4 * s.elements, s.seconds, s.busBytesPerSecond / 1e9))
            }
            for t in traffic {
                let written = t.writtenBytes.map(String.init) ?? "n/a"
                print("default model, D=\(t.layout.data) P=\(t.layout.pipeline), rank 0 per step: all-reduce payload \(t.allReducePayloadBytes) B "
                    + "(ring ideal sent \(Int(t.ringIdealBytes)) B of \(t.parameterBytes) B parameters), pipeline payload "
                    + "\(t.pipelinePayloadBytes) B, written by the process \(written) B")
                if let timing = t.timing, t.layout.pipeline > 1 {
                    print(String(format: "  pipeline bubble measured %.3f, ideal (P-1)/(M+P-1) %.3f", timing.bubbleFraction,
                                 timing.idealBubbleFraction))
                }
            }
        }
    }

    private func printJSON(_ ranks: Int, _ samples: [CommunicationBenchmark.AllReduceSample],
                           _ traffic: [CommunicationBenchmark.TrainingTraffic]) throws {
        let rows: [[String: Any]] = samples.map {
            ["elements": $0.elements, "bytes": 4 * $0.elements, "seconds": JSONOutput.number($0.seconds),
             "bus_gbps": JSONOutput.number($0.busBytesPerSecond / 1e9)]
        }
        let model: [[String: Any]] = traffic.map { t in
            var row: [String: Any] = [
                "layout": ["data": t.layout.data, "pipeline": t.layout.pipeline], "steps": t.steps,
                "parameter_bytes": t.parameterBytes, "all_reduce_payload_bytes": t.allReducePayloadBytes,
                "ring_ideal_bytes": JSONOutput.number(t.ringIdealBytes), "pipeline_payload_bytes": t.pipelinePayloadBytes,
                "written_bytes": t.writtenBytes ?? NSNull(),
            ]
            if let timing = t.timing, t.layout.pipeline > 1 {
                row["bubble"] = JSONOutput.number(timing.bubbleFraction)
                row["ideal_bubble"] = JSONOutput.number(timing.idealBubbleFraction)
            }
            return row
        }
        try JSONOutput.print(["ranks": ranks, "all_reduce": rows, "default_model_per_step": model])
    }

    /// Rank r's input is x[i] = 10·r + i (i < 4): the output is checked by the caller.
    private func dump(_ world: any Communicator) throws {
        let n = world.size, r = world.rank
        let input = (0..<4).map { Float(10 * r + $0) }
        var sum = input, maximum = input
        try world.allReduce(&sum, .sum)
        try world.allReduce(&maximum, .max)
        let gathered = try world.allGather(input)
        let scattered = try world.reduceScatter((0..<(2 * n)).map { Float(10 * r + $0) }, .sum)
        var broadcast = input
        try world.broadcast(&broadcast, root: n - 1)
        var bytes = Array("rank \(r)".utf8)
        try world.broadcast(bytes: &bytes, root: 0)
        // A ring: send to the next rank, receive from the previous one (even ranks send first).
        var fromPrevious = [Float](repeating: -1, count: 4)
        let next = (r + 1) % n, previous = (r + n - 1) % n
        if n > 1 {
            if r % 2 == 0 {
                try input.withUnsafeBufferPointer { try world.send($0, to: next, tag: 7) }
                try fromPrevious.withUnsafeMutableBufferPointer { try world.receive(into: $0, from: previous, tag: 7) }
            } else {
                try fromPrevious.withUnsafeMutableBufferPointer { try world.receive(into: $0, from: previous, tag: 7) }
                try input.withUnsafeBufferPointer { try world.send($0, to: next, tag: 7) }
            }
        }
        let halves = try world.split(color: r % 2, key: -r)
        var groupSum = input
        try halves.allReduce(&groupSum, .sum)
        try world.barrier()
        let object: [String: Any] = [
            "rank": r, "size": n, "all_reduce_sum": sum, "all_reduce_max": maximum, "all_gather": gathered,
            "reduce_scatter": scattered, "broadcast": broadcast, "broadcast_bytes": String(decoding: bytes, as: UTF8.self),
            "from_previous": fromPrevious, "split_rank": halves.rank, "split_size": halves.size, "split_sum": groupSum,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
