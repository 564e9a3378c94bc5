import ArgumentParser
import Foundation
import Losses
import MTP
import Tensors
import Distributed

/// `mtp bench loss`: forward + backward of the main loss plus `calculateMTPLoss` over D
/// depths, all sharing one LM-head weight, against the sgemm roofline of the same shapes.
struct BenchLossCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loss",
        abstract: "Time main + MTP loss (forward + backward) against the sgemm roofline.",
        discussion: """
        Useful FLOPs count 6·N·H·V·(D+1): the logits GEMM and the two gradient GEMMs of every head \
        evaluation. The roofline runs those three GEMMs at full size with BLAS.sgemm (gemm_engine) in the same \
        process. peak_bytes is the allocation meter's peak during the measured forward+backward minus \
        the live bytes just before it (inputs excluded, gradients included); rss_growth_bytes is the \
        growth of the process's peak RSS over the same span (Linux). Under mpirun -np T with \
        --tensor-parallel T, each rank holds a vocabulary shard of the head and rank 0 prints every \
        rank's figures and the bytes each rank handed to the collectives per step.
        """)

    @Option(help: "Token rows N.") var tokens = 4096
    @Option(help: "Hidden size H.") var hidden = 1024
    @Option(help: "Vocabulary size V.") var vocab = 32000
    @Option(help: "MTP depths D.") var depths = 2
    @Option(help: "fused, masked or chunked.") var loss = LossKind.fused
    @Option(help: "Measured repeats (>= 3) after one warm-up.") var repeats = 3
    @Option(help: "Random seed of the inputs.") var seed: UInt64 = 0
    @Flag(help: "Print one JSON object as the last line.") var json = false
    @Option(help: "Vocabulary-parallel ranks T (under mpirun -np T): each rank holds V/T rows of the head.")
    var tensorParallel = 1

    func validate() throws {
        guard tokens > 0, hidden > 0, vocab > 0, depths >= 0 else {
            throw ValidationError("sizes must be positive (tokens \(tokens), hidden \(hidden), vocab \(vocab), depths \(depths))")
        }
        guard (3...10_000).contains(repeats) else { throw ValidationError("--repeats must be in 3...10000, got \(repeats)") }
        try SizeLimits.checkBenchLoss(tokens: tokens, hidden: hidden, vocab: vocab, depths: depths, materialisesLogits: loss.readsLogits)
    }

    func run() throws {
        if tensorParallel != 1 { return try runVocabularyParallel() }
        _ = try measure(group: nil)
    }

    /// Runs the benchmark on this process (the whole head, or its shard of `group`), prints the
    /// report on the writer and returns this rank's figures.
    func measure(group: CommunicatorGroup?) throws -> BenchLossFigures {
        let n = tokens, h = hidden, d = depths
        var rng = SplitMix64(seed: seed)
        // Every rank draws the whole head from the same seed and keeps its rows (before the measurement).
        let full = Tensor.normal([vocab, h], std: 0.02, generator: &rng)
        let shard = try group.map { try VocabularyShard(vocabularySize: vocab, group: $0) }
        let weight = try (shard.map { try $0.slice(full, axis: 0) } ?? full).requiringGrad()
        let v = weight.shape[0]
        let mainHidden = Tensor.normal([n, h], generator: &rng).requiringGrad()
        let depthHidden = (0..<d).map { _ in Tensor.normal([n, h], generator: &rng).requiringGrad() }
        let labels = Tensor((0..<n).map { _ in Int64(rng.next() % UInt64(vocab)) })
        let lossFn = try group.map { try loss.makeVocabularyParallelLoss(reduction: .sum, vocabularySize: vocab, group: $0) }
            ?? loss.makeLoss(reduction: .sum)
        let model = LossModel(lmHeadWeight: weight)
        // A logits loss applies the sharded head itself: its hidden-state gradients are partial sums.
        let headInput = { (x: Tensor) in group.map { x.summingGradient(over: $0) } ?? x }

        func step() throws {
            for t in [weight, mainHidden] + depthHidden { t.zeroGrad() }
            let total: Tensor
            if lossFn is any FusedLinearLoss {
                let shared = FusedLinearCrossEntropy.sharingWeightGradient(weight)
                let main = try calculateLoss(lossFn, hiddenStates: mainHidden, labels: labels, lmWeight: shared, numLabelTokens: n)
                total = d == 0 ? main : try main + calculateMTPLoss(lossFn, perDepthHidden: depthHidden, labels: labels,
                                                                   model: model, numLabelTokens: n, lmWeight: shared)
            } else {
                let logits = try Tensor.matmul(headInput(mainHidden), weight, transposeB: true)
                let main = try calculateLoss(lossFn, logits: logits, labels: labels, numLabelTokens: n)
                total = d == 0 ? main : try main + calculateMTPLoss(lossFn, perDepthHidden: depthHidden.map(headInput),
                                                                   labels: labels, model: model, numLabelTokens: n)
            }
            try total.backward()
        }

        try step()  // warm-up
        group?.resetCounts()
        let roofline = Roofline(n: n, h: h, v: v)
        var times: [Double] = [], sgemmRates: [Double] = []
        var peak = 0, rssGrowth = 0
        for r in 0..<repeats {
            // The roofline is measured between the loss repeats so both see the same machine state.
            sgemmRates.append(roofline.measureOnce())
            for t in [weight, mainHidden] + depthHidden { t.zeroGrad() }
            let rssBefore = ProcessMemory.resetPeakAndReadRSS()
            let start = DispatchTime.now()
            let (_, p) = try AllocationMeter.measure { try step() }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
            peak = Swift.max(peak, p)
            if let before = rssBefore, let after = ProcessMemory.peakRSS() { rssGrowth = Swift.max(rssGrowth, after - before) }
            FileHandle.standardError.write(Data("\rrepeat \(r + 1)/\(repeats): \(String(format: "%.3f", times.last!)) s".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        for t in [weight, mainHidden] + depthHidden { t.zeroGrad() }
        let figures = BenchLossFigures(seconds: times.sorted()[times.count / 2], peakBytes: peak, rssGrowthBytes: rssGrowth,
                                       headBytes: 2 * 4 * v * h, collectiveBytesPerStep: (group?.bytes ?? 0) / repeats,
                                       collectivesPerStep: (group?.calls ?? 0) / repeats)
        guard group == nil else { return figures }

        let sgemm = sgemmRates.sorted()[sgemmRates.count / 2]
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2], best = sorted[0]
        let flops = 6.0 * Double(n) * Double(h) * Double(v) * Double(d + 1)
        let gflops = flops / median / 1e9
        let ratio = gflops / sgemm
        print("mtp bench loss  loss=\(loss.rawValue) N=\(n) H=\(h) V=\(v) D=\(d) repeats=\(repeats) cores=\(Parallel.width) gemm=\(BLAS.engineName)")
        print(String(format: "  time       median %.3f s   min %.3f s", median, best))
        print(String(format: "  useful     %.1f GFLOP/s  (6·N·H·V·(D+1) = %.1f GFLOP)", gflops, flops / 1e9))
        print(String(format: "  sgemm      %.1f GFLOP/s  (same shapes, same run)", sgemm))
        print(String(format: "  roofline   %.3f", ratio))
        print(String(format: "  peak_bytes %.1f MB (logits alone would be %.1f MB)", Double(peak) / 1e6,
                     Double(n) * Double(v) * 4 * Double(d + 1) / 1e6))
        print(String(format: "  rss_growth %.1f MB", Double(rssGrowth) / 1e6))
        if json {
            try JSONOutput.print([
                "seconds": JSONOutput.number(median), "seconds_min": JSONOutput.number(best), "gflops": JSONOutput.number(gflops),
                "sgemm_gflops": JSONOutput.number(sgemm), "roofline_ratio": JSONOutput.number(ratio),
                "peak_bytes": peak, "rss_growth_bytes": rssGrowth, "head_bytes": figures.headBytes,
                "gemm_engine": BLAS.engineName,
            ])
        }
        return figures
    }
}

/// The sgemm roofline: the three GEMMs of one head evaluation at full size,
/// `Z = h·Wᵀ`, `dh = Z·W`, `dW = Zᵀ·h` (its buffers live only while it runs).
struct Roofline {
    let n: Int, h: Int, v: Int

    /// GFLOP/s of one run of the three GEMMs.
    func measureOnce() -> Double {
        let a = ScratchBuffer(count: n * h), w = ScratchBuffer(count: v * h), z = ScratchBuffer(count: n * v)
        let gh = ScratchBuffer(count: n * h), gw = ScratchBuffer(count: v * h)
        var rng = SplitMix64(seed: 7)
        for i in 0..<(n * h) { a.pointer[i] = rng.nextUniform() - 0.5 }
        for i in 0..<(v * h) { w.pointer[i] = rng.nextUniform() - 0.5 }
        let start = DispatchTime.now()
        BLAS.sgemm(transA: false, transB: true, m: n, n: v, k: h, alpha: 1, a: a.pointer, lda: h, b: w.pointer, ldb: h, beta: 0, c: z.pointer, ldc: v)
        BLAS.sgemm(transA: false, transB: false, m: n, n: h, k: v, alpha: 1, a: z.pointer, lda: v, b: w.pointer, ldb: h, beta: 0, c: gh.pointer, ldc: h)
        BLAS.sgemm(transA: true, transB: false, m: v, n: h, k: n, alpha: 1, a: z.pointer, lda: v, b: a.pointer, ldb: h, beta: 0, c: gw.pointer, ldc: h)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return 6.0 * Double(n) * Double(h) * Double(v) / seconds / 1e9
    }
}

/// Peak resident set size of this process (Linux /proc; nil elsewhere).
enum ProcessMemory {
    /// Resets the kernel's peak-RSS mark (clear_refs 5) and returns the current RSS.
    static func resetPeakAndReadRSS() -> Int? {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        return field("VmRSS")
    }

    /// The peak RSS since the last reset.
    static func peakRSS() -> Int? { field("VmHWM") }

    private static func field(_ name: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix(name + ":") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
