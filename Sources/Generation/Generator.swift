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
//           positions whose inputs are all committed (≤ t − k), and the rest is recomputed
//           next step from the committed tokens, so every cached entry equals what the
//           model computes on the final sequence.

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

    /// Copies `model`'s weights (later changes to the model are not seen).
    public init(model: CausalLM) {
        config = model.config
        engine = DecodingEngine(weights: DecodingWeights(model))
    }

    /// The most depths that can draft: the model's MTP depth count D.
    public var maximumDraftDepths: Int { engine.weights.depths.count }

    /// Whether a verification runs its rows through the main model as one batch. True when
    /// this BLAS computes a GEMM row to the same bits whatever the row count (probed once on
    /// the model's matrices); otherwise rows are verified one by one, which keeps greedy
    /// output identical to plain decoding but forgoes the batched GEMMs' speed.
    public var verifiesInBatches: Bool { engine.verifiesInBatches }

    /// Generates `options.maxTokens` tokens after `prompt`.
    ///
    /// With `draftDepths` = 0 each token costs one main forward. Otherwise every main
    /// forward verifies the drafts of the first `draftDepths` MTP depths and yields
    /// 1 + (accepted drafts) tokens. Greedy output is identical either way; sampled output
    /// follows the same distribution (not the same draws).
    ///
    /// - Parameters:
    ///   - prompt: at least one token id in `0 ..< V`.
    ///   - options: length, sampling and drafting.
    /// - Returns: the tokens and counters (wall time included).
    /// - Throws: ``GenerationError`` naming an empty prompt, an id out of range, or an option out of range.
    public func generate(prompt: [Int32], options: GenerationOptions) throws -> GenerationResult {
        try validate(prompt: prompt, options: options)
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
    }

    // MARK: Plain decoding

    private func decodePlainly(_ prompt: [Int32], _ o: GenerationOptions) -> GenerationResult {
        let sampler = TokenSampler(temperature: o.temperature, topP: o.topP)
        var generator = SplitMix64(seed: o.seed)
        var p: [Double] = []
        var stats = GenerationStatistics(depths: 0)
        var out: [Int32] = []
        out.reserveCapacity(o.maxTokens)
        engine.reset()
        // All rows, as the speculative prefill computes them: the first token's logits then match bit for bit.
        prompt.withUnsafeBufferPointer { engine.runMain($0, start: 0, outputs: $0.count) }
        stats.mainForwards = 1
        var position = prompt.count
        var logits = engine.logits.pointer + (prompt.count - 1) * config.vocabularySize
        while true {
            let token = choose(logits, sampler, &p, &generator)
            out.append(token)
            if out.count == o.maxTokens { break }
            withUnsafePointer(to: token) { engine.runMain(UnsafeBufferPointer(start: $0, count: 1), start: position, outputs: 1) }
            logits = engine.logits.pointer
            position += 1
            stats.mainForwards += 1
        }
        return GenerationResult(tokens: out, statistics: stats)
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
        // finalized[k]: positions in depth k's caches, all computed from committed tokens.
        var finalized = [Int](repeating: 0, count: depths)

        engine.reset()
        prompt.withUnsafeBufferPointer { engine.runMain($0, start: 0, outputs: n) }
        stats.mainForwards = 1
        sequence.append(choose(engine.logits.pointer + (n - 1) * v, sampler, &target, &generator))

        while sequence.count - n < o.maxTokens {
            let t = sequence.count - 2
            // Draft: depth k covers positions finalized[k] ... t; row p reads token p + k + 1.
            for k in 0..<depths {
                let first = finalized[k]
                inputs.removeAll(keepingCapacity: true)
                for p in first...t {
                    let index = p + k + 1
                    inputs.append(index < sequence.count ? sequence[index] : drafts[index - sequence.count])
                }
                inputs.withUnsafeBufferPointer {
                    engine.runDepth(k, tokens: $0, start: first, outputs: k == depths - 1 ? 1 : $0.count)
                }
                if sampler.isGreedy {
                    drafts[k] = TokenSampler.argmax(engine.logits.pointer, count: v)
                } else {
                    sampler.distribution(engine.logits.pointer, count: v, into: &draftDistributions[k])
                    drafts[k] = TokenSampler.sample(draftDistributions[k], &generator)
                }
                finalized[k] = Swift.max(0, t - k + 1)
                engine.truncateDepth(k, to: finalized[k])
            }
            // Verify all drafts in one main forward.
            inputs.removeAll(keepingCapacity: true)
            inputs.append(sequence[t + 1])
            inputs.append(contentsOf: drafts)
            inputs.withUnsafeBufferPointer { engine.verify($0, start: t + 1) }
            stats.mainForwards += 1
            stats.verifications += 1
            var accepted = 0
            var next: Int32? = nil
            for k in 0..<depths {
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
            let bonus = next ?? choose(engine.logits.pointer + depths * v, sampler, &target, &generator)
            sequence.append(contentsOf: drafts[0..<accepted])
            sequence.append(bonus)
            stats.verifiedTokens += accepted + 1
            engine.truncateMain(to: t + 2 + accepted)
        }
        return GenerationResult(tokens: Array(sequence[n..<(n + o.maxTokens)]), statistics: stats)
    }
}
