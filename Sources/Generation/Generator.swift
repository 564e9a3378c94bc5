// Text generation with a trained CausalLM: plain incremental decoding with KV caches,
// and lossless self-speculative decoding that drafts with the model's own MTP depths.
//
// Speculative step (D′ drafting depths, the main trunk has processed positions ≤ t and
// chosen token t + 1, "next"):
//   draft   depth k at position t fuses its previous state (the main final-norm output for
//           k = 0) with the embedding of token t + k + 1 (next for k = 0, else draft k − 1)
//           and proposes draft k for token t + k + 2. Its cache also gets every position
//           whose inputs became known since the last step, in the same call.
//   verify  one main forward over [next, draft 0, …, draft D′−1] at t + 1 … t + 1 + D′:
//           row j's logits judge draft j; the last row gives a bonus token.
//   accept  the longest prefix of drafts that pass (greedy: equal the main argmax;
//           sampling: the rule in TokenSampler.swift), then the main model's own
//           token at the first failure (or the bonus). 1 + accepted tokens per forward.
//   roll back  the main caches drop the rejected positions; a depth-k cache keeps only the
//           positions whose inputs are all committed: ≤ t − k + min(a, k) after a step that
//           accepted a drafts (the rows after t − k read drafts as tokens, and a row that read
//           accepted drafts only already holds what the committed tokens give). The rest is
//           recomputed next step from the committed tokens, so every cached entry equals what
//           the model computes on the final sequence.
// How many depths draft (D′ ≤ --draft-depths) is chosen per step by AdaptiveDrafting.swift.
// A depth that sat out some steps catches up over its missed positions when it next drafts;
// so that it can, every depth but the last allowed one keeps its output at every position.
//
// Context beyond the trained length S (options.contextLength): the model was trained on
// positions 0 … S − 1 only, and past them a byte-level model's output turns to noise. So
// the main model computes position p from the tokens of a window starting at
//   w(p) = 0 for p < S,  else (⌊(p − S) / W⌋ + 1) · W,   W = max(1, ⌊S/2⌋),
// at local positions p − w(p) < S: nanoGPT's crop to the last S tokens, moved W tokens at
// a time so the caches are recomputed (one prefill of the window's first S − W tokens) once
// per W tokens instead of at every token. Each position then sees S − W … S tokens. Plain and
// speculative decoding move the window at the same positions with the same prefill call
// (a verification never straddles two windows), so greedy output stays identical; the MTP
// depths restart their caches in the new window.

import Model
import Dispatch
import Foundation
import MTP
import NN
import Tensors

/// Generates tokens from a snapshot of a ``CausalLM``, plainly or speculatively.
///
/// Holds the KV caches of one sequence, so one generator runs one generation at a
/// time; it reuses its buffers from call to call.
///
/// ```swift
/// let generator = Generator(model: model)
/// let greedy = try generator.generate(prompt: [3, 11, 10], options: GenerationOptions(maxTokens: 40))
/// let fast = try generator.generate(prompt: [3, 11, 10], options: GenerationOptions(maxTokens: 40, draftDepths: 2))
/// // fast.tokens == greedy.tokens; fast.statistics.tokensPerForward ≈ 1 + accepted drafts per step
/// ```
public final class Generator {
    /// The model's sizes.
    public let config: ModelConfig
    let engine: DecodingEngine
    /// What drafting and verification cost on this machine (AdaptiveDrafting.swift): measured
    /// at the first adaptive speculative generation (outside its timing) unless set before.
    public var draftingCosts: DraftingCosts?

    /// Copies `model`'s weights (later changes to the model are not seen).
    public init(model: CausalLM) {
        config = model.config
        engine = DecodingEngine(weights: DecodingWeights(model))
    }

    /// The most depths that can draft: the model's MTP depth count D.
    public var maximumDraftDepths: Int { engine.weights.depths.count }

