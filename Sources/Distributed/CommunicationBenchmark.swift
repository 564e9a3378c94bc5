// What `mtp bench comm` measures, as library functions (the CLI only prints).
//
// Bus bandwidth (NCCL-tests' definition): an all-reduce of n bytes moves 2(N−1)/N · n
// bytes per rank in a ring, so busBW = 2(N−1)/N · n / t.
//
// Training traffic: the default model trained for a few steps on the job's ranks, laid out
// as D = N replicas (the gradient all-reduce) and then as P = N stages (activations between
// stages). Bytes a rank sends are read from the kernel's count of bytes the process wrote
// (/proc/self/io `wchar`), which covers socket writes: with OpenMPI's TCP transport
// (`--mca btl self,tcp`, loopback only on one host) that is the traffic on the wire; with
// shared memory (the default on one host) the processes copy through memory the kernel does
// not count, and the figure is only our own payload.

import Data
import Foundation
import Model
import Pipeline
import Training

/// Measurements of the communication of the ranks of a job.
public enum CommunicationBenchmark {
    /// One message size of the all-reduce sweep.
    public struct AllReduceSample: Sendable {
        /// Float32 elements.
        public var elements: Int
        /// Median seconds over the repeats (each the slowest rank's).
        public var seconds: Double
        /// 2(N−1)/N · bytes / seconds, in bytes per second (0 for one rank).
        public var busBytesPerSecond: Double
    }

    /// All-reduce (sum) of `sizes` Float32 elements, `repeats` timed runs each after a warm-up.
    public static func allReduce(_ group: any Communicator, sizes: [Int], repeats: Int) throws -> [AllReduceSample] {
        try sizes.map { n in
            var buffer = [Float](repeating: 1, count: n)
            try group.allReduce(&buffer, .sum)
            var times: [Float] = []
            for _ in 0..<repeats {
                try group.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try group.allReduce(&buffer, .sum)
                times.append(Float(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9))
            }
            try group.allReduce(&times, .max)
            let median = Double(times.sorted()[times.count / 2])
            let ranks = Double(group.size)
            let bus = ranks > 1 ? 2 * (ranks - 1) / ranks * Double(4 * n) / median : 0
            return AllReduceSample(elements: n, seconds: median, busBytesPerSecond: bus)
        }
    }

    /// Per-step traffic of one layout.
    public struct TrainingTraffic: Sendable {
        /// The layout measured.
        public var layout: ParallelLayout
        /// Steps measured (after one warm-up step).
        public var steps: Int
        /// Bytes of the model's parameters (Float32).
        public var parameterBytes: Int
        /// Gradient bytes this rank handed to all-reduces per step.
        public var allReducePayloadBytes: Int
        /// Activation bytes this rank sent to its neighbour stages per step.
        public var pipelinePayloadBytes: Int
        /// Bytes the process wrote per step (/proc/self/io wchar; nil where unavailable).
        public var writtenBytes: Int?
        /// The ring all-reduce's bytes sent per rank for the whole model: 2(D−1)/D · parameter bytes.
        public var ringIdealBytes: Double {
            let d = Double(layout.data)
            return 2 * (d - 1) / d * Double(parameterBytes)
        }
        /// The pipeline's timing over the measured steps.
        public var timing: PipelineTiming?
    }

    /// Trains `options`' model (built-in corpus, `documents` documents) for `steps` steps
    /// after one warm-up step on `world` laid out as `layout`, and reports this rank's traffic.
    public static func trainingTraffic(_ world: any Communicator, layout: ParallelLayout, options: TrainingOptions,
                                       documents: Int, steps: Int, microbatches: Int) throws -> TrainingTraffic {
        let grid = try ProcessGrid(world: world, layout: layout)
        let split = try options.split(try options.builtInDocuments(count: documents))
        let trainer = try Trainer(options: options, train: split.train, heldOut: split.heldOut)
        let driver = try DistributedTraining(trainer: trainer, grid: grid, microbatches: microbatches)
        driver.install()
        try trainer.trainStep(accumulating: driver.accumulate)
        let before = driver.traffic, timingBefore = driver.timing
        let written = writtenBytes()
        for _ in 0..<steps { try trainer.trainStep(accumulating: driver.accumulate) }
        let writtenAfter = writtenBytes()
        let after = driver.traffic
        var timing: PipelineTiming? = nil
        if let total = driver.timing, let first = timingBefore {
            timing = PipelineTiming(wallSeconds: total.wallSeconds - first.wallSeconds,
                                    busySeconds: zip(total.busySeconds, first.busySeconds).map { $0 - $1 },
                                    microbatches: total.microbatches)
        }
        var writtenPerStep: Int? = nil
        if let written, let writtenAfter { writtenPerStep = (writtenAfter - written) / steps }
        return TrainingTraffic(layout: layout, steps: steps, parameterBytes: 4 * trainer.model.parameterCount,
                               allReducePayloadBytes: (after.allReduceBytes - before.allReduceBytes) / steps,
                               pipelinePayloadBytes: (after.pipelineBytes - before.pipelineBytes) / steps,
                               writtenBytes: writtenPerStep, timing: timing)
    }

    /// The process's `wchar` (bytes written through write/send system calls), nil off Linux.
    static func writtenBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("wchar:") {
            return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
