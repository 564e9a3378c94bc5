// Adaptive drafting (the rule of AdaptiveDrafting.swift, and that it keeps greedy output
// identical and never drafts a depth whose acceptance is zero) and the context window past
// the trained length (equal to a full forward over the window, identical in both modes).

import Data
import Model
import Training
import Foundation
import MTP
import NN
import Tensors
@testable import Generation
import XCTest

final class GenerationAdaptiveTests: XCTestCase {
    /// Costs where one verification row costs 1 and extra rows and drafts `draft` each.
    private func costs(depths: Int, draft: Double, row: Double = 0.1) -> DraftingCosts {
        DraftingCosts(verification: (0...depths).map { 1 + row * Double($0) }, drafting: [Double](repeating: draft, count: depths))
    }

    func testTheRuleDraftsAsDeepAsPays() {
        // Cheap drafts that always pass: every depth.
        XCTAssertEqual(DraftingController(costs: costs(depths: 3, draft: 0.1), prior: [1, 1, 1], depths: 3).depthsToDraft(), 3)
        // Drafts dearer than a plain step with coin-flip acceptance: none (E(1)/T(1) = 1.5 / 2.2 < 1).
        XCTAssertEqual(DraftingController(costs: costs(depths: 2, draft: 1.1), prior: [0.5, 0.5], depths: 2).depthsToDraft(), 0)
        // Depth 1 rarely passes: E(2)/T(2) = 1.95/1.6 < E(1)/T(1) = 1.9/1.3.
        XCTAssertEqual(DraftingController(costs: costs(depths: 2, draft: 0.2), prior: [0.9, 0.05], depths: 2).depthsToDraft(), 1)
    }

    func testADepthWithZeroAcceptanceIsNeverChosen() {
        for draft in [0.0, 1e-9, 0.01, 0.3] {
            for row in [0.0, 0.05] {
                let c = costs(depths: 3, draft: draft, row: row)
                XCTAssertEqual(DraftingController(costs: c, prior: [0, 1, 1], depths: 3).depthsToDraft(), 0, "draft \(draft)")
                XCTAssertLessThanOrEqual(DraftingController(costs: c, prior: [1, 0, 1], depths: 3).depthsToDraft(), 1)
                XCTAssertLessThanOrEqual(DraftingController(costs: c, prior: [1, 1, 0], depths: 3).depthsToDraft(), 2)
            }
        }
        // Measured noise (a dearer one-row than two-row verification) does not make a zero depth free.
        let noisy = DraftingCosts(verification: [1.0, 0.9, 0.95], drafting: [0, 0])
        XCTAssertEqual(DraftingController(costs: noisy, prior: [1, 0], depths: 2).depthsToDraft(), 1)
    }

    func testRejectionsLowerTheEstimateAndFadedEvidenceReturnsToThePrior() {
        var c = DraftingController(costs: costs(depths: 2, draft: 0.2), prior: [1, 1], depths: 2)
        XCTAssertEqual(c.depthsToDraft(), 2)
        for _ in 0..<10 { c.record(drafted: 2, accepted: 0) }
        XCTAssertLessThan(c.acceptance(0), 0.4)
        XCTAssertEqual(c.acceptance(1), 1, "depth 1 was never checked")
        XCTAssertEqual(c.depthsToDraft(), 0)
        // Steps without drafts: the evidence fades and depth 0 is tried again.
        var steps = 0
        while c.depthsToDraft() == 0 && steps < 200 { c.record(drafted: 0, accepted: 0); steps += 1 }
        XCTAssertGreaterThan(steps, 3)
        XCTAssertLessThan(steps, 200)
    }