    /// Generates `options.maxTokens` tokens after `prompt`.
    ///
    /// With `draftDepths` = 0 each token costs one main forward. Otherwise every main
    /// forward verifies the drafts of up to `draftDepths` MTP depths (all of them, or as many
    /// as pay with `adaptiveDrafting`) and yields 1 + (accepted drafts) tokens. Greedy output
    /// is identical either way; sampled output follows the same distribution (not the same draws).
    ///
    /// - Parameters:
    ///   - prompt: at least one token id in `0 ..< V`.
    ///   - options: length, sampling, drafting and context.
    /// - Returns: the tokens and counters (wall time included).
    /// - Throws: ``GenerationError`` naming an empty prompt, an id out of range, or an option out of range.
    public func generate(prompt: [Int32], options: GenerationOptions) throws -> GenerationResult {
        try validate(prompt: prompt, options: options)
        if options.draftDepths > 0 && options.adaptiveDrafting && options.maxTokens > 0 && draftingCosts == nil {
            draftingCosts = measureDraftingCosts()
        }
        let start = DispatchTime.now().uptimeNanoseconds
        var result: GenerationResult
        if options.maxTokens == 0 {
            result = GenerationResult(tokens: [], statistics: GenerationStatistics(depths: options.draftDepths))
        } else {
            result = withoutGrad {
                options.draftDepths == 0 ? decodePlainly(prompt, options) : decodeSpeculatively(prompt, options)
            }
        }
        result.statistics.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        return result
    }

