import ArgumentParser
import Foundation
import Tensors
import Data
import Generation
import Model
import Training

/// `mtp bench generate`: plain against speculative decoding over a fixed set of held-out
/// prompts, for one drafting depth and for every depth count up to the checkpoint's D.
struct BenchGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Time speculative decoding with the MTP heads against plain decoding (held-out prompts).",
        discussion: """
        Prompts: the first --prompt-length tokens of the first --prompts held-out documents of the built-in \
        corpus, reconstructed from the checkpoint's run (vocabulary, seed, split); for a --data checkpoint whose \
        text file is still at its recorded path, the first held-out documents of that file with at least \
        --prompt-length bytes. For each number of drafting \
        depths 1 … D, every prompt is decoded plainly and speculatively --repeats times, alternating, and each \
        mode keeps its fastest run; the speed-up is the summed plain time over the summed speculative time. \
        Acceptance of depth k = accepted / checked drafts, where a draft is checked when every earlier draft of \
        its step was accepted. Best possible acceptance: what an exact model of the corpus would get, 1 for \
        every depth (the chain is first order and depth k sees the token it follows, so an exact head's draft \
        distribution equals the exact main model's at verification). The last JSON line's top level is the \
        all-depths run; "by_draft_depths" lists every depth count.
        """)

    @OptionGroup var decoding: DecodingOptions
    @Option(help: "Held-out prompts.") var prompts = 32
    @Option(help: "Tokens per prompt.") var promptLength = 8
    @Option(help: "Timed runs of each mode per prompt.") var repeats = 10
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard (1...10_000).contains(repeats) else { throw ValidationError("--repeats must be in 1...10000, got \(repeats)") }
        guard prompts >= 1, promptLength >= 1 else {
            throw ValidationError("--prompts and --prompt-length must be positive, got \(prompts) and \(promptLength)")
        }
    }

    func run() throws {
        try reportingErrors { try bench() }
    }

    private func bench() throws {
        let (model, options, _, prior) = try GenerationSetup.load(decoding.checkpointPath)
        try SizeLimits.checkDecoding(maxTokens: decoding.maxTokens, promptLength: promptLength, model: options.model)
        let generator = Generator(model: model)
        let d = generator.maximumDraftDepths
        guard d >= 1 else { throw ValidationError("the checkpoint has no MTP depths to draft with") }
        let set = try GenerationSetup.heldOutPrompts(options: options, documents: decoding.documents, count: prompts, length: promptLength)
        let greedy = decoding.temperature == 0
        guard !set.isEmpty else { throw ValidationError("no held-out document has --prompt-length \(promptLength) tokens") }
        FileHandle.standardError.write(Data(("mtp bench generate: \(set.count) held-out prompts × \(decoding.maxTokens) tokens, "
            + "\(greedy ? "greedy" : "T=\(decoding.temperature), top-p \(decoding.topP)"), \(repeats) runs per mode, D=\(d), "
            + "H=\(options.model.hiddenSize), \(options.model.layers) layers\n" + GenerationSetup.kernelNote + "\n").utf8))
        var results: [(depths: Int, comparison: GenerationComparison)] = []
        for depths in 1...d {
            var total: GenerationComparison? = nil
            for (i, prompt) in set.enumerated() {
                let o = GenerationOptions(maxTokens: decoding.maxTokens, temperature: decoding.temperature, topP: decoding.topP,
                                          seed: decoding.seed &+ UInt64(i), draftDepths: depths, adaptiveDrafting: decoding.adaptive,
                                          acceptancePrior: prior, contextLength: options.sequenceLength)
                let c = try generator.compare(prompt: prompt, options: o, repeats: repeats)
                total = total.map { $0.merged(with: c) } ?? c
                FileHandle.standardError.write(Data("\rdraft depths \(depths)/\(d): prompt \(i + 1)/\(set.count)   ".utf8))
            }
            FileHandle.standardError.write(Data("\n".utf8))
            results.append((depths, total!))
        }
        if let c = generator.draftingCosts {
            let us = { (x: [Double]) in x.map { String(format: "%.1f", $0 * 1e6) }.joined(separator: " / ") }
            FileHandle.standardError.write(Data(("measured costs (µs, adaptive drafting): verification of 1…\(d + 1) rows "
                + us(c.verification) + "; drafting with depth 0…\(d - 1) " + us(c.drafting) + "\n").utf8))
        }
        for (depths, c) in results {
            GenerationSetup.printReport(c, depths: depths, greedy: greedy, adaptive: decoding.adaptive,
                                        bestAcceptance: options.bestAcceptance(depths: depths), options: options)
        }
        if json {
            let each = results.map {
                GenerationSetup.jsonObject($0.comparison, depths: $0.depths, greedy: greedy, adaptive: decoding.adaptive,
                                           bestAcceptance: options.bestAcceptance(depths: $0.depths), tokens: nil)
            }
            let all = results.last!
            var object = GenerationSetup.jsonObject(all.comparison, depths: all.depths, greedy: greedy, adaptive: decoding.adaptive,
                                                    bestAcceptance: options.bestAcceptance(depths: all.depths), tokens: nil)
            object["by_draft_depths"] = each
            try JSONOutput.print(object)
        }
    }
}
