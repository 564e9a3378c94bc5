import ArgumentParser
import Distributed
import Foundation

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

    func run() throws {
        try reportingErrors {
            let world = try ProcessGroup.world()
            if dumpCollectives { return try dump(world) }
            let counts = try sizes.split(separator: ",").map { text -> Int in
                guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n > 0, n <= 1 << 28 else {
                    throw ValidationError("--sizes must list element counts in 1...\(1 << 28), got '\(text)'")
                }
                return n
            }
            guard repeats > 0, repeats <= 10_000 else { throw ValidationError("--repeats must be in 1...10000, got \(repeats)") }
            var rows: [[String: Any]] = []
            for n in counts {
                var buffer = [Float](repeating: 1, count: n)
                try world.allReduce(&buffer, .sum)
                var times: [Double] = []
                for _ in 0..<repeats {
                    try world.barrier()
                    let start = DispatchTime.now().uptimeNanoseconds
                    try world.allReduce(&buffer, .sum)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
                }
                var slowest = times
                try world.allReduce(&slowest.asFloats, .max)
                let median = slowest.sorted()[slowest.count / 2]
                let ranks = Double(world.size), bytes = Double(4 * n)
                let bus = ranks > 1 ? 2 * (ranks - 1) / ranks * bytes / median : 0
                rows.append(["elements": n, "bytes": 4 * n, "seconds": median, "bus_gbps": bus / 1e9])
                if world.rank == 0 && !json {
                    print(String(format: "all-reduce %9d floats (%9d bytes): median %.6f s, bus bandwidth %.3f GB/s",
                                 n, 4 * n, median, bus / 1e9))
                }
            }
            if world.rank == 0 && json {
                let object: [String: Any] = ["ranks": world.size, "all_reduce": rows]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
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

private extension Array where Element == Double {
    /// The values as Floats and back, for a reduction over ranks of timings.
    var asFloats: [Float] {
        get { map { Float($0) } }
        set { self = newValue.map { Double($0) } }
    }
}