    private func validate(prompt: [Int32], options o: GenerationOptions) throws {
        guard !prompt.isEmpty else { throw GenerationError("the prompt is empty: give at least one token") }
        if let bad = prompt.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabularySize }) {
            throw GenerationError("prompt token \(prompt[bad]) at index \(bad) is outside 0..<\(config.vocabularySize)")
        }
        guard o.maxTokens >= 0 else { throw GenerationError("max tokens must be >= 0, got \(o.maxTokens)") }
        guard o.temperature >= 0, o.temperature.isFinite else {
            throw GenerationError("temperature must be finite and >= 0, got \(o.temperature)")
        }
        guard o.topP > 0, o.topP <= 1 else { throw GenerationError("top-p must be in (0, 1], got \(o.topP)") }
        guard o.draftDepths >= 0, o.draftDepths <= maximumDraftDepths else {
            throw GenerationError("draft depths must be in 0...\(maximumDraftDepths) (the model's MTP depths), got \(o.draftDepths)")
        }
        if let prior = o.acceptancePrior, let bad = prior.first(where: { !($0 >= 0 && $0 <= 1) }) {
            throw GenerationError("an acceptance prior must be in [0, 1], got \(bad)")
        }
        if let s = o.contextLength, s < 2 {
            throw GenerationError("the context length must be at least 2 positions, got \(s)")
        }
    }

    // MARK: Context window

    /// The window rule of the file header for a trained length S (nil: no window).
    struct ContextWindow {
        let length: Int?

        /// w(p): the first position of the window that computes position p.
        func start(for p: Int) -> Int {
            guard let s = length, p >= s else { return 0 }
            let stride = Swift.max(1, s / 2)
            return ((p - s) / stride + 1) * stride
        }

        /// The last position computed in the window that starts at `start`.
        func end(from start: Int) -> Int { length.map { start + $0 - 1 } ?? Int.max }
    }

    /// Empties every cache and runs the main trunk on `tokens` (the window's kept tokens) from
    /// local position 0, every row an output (their hidden states feed the depths' catch-up).
    private func prefill(_ tokens: ArraySlice<Int32>) {
        engine.reset()
        Array(tokens).withUnsafeBufferPointer { engine.runMain($0, start: 0, outputs: $0.count) }
    }

    // MARK: Plain decoding

    private func decodePlainly(_ prompt: [Int32], _ o: GenerationOptions) -> GenerationResult {
        let sampler = TokenSampler(temperature: o.temperature, topP: o.topP)
        let window = ContextWindow(length: o.contextLength)
        var generator = SplitMix64(seed: o.seed)
        var p: [Double] = []
        var stats = GenerationStatistics(depths: 0)
        var sequence = prompt
        sequence.reserveCapacity(prompt.count + o.maxTokens)
        // All rows, as the speculative prefill computes them: the first token's logits then match bit for bit.
        var base = window.start(for: prompt.count - 1)
        prefill(sequence[base...])
        stats.mainForwards = 1
        var logits = engine.logits.pointer + (prompt.count - 1 - base) * config.vocabularySize
        while true {
            let token = choose(logits, sampler, &p, &generator)
            sequence.append(token)
            if sequence.count - prompt.count == o.maxTokens { break }
            let position = sequence.count - 1
            if window.start(for: position) != base {
                base = window.start(for: position)
                prefill(sequence[base..<position])
                stats.windowShifts += 1
            }
            withUnsafePointer(to: token) {
                engine.runMain(UnsafeBufferPointer(start: $0, count: 1), start: position - base, outputs: 1)
            }
            logits = engine.logits.pointer
            stats.mainForwards += 1
        }
        return GenerationResult(tokens: Array(sequence[prompt.count...]), statistics: stats)
    }

    /// The greedy token, or a sample of the sampler's distribution.
    private func choose(_ logits: UnsafePointer<Float>, _ sampler: TokenSampler, _ p: inout [Double],
                        _ generator: inout SplitMix64) -> Int32 {
        let v = config.vocabularySize
        if sampler.isGreedy { return TokenSampler.argmax(logits, count: v) }
        sampler.distribution(logits, count: v, into: &p)
        return TokenSampler.sample(p, &generator)
    }

    // MARK: Speculative decoding

    private func decodeSpeculatively(_ prompt: [Int32], _ o: GenerationOptions) -> GenerationResult {
        let depths = o.draftDepths, v = config.vocabularySize, n = prompt.count
        let sampler = TokenSampler(temperature: o.temperature, topP: o.topP)
        let window = ContextWindow(length: o.contextLength)
        var controller = o.adaptiveDrafting
            ? DraftingController(costs: draftingCosts!, prior: o.acceptancePrior, depths: depths) : nil
        var generator = SplitMix64(seed: o.seed)
        var stats = GenerationStatistics(depths: depths)
        // The committed sequence: prompt, then generated tokens; the last one ("next") is not yet in the main caches.
        var sequence = prompt
        sequence.reserveCapacity(n + o.maxTokens + depths + 1)
        var drafts = [Int32](repeating: 0, count: depths)
        var draftDistributions = [[Double]](repeating: [], count: depths)
        var target: [Double] = []
        var inputs: [Int32] = []
        inputs.reserveCapacity(n + depths + 1)
        // Positions below are global (indices into `sequence`); the caches hold positions from `base` on.
        var base = window.start(for: n - 1)
        // finalized[k]: depth k's caches hold positions base ..< finalized[k], all computed from committed tokens.
        var finalized = [Int](repeating: base, count: depths)

        prefill(sequence[base...])
        stats.mainForwards = 1
        sequence.append(choose(engine.logits.pointer + (n - 1 - base) * v, sampler, &target, &generator))

        while sequence.count - n < o.maxTokens {
            let t = sequence.count - 2
            if window.start(for: t + 1) != base {
                base = window.start(for: t + 1)
                prefill(sequence[base...t])
                for k in 0..<depths { finalized[k] = base }
                stats.windowShifts += 1
            }
            // Every verified row stays inside the window; a plain step when the plan drafts nothing.
            let planned = controller?.depthsToDraft() ?? depths
            let d = Swift.min(planned, window.end(from: base) - (t + 1))
            // Draft: depth k covers positions finalized[k] ... t; row p reads token p + k + 1.
            for k in 0..<d {
                let first = finalized[k]
                inputs.removeAll(keepingCapacity: true)
                for p in first...t {
                    let index = p + k + 1
                    inputs.append(index < sequence.count ? sequence[index] : drafts[index - sequence.count])
                }
                inputs.withUnsafeBufferPointer {
                    engine.runDepth(k, tokens: $0, start: first - base, outputs: k == depths - 1 ? 1 : $0.count)
                }
                if sampler.isGreedy {
                    drafts[k] = TokenSampler.argmax(engine.logits.pointer, count: v)
                } else {
                    sampler.distribution(engine.logits.pointer, count: v, into: &draftDistributions[k])
                    drafts[k] = TokenSampler.sample(draftDistributions[k], &generator)
                }
            }
            // Verify the drafts in one main forward (batch-invariant rows: see DecodingEngine.swift).
            inputs.removeAll(keepingCapacity: true)
            inputs.append(sequence[t + 1])
            inputs.append(contentsOf: drafts[0..<d])
            inputs.withUnsafeBufferPointer { engine.runMain($0, start: t + 1 - base, outputs: $0.count) }
            stats.mainForwards += 1
            stats.verifications += 1
            stats.stepsByDraftDepths[d] += 1
            var accepted = 0
            var next: Int32? = nil
            for k in 0..<d {
                stats.drafted[k] += 1
                let row = engine.logits.pointer + k * v
                if sampler.isGreedy {
                    let best = TokenSampler.argmax(row, count: v)
                    if best != drafts[k] { next = best; break }
                } else {
                    sampler.distribution(row, count: v, into: &target)
                    if !TokenSampler.accepts(drafts[k], target: target, draft: draftDistributions[k], &generator) {
                        next = TokenSampler.residual(target: target, draft: draftDistributions[k], &generator)
                        break
                    }
                }
                stats.accepted[k] += 1
                accepted += 1
            }
            controller?.record(drafted: d, accepted: accepted)
            // Depth k's rows at t − k + 1 … t read drafts 0 … k − 1 as tokens: those that read accepted drafts only are final.
            for k in 0..<d {
                finalized[k] = Swift.max(base, t - k + 1 + Swift.min(accepted, k))
                engine.truncateDepth(k, to: finalized[k] - base)
            }
            let bonus = next ?? choose(engine.logits.pointer + d * v, sampler, &target, &generator)
            sequence.append(contentsOf: drafts[0..<accepted])
            sequence.append(bonus)
            stats.verifiedTokens += accepted + 1
            engine.truncateMain(to: t + 2 + accepted - base)
        }
        return GenerationResult(tokens: Array(sequence[n..<(n + o.maxTokens)]), statistics: stats)
    }

    // MARK: Costs

    /// Times the calls of a speculative step on a throw-away sequence: a main forward over
    /// 1 … D + 1 rows and one drafting call of each depth (k + 2 rows, as after an accepted
    /// step). Leaves the caches empty.
    ///
    /// On a shared machine single timings are noisy, so each repeat times every call back to
    /// back and takes its ratio to that repeat's one-row forward (neighbours slow a whole
    /// repeat alike); the costs are the median ratios times the fastest one-row forward.
    ///
    /// - Parameter repeats: timed runs per call (≥ 1).
    /// - Returns: seconds per call.
    public func measureDraftingCosts(repeats: Int = 31) -> DraftingCosts {
        let d = maximumDraftDepths, v = config.vocabularySize
        let tokens = (0..<(2 * d + 4)).map { Int32(($0 * 7 + 3) % v) }
        let n = d + 2
        var ratios = [[Double]](repeating: [], count: 2 * d + 1)
        var fastest = Double.infinity
        func seconds(_ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        }
        prefill(tokens[0..<n])
        // Every depth's states at all n positions first: a timed depth reads its predecessor's.
        for k in 0..<d {
            Array(tokens[0..<n]).withUnsafeBufferPointer { engine.runDepth(k, tokens: $0, start: 0, outputs: k == d - 1 ? 1 : n) }
            engine.truncateDepth(k, to: 0)
        }
        for _ in 0..<Swift.max(1, repeats) {
            var times: [Double] = []
            for m in 1...(d + 1) {
                let rows = Array(tokens[n..<(n + m)])
                times.append(seconds { rows.withUnsafeBufferPointer { engine.runMain($0, start: n, outputs: m) } })
                engine.truncateMain(to: n)
            }
            for k in 0..<d {
                let rows = Array(tokens[(k + 1)..<(2 * k + 3)])
                times.append(seconds {
                    rows.withUnsafeBufferPointer { engine.runDepth(k, tokens: $0, start: 0, outputs: k == d - 1 ? 1 : $0.count) }
                })
            }
            for k in 0..<d { engine.truncateDepth(k, to: 0) }
            fastest = Swift.min(fastest, times[0])
            for (i, t) in times.enumerated() { ratios[i].append(t / times[0]) }
        }
        engine.reset()
        let costs = ratios.map { r in r.sorted()[r.count / 2] * fastest }
        return DraftingCosts(verification: Array(costs[0...d]), drafting: Array(costs[(d + 1)...]))
    }
}