    func testAdaptiveDraftingKeepsGreedyOutputAndSkipsAZeroPriorDepth() throws {
        let model = try briefTrainedGenerationModel.get()
        let generator = Generator(model: model)
        let corpus = try SyntheticCorpus(vocabularySize: 24, seed: 5)
        for doc in try corpus.documents(count: 4, seed: 78) {
            let prompt = Array(doc.prefix(5))
            let plain = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 30))
            for prior in [nil, [1.0, 0.0], [0.0, 1.0]] as [[Double]?] {
                let r = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 30, draftDepths: 2,
                                                                                         acceptancePrior: prior))
                XCTAssertEqual(r.tokens, plain.tokens, "prompt \(prompt) prior \(prior ?? [])")
                let s = r.statistics
                XCTAssertEqual(s.stepsByDraftDepths.reduce(0, +), s.verifications)
                XCTAssertEqual(s.drafted[0], s.verifications - s.stepsByDraftDepths[0])
                XCTAssertEqual(s.verifiedTokens, s.verifications + s.accepted.reduce(0, +))
                if prior == [1, 0] { XCTAssertEqual(s.drafted[1], 0, "a depth of acceptance 0 was drafted") }
                if prior == [0, 1] { XCTAssertEqual(s.drafted, [0, 0], "a depth of acceptance 0 was drafted") }
            }
        }
    }

    func testAdaptiveDraftingStopsDraftingWhereDraftsFail() throws {
        // Random weights scaled up: drafts disagree with the main model almost always.
        let generator = Generator(model: try randomGenerationModel(seed: 3, scale: 30))
        generator.draftingCosts = DraftingCosts(verification: [1, 1.1, 1.2, 1.3], drafting: [0.15, 0.15, 0.15])
        let prompt: [Int32] = [1, 4, 2]
        let every = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 60, draftDepths: 3,
                                                                                     adaptiveDrafting: false))
        let adaptive = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 60, draftDepths: 3))
        XCTAssertEqual(adaptive.tokens, every.tokens)
        XCTAssertLessThan(adaptive.statistics.acceptance[0], 0.5)
        // It stops after a few rejections and re-tries now and then as the evidence fades (deterministic here).
        XCTAssertLessThan(3 * adaptive.statistics.drafted[0], 2 * every.statistics.drafted[0],
                          "adaptive \(adaptive.statistics.drafted) against \(every.statistics.drafted)")
    }

    func testMeasuredCostsArePositive() throws {
        let generator = Generator(model: try randomGenerationModel(depths: 3))
        let c = generator.measureDraftingCosts(repeats: 2)
        XCTAssertEqual(c.verification.count, 4)
        XCTAssertEqual(c.drafting.count, 3)
        XCTAssertTrue((c.verification + c.drafting).allSatisfy { $0 > 0 && $0.isFinite })
        // The generator is left clean: decoding afterwards equals a fresh generator's.
        let fresh = Generator(model: try randomGenerationModel(depths: 3))
        XCTAssertEqual(try generator.generate(prompt: [2, 5], options: GenerationOptions(maxTokens: 9)).tokens,
                       try fresh.generate(prompt: [2, 5], options: GenerationOptions(maxTokens: 9)).tokens)
    }

    // MARK: Context window

    func testWindowPositionsFollowTheRule() {
        let w = Generator.ContextWindow(length: 8)
        XCTAssertEqual((0..<24).map(w.start(for:)), [0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 16, 16, 16, 16])
        XCTAssertEqual(w.end(from: 0), 7)
        XCTAssertEqual(w.end(from: 4), 11)
        for p in 0..<100 { XCTAssertLessThan(p - w.start(for: p), 8) }
        XCTAssertEqual(Generator.ContextWindow(length: nil).start(for: 1000), 0)
    }

    func testGenerationPastTheTrainedLengthEqualsAFullForwardOverTheWindow() throws {
        let model = try randomGenerationModel(scale: 8)
        let generator = Generator(model: model)
        let s = 8, window = Generator.ContextWindow(length: s)
        for prompt in [[3] as [Int32], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] {
            let plain = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 25, contextLength: s))
            XCTAssertGreaterThan(plain.statistics.windowShifts, 0)
            // nanoGPT-style reference: each token is the argmax of a full forward over its window.
            var sequence = prompt
            for _ in 0..<25 {
                let p = sequence.count - 1
                let logits = try referenceLogits(model, Array(sequence[window.start(for: p)...])).main.last!
                var best = 0
                for i in logits.indices where logits[i] > logits[best] { best = i }
                sequence.append(Int32(best))
            }
            XCTAssertEqual(plain.tokens, Array(sequence[prompt.count...]), "prompt \(prompt)")
            for depths in 1...3 {
                for adaptive in [false, true] {
                    let fast = try generator.generate(prompt: prompt, options: GenerationOptions(
                        maxTokens: 25, draftDepths: depths, adaptiveDrafting: adaptive, contextLength: s))
                    XCTAssertEqual(fast.tokens, plain.tokens, "prompt \(prompt) depths \(depths) adaptive \(adaptive)")
                    XCTAssertEqual(fast.statistics.windowShifts, plain.statistics.windowShifts)
                }
            }
        }
        XCTAssertThrowsError(try generator.generate(prompt: [1], options: GenerationOptions(contextLength: 1)))
    }
}
