import ArgumentParser
import Foundation
import Tensors
import Data
import Generation
import Model
import NN
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
    @Option(help: "Prompt text (encoded with the run's tokenizer, else as bytes).") var prompt: String?
    @Option(help: "A Hugging Face tokenizer.json for --prompt and the output (default: the run's or the directory's).")
    var tokenizer: String?
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
        var (model, options, isHuggingFace, prior) = try GenerationSetup.load(decoding.checkpointPath)
        if isHuggingFace && prompt == nil && promptTokens == nil {
            throw ValidationError("a Hugging Face directory has no built-in corpus to take a prompt from; give --prompt or --prompt-tokens")
        }
        if let tokenizer {
            // Another file than the run's, by request: nothing recorded to check it against.
            options.tokenizer = tokenizer
            options.tokenizerChecksum = nil
        }
        let text = try options.loadTokenizer().map(TextCodec.tokenizer) ?? .bytes
        try SizeLimits.checkDecoding(maxTokens: decoding.maxTokens, promptLength: promptLength, model: options.model)
        let generator = Generator(model: model)
        let tokens = try GenerationSetup.promptTokens(text: prompt, ids: promptTokens, options: options, codec: text,
                                                      documents: decoding.documents, index: promptIndex, length: promptLength)
        var textRun = prompt != nil
        if case .text = options.dataSource { textRun = true }
        let isText: TextCodec? = textRun ? text : nil
        let depths = speculative ? (draftDepths ?? generator.maximumDraftDepths) : 0
        if speculative && generator.maximumDraftDepths < 1 {
            throw ValidationError("--speculative needs a checkpoint with MTP depths; this one has none")
        }
        if speculative, !(1...generator.maximumDraftDepths).contains(depths) {
            throw ValidationError("--draft-depths must be in 1...\(generator.maximumDraftDepths) (the checkpoint's MTP depths), got \(depths)")
        }
        let o = GenerationOptions(maxTokens: decoding.maxTokens, temperature: decoding.temperature, topP: decoding.topP,
                                  seed: decoding.seed, draftDepths: depths, adaptiveDrafting: decoding.adaptive,
                                  acceptancePrior: prior, contextLength: options.sequenceLength)
        guard speculative else {
            let result = try generator.generate(prompt: tokens, options: o)
            print("prompt     \(GenerationSetup.render(tokens, asText: isText))")
            let rate = Double(result.tokens.count) / Swift.max(result.statistics.seconds, 1e-12)
            print("generated  \(GenerationSetup.render(result.tokens, asText: isText))")
            print(String(format: "plain decoding: %d tokens in %.2f ms (%.0f tokens/s), %d main forwards",
                         result.tokens.count, result.statistics.seconds * 1e3, rate, result.statistics.mainForwards))
            if result.statistics.windowShifts > 0 { print(GenerationSetup.windowNote(result.statistics, options)) }
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
        FileHandle.standardError.write(Data((GenerationSetup.kernelNote + "\n").utf8))
        let best = options.bestAcceptance(depths: depths)
        GenerationSetup.printReport(c, depths: depths, greedy: decoding.temperature == 0, adaptive: decoding.adaptive,
                                    bestAcceptance: best, options: options)
        if json {
            try JSONOutput.print(GenerationSetup.jsonObject(c, depths: depths, greedy: decoding.temperature == 0,
                                                            adaptive: decoding.adaptive, bestAcceptance: best,
                                                            tokens: c.speculativeTokens))
        }
    }
}

/// How prompt text becomes tokens, and tokens text: a run's BPE tokenizer, or bytes.
enum TextCodec {
    case bytes
    case tokenizer(BPETokenizer)
}

/// What `mtp generate` and `mtp bench generate` share: the checkpoint, prompts, rendering and reports.
enum GenerationSetup {
    /// The model of a checkpoint, its run's options, and the acceptance adaptive drafting starts
    /// from: the last held-out evaluation's teacher-forced agreement per depth, when recorded.
    /// A Hugging Face directory has no evaluations: its prior is nil.
    static func load(_ path: String) throws -> (model: CausalLM, options: TrainingOptions, isHuggingFace: Bool, prior: [Double]?) {
        let url = URL(fileURLWithPath: path)
        if HuggingFaceDirectory.isModelDirectory(url) {
            let (model, options, _) = try Trainer.loadModel(checkpointOrDirectory: url)
            return (model, options, true, nil)
        }
        let (model, metadata) = try CausalLM.load(checkpoint: url)
        let run = try Trainer.checkpointMetadata(metadata, source: path)
        return (model, run.options, false, run.evaluations.last?.depthAgreements)
    }

