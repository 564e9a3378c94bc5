import ArgumentParser
import Foundation
import Tensors
import Data
import Generation
import Model
import Training

/// `mtp generate`: decode from a checkpoint, plainly or speculatively with its MTP heads.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate tokens from a checkpoint (KV cache; --speculative drafts with the MTP heads).",
        discussion: """
        The prompt is --prompt TEXT (byte-level checkpoints, vocabulary 256), --prompt-tokens 1,2,3, or by \
        default a held-out prefix of the built-in corpus the checkpoint was trained on (same vocabulary, seed \
        and split as `mtp train`). With --speculative every main forward verifies the drafts of the first \
        --draft-depths MTP depths; the same prompt is also decoded plainly, and the report gives each depth's \
        acceptance (accepted / checked, a depth being checked when every earlier draft of its step was \
        accepted), the mean tokens per verifying forward, the wall-clock speed-up (fastest of --repeats \
        alternating runs of each mode) and whether the output is identical to plain decoding (temperature 0; \
        sampled runs follow the same distribution with other random draws, so they are not compared).
        """)

    @OptionGroup var decoding: DecodingOptions
    @Option(help: "Prompt text (byte-level checkpoints).") var prompt: String?
    @Option(help: "Prompt token ids, comma-separated.") var promptTokens: String?
    @Option(help: "Index of the held-out corpus document whose prefix is the default prompt.") var promptIndex = 0
    @Option(help: "Tokens of the default (corpus) prompt.") var promptLength = 8
    @Flag(help: "Draft with the MTP heads and verify (also decodes plainly to compare).") var speculative = false
    @Option(help: "MTP depths that draft (default: all of the checkpoint's).") var draftDepths: Int?
    @Option(help: "Timed runs of each mode with --speculative.") var repeats = 20
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard prompt == nil || promptTokens == nil else { throw ValidationError("give at most one of --prompt and --prompt-tokens") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        guard speculative || draftDepths == nil else { throw ValidationError("--draft-depths needs --speculative") }
        guard promptLength >= 1 else { throw ValidationError("--prompt-length must be at least 1, got \(promptLength)") }
        try SizeLimits.checkPromptIndex(promptIndex, documents: decoding.documents)
    }

    func run() throws {
        try reportingErrors { try generate() }
    }

    private func generate() throws {
        let (model, options) = try Trainer.loadModel(checkpoint: URL(fileURLWithPath: decoding.checkpoint))
        try SizeLimits.checkDecoding(maxTokens: decoding.maxTokens, promptLength: promptLength, model: options.model)
        let generator = Generator(model: model)
        let tokens = try GenerationSetup.promptTokens(text: prompt, ids: promptTokens, options: options,
                                                      documents: decoding.documents, index: promptIndex, length: promptLength)
        let isText = prompt != nil
        let depths = speculative ? (draftDepths ?? generator.maximumDraftDepths) : 0
        if speculative && depths < 1 {
            throw ValidationError("--speculative needs a checkpoint with MTP depths and --draft-depths >= 1")
        }
        let o = GenerationOptions(maxTokens: decoding.maxTokens, temperature: decoding.temperature, topP: decoding.topP, seed: decoding.seed, draftDepths: depths)
        guard speculative else {
            let result = try generator.generate(prompt: tokens, options: o)
            print("prompt     \(GenerationSetup.render(tokens, asText: isText))")
            let rate = Double(result.tokens.count) / Swift.max(result.statistics.seconds, 1e-12)
            print("generated  \(GenerationSetup.render(result.tokens, asText: isText))")
            print(String(format: "plain decoding: %d tokens in %.2f ms (%.0f tokens/s), %d main forwards",
                         result.tokens.count, result.statistics.seconds * 1e3, rate, result.statistics.mainForwards))
            if json {
                try JSONOutput.print(["tokens": result.tokens.map(Int.init), "acceptance": [Double](), "tokens_per_forward": 1,
                                      "speedup": NSNull(), "identical": NSNull(),
                                      "seconds": JSONOutput.number(result.statistics.seconds)])
            }
            return
        }
        let c = try generator.compare(prompt: tokens, options: o, repeats: repeats)
        print("prompt     \(GenerationSetup.render(tokens, asText: isText))")
        print("generated  \(GenerationSetup.render(c.speculativeTokens, asText: isText))")
        FileHandle.standardError.write(Data((GenerationSetup.verificationNote(generator) + "\n").utf8))
        let best = options.bestAcceptance(depths: depths)
        GenerationSetup.printReport(c, depths: depths, greedy: decoding.temperature == 0, bestAcceptance: best)
        if json {
            try JSONOutput.print(GenerationSetup.jsonObject(c, depths: depths, greedy: decoding.temperature == 0,
                                                            batched: generator.verifiesInBatches, bestAcceptance: best,
                                                            tokens: c.speculativeTokens))
        }
    }
}

