import ArgumentParser
import Foundation
import NN
import Tensors

/// `mtp bench attention`: the fused attention node alone, forward and backward.
struct BenchAttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Time scaledDotProductAttention (forward, and backward from a fixed upstream gradient) alone.",
        discussion: """
        Sizes: --size small (B=16, n=4, S=64, d=24: the attention of `mtp bench train --size small`), medium \
        (B=8, n=8, S=256, d=32) or large (B=4, n=8, S=512, d=64); every size flag overrides the preset. \
        --documents causal (one document a row), short (documents of 16–48 tokens, as the built-in corpus packs \
        them; the default for small) or mixed (16 up to S/2 tokens).
        """)

    enum Size: String, ExpressibleByArgument, CaseIterable { case small, medium, large }
    enum Documents: String, ExpressibleByArgument, CaseIterable { case causal, short, mixed }

    @Option(help: "Preset: small, medium or large.") var size: Size = .small
    @Option(help: "Rows B.") var batchSize: Int?
    @Option(help: "Query heads n.") var heads: Int?
    @Option(help: "Key/value heads g (dividing n; default n).") var keyValueHeads: Int?
    @Option(help: "Tokens per row S.") var seqLen: Int?
    @Option(help: "Head dimension d.") var headDim: Int?
    @Option(help: "Document mask: causal, short or mixed (default: short for small, causal otherwise).")
    var documents: Documents?
    @Option(help: "Measured repeats after one warm-up.") var repeats = 20
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() throws {
        try reportingErrors {
            let preset: (b: Int, n: Int, s: Int, d: Int) = switch size {
            case .small: (16, 4, 64, 24)
            case .medium: (8, 8, 256, 32)
            case .large: (4, 8, 512, 64)
            }
            let (b, n, s, d) = (batchSize ?? preset.b, heads ?? preset.n, seqLen ?? preset.s, headDim ?? preset.d)
            let g = keyValueHeads ?? n
            guard b > 0, n > 0, s > 0, d > 0, g > 0, n % g == 0, (1...10_000).contains(repeats) else {
                throw ValidationError("need positive sizes with --key-value-heads dividing --heads and 1...10000 repeats, "
                                      + "got B \(b), n \(n), g \(g), S \(s), d \(d), repeats \(repeats)")
            }
            try SizeLimits.checkBenchAttention(batch: b, heads: n, keyValueHeads: g, length: s, dimension: d)
            let mask = documents ?? (size == .small ? .short : .causal)
            let seqIdx = try Self.documentIDs(mask, batch: b, length: s)
            let q = Tensor.uniform([b, n, s, d], low: -1, high: 1, seed: 1).requiringGrad()
            let k = Tensor.uniform([b, g, s, d], low: -1, high: 1, seed: 2).requiringGrad()
            let v = Tensor.uniform([b, g, s, d], low: -1, high: 1, seed: 3).requiringGrad()
            let upstream = Tensor.uniform([b, n, s, d], low: -1, high: 1, seed: 4)
            var forward: [Double] = [], backward: [Double] = []
            for repeat_ in 0...repeats {
                for leaf in [q, k, v] { leaf.zeroGrad() }  // the backward then writes, not adds, the gradients
                let start = DispatchTime.now()
                let y = try scaledDotProductAttention(q, k, v, seqIdx: seqIdx)
                let middle = DispatchTime.now()
                try y.backward(upstream)
                let end = DispatchTime.now()
                guard repeat_ > 0 else { continue }  // warm-up
                forward.append(Double(middle.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
                backward.append(Double(end.uptimeNanoseconds - middle.uptimeNanoseconds) / 1e9)
            }
            let f = forward.sorted()[repeats / 2], bw = backward.sorted()[repeats / 2]
            print(String(format: "attention B=%d n=%d g=%d S=%d d=%d documents %@: forward %.3f ms, backward %.3f ms, "
                         + "total %.3f ms (medians of %d, %d cores)",
                         b, n, g, s, d, mask.rawValue, f * 1e3, bw * 1e3, (f + bw) * 1e3, repeats, Parallel.width))
            if json {
                try JSONOutput.print([
                    "size": size.rawValue, "batch_size": b, "heads": n, "kv_heads": g, "seq_len": s, "head_dim": d,
                    "documents": mask.rawValue, "repeats": repeats, "forward_seconds": JSONOutput.number(f),
                    "backward_seconds": JSONOutput.number(bw), "seconds": JSONOutput.number(f + bw),
                ])
            }
        }
    }

    /// Seeded document ids `[B, S]`: contiguous documents of random lengths (nil for causal).
    static func documentIDs(_ mask: Documents, batch: Int, length: Int) throws -> Tensor? {
        let range: ClosedRange<Int>
        switch mask {
        case .causal: return nil
        case .short: range = 16...48
        case .mixed: range = 16...Swift.max(16, length / 2)
        }
        var generator = SplitMix64(seed: 7)
        var ids: [Int64] = []
        var document: Int64 = 0
        for _ in 0..<batch {
            var filled = 0
            while filled < length {
                let n = Swift.min(length - filled, range.lowerBound + Int(generator.next() % UInt64(range.count)))
                ids += [Int64](repeating: document, count: n)
                filled += n
                document += 1
            }
        }
        return try Tensor(ids, shape: [batch, length])
    }
}
