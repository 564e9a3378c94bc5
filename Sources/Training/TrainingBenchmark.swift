// What `mtp bench train` measures: the full training step (forward, backward, clipping,
// AdamW) of a model of given sizes, after warm-up steps, on documents of 16–48 uniformly
// drawn ids (the step's cost does not depend on the token values; any vocabulary size
// works, as in scripts/bench/torch_train.py).
//
//   tokens/s       = B · S · steps / seconds of the measured steps
//   GEMM fraction  = seconds inside BLAS.sgemm / seconds of the measured steps
//   peak bytes     = the allocation meter's peak over the measured steps minus the live
//                    bytes before them (parameters, optimizer state excluded)

import Data
import Foundation
import Tensors

/// The throughput of training steps.
public enum TrainingBenchmark {
    /// One measurement.
    public struct Result: Sendable {
        /// Steps measured (after the warm-up).
        public var steps: Int
        /// Tokens of one step (B · S · accumulation).
        public var tokensPerStep: Int
        /// Wall seconds of the measured steps.
        public var seconds: Double
        /// Seconds of those spent inside `BLAS.sgemm`.
        public var gemmSeconds: Double
        /// GEMM calls per step.
        public var gemmCallsPerStep: Int
        /// Peak live tensor and scratch bytes during the measured steps, beyond those live before.
        public var peakBytes: Int
        /// The model's parameter count.
        public var parameters: Int
        /// GEMM time by operand shape, most first (empty unless asked for).
        public var shapes: [BLAS.Timing.ShapeTotal] = []

        /// Tokens per second of the measured steps.
        public var tokensPerSecond: Double { Double(tokensPerStep * steps) / Swift.max(seconds, 1e-12) }
        /// The share of the step's time inside GEMM.
        public var gemmFraction: Double { gemmSeconds / Swift.max(seconds, 1e-12) }
    }

    /// Trains `options`' model on `documents` random documents for `warmup` then `steps`
    /// steps and measures the latter (with `gemmShapes`, also the GEMM time by operand shape).
    ///
    /// - Throws: ``TrainingError`` for invalid options or too few documents for one batch.
    public static func run(options: TrainingOptions, documents: Int, warmup: Int, steps: Int,
                           gemmShapes: Bool = false) throws -> Result {
        guard steps >= 1, warmup >= 0 else { throw TrainingError("steps must be >= 1 and warm-up >= 0, got \(steps), \(warmup)") }
        var o = options
        o.steps = Swift.max(o.steps, warmup + steps)
        o.evalEvery = o.steps
        let split = try o.split(randomDocuments(count: documents, vocabulary: o.model.vocabularySize, seed: o.seed))
        let trainer = try Trainer(options: o, train: split.train, heldOut: split.heldOut)
        for _ in 0..<warmup { try trainer.trainStep() }
        let before = AllocationMeter.currentBytes
        AllocationMeter.resetPeak()
        BLAS.Timing.start(byShape: gemmShapes)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { try trainer.trainStep() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let gemm = BLAS.Timing.stop()
        return Result(steps: steps, tokensPerStep: o.batchSize * o.sequenceLength * o.gradientAccumulation, seconds: seconds,
                      gemmSeconds: gemm.seconds, gemmCallsPerStep: gemm.calls / steps,
                      peakBytes: AllocationMeter.peakBytes - before, parameters: trainer.model.parameterCount,
                      shapes: BLAS.Timing.shapeTotals())
    }

    /// `count` documents of 16–48 ids drawn uniformly from `0..<vocabulary`.
    static func randomDocuments(count: Int, vocabulary: Int, seed: UInt64) throws -> [[Int32]] {
        guard count >= 1, vocabulary >= 1 else {
            throw TrainingError("need at least one document and one id, got \(count) documents, vocabulary \(vocabulary)")
        }
        try MemoryBudget.check(bytes: MemoryBudget.product([count, 4 * 48 + 64]), for: "\(count) benchmark documents")
        var generator = SplitMix64(seed: seed &+ 1)
        return (0..<count).map { _ in
            let length = 16 + Int(generator.next() % 33)
            return (0..<length).map { _ in Int32(truncatingIfNeeded: generator.next() % UInt64(vocabulary)) }
        }
    }
}
