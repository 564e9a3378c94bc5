import ArgumentParser
import Foundation
import Losses
import Model
import Tensors
import Training

/// `mtp bench train`: tokens/s of the full training step, its share in GEMM, peak bytes.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time the full training step (forward, backward, clipping, AdamW) of a model of given sizes.",
        discussion: """
        Sizes: --size small (the default mtp train model: H=96, 8 layers, 4 heads, I=256, S=64, B=16, V=64), \
        medium (H=256, 8 layers, 8 heads, I=704, S=256, B=8, V=256) or large (H=512, 8 layers, 8 heads, \
        I=1408, S=512, B=4, V=32000); every size flag overrides the preset. D=2 MTP depths unless --depths. \
        scripts/bench/torch_train.py takes the same flags for PyTorch.
        """)

    enum Size: String, ExpressibleByArgument, CaseIterable { case small, medium, large }

    @Option(help: "Preset: small, medium or large.") var size: Size = .small
    @Option(help: "Hidden size H.") var hidden: Int?
    @Option(help: "Decoder layers.") var layers: Int?
    @Option(help: "Attention heads.") var heads: Int?
    @Option(help: "MLP intermediate size.") var intermediate: Int?
    @Option(help: "Tokens per row S.") var seqLen: Int?
    @Option(help: "Rows per step B.") var batchSize: Int?
    @Option(help: "Vocabulary V.") var vocab: Int?
    @Option(help: "MTP depths D.") var depths: Int?
    @Option(help: "Loss kind: fused, masked or chunked.") var loss: LossKind = .fused
    @Option(help: "Measured steps (after --warmup steps).") var steps = 10
    @Option(help: "Warm-up steps, not measured.") var warmup = 2
    @Flag(help: "Also print the GEMM time by operand shape (the 12 costliest).") var gemmShapes = false
    @Flag(help: "Recompute every decoder block in the backward pass (activation checkpointing), as mtp train --recompute.")
    var recompute = false
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() throws {
        try reportingErrors {
            let preset: (h: Int, l: Int, n: Int, i: Int, s: Int, b: Int, v: Int) = switch size {
            case .small: (96, 8, 4, 256, 64, 16, 64)
            case .medium: (256, 8, 8, 704, 256, 8, 256)
            case .large: (512, 8, 8, 1408, 512, 4, 32000)
            }
            var options = TrainingOptions(model: ModelConfig(
                vocabularySize: vocab ?? preset.v, hiddenSize: hidden ?? preset.h, layers: layers ?? preset.l,
                heads: heads ?? preset.n, intermediateSize: intermediate ?? preset.i, mtpDepths: depths ?? 2))
            options.sequenceLength = seqLen ?? preset.s
            options.batchSize = batchSize ?? preset.b
            options.loss = loss
            options.recompute = recompute ? true : nil
            guard (1...10_000).contains(steps), (0...10_000).contains(warmup) else {
                throw ValidationError("--steps must be in 1...10000 and --warmup in 0...10000, got \(steps), \(warmup)")
            }
            // The sizes first (overflow-checked products, then memory), then the documents they need.
            guard let tokens = MemoryBudget.product([warmup + steps + 2, options.batchSize, options.sequenceLength]) else {
                throw ValidationError("--batch-size \(options.batchSize) × --seq-len \(options.sequenceLength) × \(warmup + steps + 2) steps "
                    + "overflow a 64-bit count")
            }
            try options.validate()
            // Enough documents (16–48 tokens) for the measured steps without repeating an epoch.
            let documents = Swift.max(200, tokens / 24)
            let r = try TrainingBenchmark.run(options: options, documents: documents, warmup: warmup, steps: steps,
                                              gemmShapes: gemmShapes)
            let m = options.model
            print(String(format: "train step H=%d L=%d heads=%d I=%d S=%d B=%d V=%d D=%d loss %@: %.0f tokens/s, "
                         + "%.3f s/step, GEMM %.1f%% (%d calls/step, %@), peak %.1f MB, %d parameters%@",
                         m.hiddenSize, m.layers, m.heads, m.intermediateSize, options.sequenceLength, options.batchSize,
                         m.vocabularySize, m.mtpDepths, loss.rawValue, r.tokensPerSecond, r.seconds / Double(r.steps),
                         100 * r.gemmFraction, r.gemmCallsPerStep, BLAS.engineName, Double(r.peakBytes) / 1e6, r.parameters,
                         recompute ? ", blocks recomputed" : ""))
            for t in r.shapes.prefix(12) {
                print(String(format: "  gemm %@: %d calls/step, %.4f s/step, %.1f GFLOP/s", t.shape.description,
                             t.calls / r.steps, t.seconds / Double(r.steps), t.gflops))
            }
            if json {
                try JSONOutput.print([
                    "size": size.rawValue, "hidden": m.hiddenSize, "layers": m.layers, "heads": m.heads,
                    "intermediate": m.intermediateSize, "seq_len": options.sequenceLength, "batch_size": options.batchSize,
                    "vocab": m.vocabularySize, "depths": m.mtpDepths, "loss": loss.rawValue, "recompute": recompute,
                    "steps": r.steps,
                    "tokens_per_second": JSONOutput.number(r.tokensPerSecond),
                    "seconds_per_step": JSONOutput.number(r.seconds / Double(r.steps)),
                    "gemm_fraction": JSONOutput.number(r.gemmFraction), "gemm_calls_per_step": r.gemmCallsPerStep,
                    "gemm_engine": BLAS.engineName, "peak_bytes": r.peakBytes, "parameters": r.parameters,
                ])
            }
        }
    }
}