/// What `mtp generate` and `mtp bench generate` share: prompts, rendering and reports.
enum GenerationSetup {
    /// The prompt: UTF-8 bytes of `text`, the ids in `ids`, or held-out corpus prefixes.
    static func promptTokens(text: String?, ids: String?, options: TrainingOptions, documents: Int, index: Int,
                             length: Int) throws -> [Int32] {
        let v = options.model.vocabularySize
        if let text {
            guard v == TextData.vocabularySize else {
                throw ValidationError("--prompt TEXT needs a byte-level checkpoint (vocabulary 256), this one has \(v); use --prompt-tokens")
            }
            return text.utf8.map { Int32($0) }
        }
        if let ids {
            var out: [Int32] = []
            for part in ids.split(separator: ",", omittingEmptySubsequences: false) {
                let s = part.trimmingCharacters(in: .whitespaces)
                guard let t = Int32(s) else { throw ValidationError("--prompt-tokens: '\(s)' is not a token id") }
                out.append(t)
            }
            return out
        }
        let prompts = try heldOutPrompts(options: options, documents: documents, count: index + 1, length: length)
        guard index >= 0, index < prompts.count else {
            throw ValidationError("--prompt-index \(index) is outside the \(prompts.count) held-out documents")
        }
        return prompts[index]
    }

    /// The first `length` tokens of the first `count` held-out documents of the built-in
    /// corpus, drawn and split by the run's own rule (`TrainingOptions.builtInDocuments`, `split`).
    static func heldOutPrompts(options: TrainingOptions, documents: Int, count: Int, length: Int) throws -> [[Int32]] {
        let v = options.model.vocabularySize
        if let source = options.dataSource, source != .builtIn {
            throw ValidationError("default prompts are built-in corpus prefixes, and this checkpoint was trained on \(source): "
                + "give --prompt TEXT or --prompt-tokens")
        }
        // Checkpoints from before the data source was recorded: vocabulary 256 is taken to be byte-level text.
        guard SyntheticCorpus.vocabularySizes.contains(v), v != TextData.vocabularySize else {
            throw ValidationError("default prompts are built-in corpus prefixes, and vocabulary \(v) is "
                + (v == TextData.vocabularySize ? "byte-level text: give --prompt TEXT or --prompt-tokens"
                                                : "not a corpus vocabulary: give --prompt-tokens"))
        }
        let split = try options.split(options.builtInDocuments(count: documents))
        return split.heldOut.prefix(count).map { Array($0.prefix(length)) }
    }

    /// Byte tokens as text when asked (lossy UTF-8), else space-separated ids.
    static func render(_ tokens: [Int32], asText: Bool) -> String {
        if asText { return String(decoding: tokens.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) }
        return tokens.map(String.init).joined(separator: " ")
    }

    /// The report of a speculative run; `bestAcceptance` (``TrainingOptions/bestAcceptance(depths:)``)
    /// is shown only when the checkpoint's data makes it known.
    static func printReport(_ c: GenerationComparison, depths: Int, greedy: Bool, bestAcceptance best: [Double]?) {
        let s = c.statistics
        print("speculative decoding with \(depths) MTP depth\(depths == 1 ? "" : "s") (\(greedy ? "greedy" : "sampled")), "
            + "\(c.prompts) prompt\(c.prompts == 1 ? "" : "s"):")
        for (k, a) in s.acceptance.enumerated() {
            let bound = best.map { String(format: "; best possible %.3f", $0[k]) } ?? ""
            print(String(format: "  depth %d acceptance   %.3f  (%d/%d%@)", k, a, s.accepted[k], s.drafted[k], bound))
        }
        print(String(format: "  tokens per forward   %.3f  (%d verifying forwards)", s.tokensPerForward, s.verifications))
        print(String(format: "  wall time            plain %.3f ms, speculative %.3f ms: speed-up %.3f×",
                     c.plainSeconds * 1e3, c.speculativeSeconds * 1e3, c.speedup))
        print(greedy ? "  identical to plain   \(c.identical ? "yes" : "NO") (\(c.identicalPrompts)/\(c.prompts) prompts)"
                     : "  identical to plain   not compared (sampling)")
    }

    /// How verification runs on this BLAS (see ``Generator/verifiesInBatches``).
    static func verificationNote(_ generator: Generator) -> String {
        generator.verifiesInBatches
            ? "verification: drafts batched into one main forward (this BLAS gives batch-invariant GEMM rows)"
            : "verification: row by row, since this BLAS rounds GEMM rows differently for different row counts "
                + "(greedy output stays identical, the batched speed-up is lost; OpenBLAS's SkylakeX kernels are invariant)"
    }

    /// The `--json` object of a speculative run; `best_acceptance` is null when unknown.
    static func jsonObject(_ c: GenerationComparison, depths: Int, greedy: Bool, batched: Bool, bestAcceptance: [Double]?,
                           tokens: [Int32]?) -> [String: Any] {
        let s = c.statistics
        var object: [String: Any] = [
            "draft_depths": depths,
            "acceptance": JSONOutput.numbers(s.acceptance),
            "best_acceptance": bestAcceptance.map(JSONOutput.numbers) ?? NSNull(),
            "tokens_per_forward": JSONOutput.number(s.tokensPerForward),
            "speedup": JSONOutput.number(c.speedup),
            "identical": greedy ? c.identical : NSNull(),
            "plain_seconds": JSONOutput.number(c.plainSeconds),
            "speculative_seconds": JSONOutput.number(c.speculativeSeconds),
            "prompts": c.prompts,
            "batched_verification": batched,
        ]
        if let tokens { object["tokens"] = tokens.map(Int.init) }
        return object
    }
}