    /// The prompt: UTF-8 bytes of `text`, the ids in `ids`, or held-out corpus prefixes.
    static func promptTokens(text: String?, ids: String?, options: TrainingOptions, codec: TextCodec, documents: Int,
                             index: Int, length: Int) throws -> [Int32] {
        let v = options.model.vocabularySize
        if let text {
            switch codec {
            case .tokenizer(let t):
                return try t.encode(text)
            case .bytes:
                guard v == TextData.vocabularySize else {
                    throw ValidationError("--prompt TEXT needs a tokenizer (--tokenizer) or a byte-level checkpoint (vocabulary 256), "
                        + "this one has \(v); use --prompt-tokens")
                }
                return text.utf8.map { Int32($0) }
            }
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
    /// corpus, drawn and split by the run's own rule (`TrainingOptions.builtInDocuments`, `split`);
    /// for a checkpoint trained on a text file still at its recorded path, the first `count`
    /// held-out documents of that file (split the same way) with at least `length` bytes.
    static func heldOutPrompts(options: TrainingOptions, documents: Int, count: Int, length: Int) throws -> [[Int32]] {
        let v = options.model.vocabularySize
        if case .text(let path) = options.dataSource, FileManager.default.fileExists(atPath: path) {
            let split = try options.split(TextData.documents(fromUTF8File: URL(fileURLWithPath: path)))
            return split.heldOut.filter { $0.count >= length }.prefix(count).map { Array($0.prefix(length)) }
        }
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

    /// Tokens as text through `codec` when given (bytes as lossy UTF-8), else space-separated ids.
    static func render(_ tokens: [Int32], asText codec: TextCodec?) -> String {
        switch codec {
        case .bytes?: return String(decoding: tokens.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
        case .tokenizer(let t)?: return t.decode(tokens)
        case nil: return tokens.map(String.init).joined(separator: " ")
        }
    }

    /// The report of a speculative run; `bestAcceptance` (``TrainingOptions/bestAcceptance(depths:)``)
    /// is shown only when the checkpoint's data makes it known.
    static func printReport(_ c: GenerationComparison, depths: Int, greedy: Bool, adaptive: Bool, bestAcceptance best: [Double]?,
                            options: TrainingOptions) {
        let s = c.statistics
        print("speculative decoding with \(adaptive ? "up to " : "")\(depths) MTP depth\(depths == 1 ? "" : "s") "
            + "(\(greedy ? "greedy" : "sampled")\(adaptive ? ", adaptive drafting" : "")), "
            + "\(c.prompts) prompt\(c.prompts == 1 ? "" : "s"):")
        for (k, a) in s.acceptance.enumerated() {
            let bound = best.map { String(format: "; best possible %.3f", $0[k]) } ?? ""
            print(String(format: "  depth %d acceptance   %.3f  (%d/%d%@)", k, a, s.accepted[k], s.drafted[k], bound))
        }
        print(String(format: "  tokens per forward   %.3f  (%d verifying forwards)", s.tokensPerForward, s.verifications))
        if adaptive {
            print("  drafts per step      " + s.stepsByDraftDepths.enumerated().map { "\($0.offset): \($0.element)" }
                .joined(separator: ", ") + " steps")
        }
        print(String(format: "  wall time            plain %.3f ms, speculative %.3f ms: speed-up %.3f×",
                     c.plainSeconds * 1e3, c.speculativeSeconds * 1e3, c.speedup))
        print(greedy ? "  identical to plain   \(c.identical ? "yes" : "NO") (\(c.identicalPrompts)/\(c.prompts) prompts)"
                     : "  identical to plain   not compared (sampling)")
        if s.windowShifts > 0 { print("  " + windowNote(s, options)) }
    }

    /// Says that generation ran past the trained length and what that did.
    static func windowNote(_ s: GenerationStatistics, _ options: TrainingOptions) -> String {
        "context              past the trained \(options.sequenceLength) positions: sliding window of the last "
            + "\(options.sequenceLength - Swift.max(1, options.sequenceLength / 2))…\(options.sequenceLength) tokens, "
            + "caches recomputed \(s.windowShifts) time\(s.windowShifts == 1 ? "" : "s")"
    }

    /// Which kernels decode: the batch-invariant row kernel for a step's few rows and short prefills, BLAS for long ones.
    static var kernelNote: String {
        "verification: one batched main forward per step; calls of up to \(Linear.Frozen.chunkedKernelRows) rows run the "
            + "batch-invariant \(Linear.KernelVariant.current) kernel (\(Linear.Frozen.kernelRows) rows at a time), longer "
            + "prefills BLAS (\(BLAS.coreName ?? "not OpenBLAS"))"
    }

    /// The `--json` object of a speculative run; `best_acceptance` is null when unknown.
    static func jsonObject(_ c: GenerationComparison, depths: Int, greedy: Bool, adaptive: Bool, bestAcceptance: [Double]?,
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
            "adaptive": adaptive,
            "steps_by_draft_depths": s.stepsByDraftDepths,
            "window_shifts": s.windowShifts,
            "row_kernel": Linear.KernelVariant.current.description,
            "blas_core": BLAS.coreName ?? NSNull(),
        ]
        if let tokens { object["tokens"] = tokens.map(Int.init) }
        return object
    }
}
