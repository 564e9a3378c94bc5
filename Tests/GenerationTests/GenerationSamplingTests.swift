// Speculative sampling is lossless: the empirical distribution of generated tokens
// with drafting matches the main model's exact distribution (from a full forward per
// prefix) within a chi-square bound, with and without top-p; the bound is shown to
// have power by rejecting a slightly wrong distribution. Plus the sampler's pieces.

import Data
import Model
import Training
import Foundation
import MTP
import NN
import Tensors
@testable import Generation
import XCTest

final class GenerationSamplingTests: XCTestCase {
    /// The 0.999 quantile of χ²(dof) (Wilson–Hilferty; within 1% for dof ≥ 3).
    private func chiSquareBound(dof: Int) -> Double {
        let k = Double(dof), z = 3.090
        return k * Foundation.pow(1 - 2 / (9 * k) + z * (2 / (9 * k)).squareRoot(), 3)
    }

    /// Pearson's statistic of `counts` against `probabilities` (cells expecting fewer than 5 pooled) and its dof.
    private func chiSquare(_ counts: [Int], _ probabilities: [Double]) -> (statistic: Double, dof: Int) {
        let n = Double(counts.reduce(0, +))
        var statistic = 0.0, cells = 0, pooledCount = 0.0, pooledExpected = 0.0
        for (c, p) in zip(counts, probabilities) {
            let e = n * p
            if e < 5 {
                pooledCount += Double(c)
                pooledExpected += e
                continue
            }
            statistic += (Double(c) - e) * (Double(c) - e) / e
            cells += 1
        }
        if pooledExpected > 0 {
            statistic += (pooledCount - pooledExpected) * (pooledCount - pooledExpected) / pooledExpected
            cells += 1
        } else if pooledCount > 0 {
            statistic = .infinity  // a token of probability zero was drawn
        }
        return (statistic, cells - 1)
    }

    /// The exact joint distribution of the next three tokens under `sampler`, from full forwards.
    private func exactJoint(_ model: CausalLM, prompt: [Int32], _ sampler: TokenSampler) throws -> [Double] {
        let v = model.config.vocabularySize
        func distribution(_ prefix: [Int32]) throws -> [Double] {
            var logits = try referenceLogits(model, prefix).main.last!
            var p: [Double] = []
            logits.withUnsafeMutableBufferPointer { sampler.distribution($0.baseAddress!, count: v, into: &p) }
            return p
        }
        var joint = [Double](repeating: 0, count: v * v * v)
        let p1 = try distribution(prompt)
        for a in 0..<v where p1[a] > 0 {
            let p2 = try distribution(prompt + [Int32(a)])
            for b in 0..<v where p2[b] > 0 {
                let p3 = try distribution(prompt + [Int32(a), Int32(b)])
                for c in 0..<v { joint[(a * v + b) * v + c] = p1[a] * p2[b] * p3[c] }
            }
        }
        return joint
    }

    /// Counts of the three generated tokens over `runs` seeds.
    private func sampledJoint(_ generator: Generator, prompt: [Int32], options: GenerationOptions, runs: Int)
        throws -> (counts: [Int], statistics: GenerationStatistics) {
        let v = generator.config.vocabularySize
        var counts = [Int](repeating: 0, count: v * v * v)
        var stats = GenerationStatistics(depths: options.draftDepths)
        for seed in 0..<runs {
            var o = options
            o.seed = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15
            let r = try generator.generate(prompt: prompt, options: o)
            counts[(Int(r.tokens[0]) * v + Int(r.tokens[1])) * v + Int(r.tokens[2])] += 1
            stats = stats.merged(with: r.statistics)
        }
        return (counts, stats)
    }

    func testSpeculativeSamplingFollowsTheMainModel() throws {
        let model = try randomGenerationModel(vocabularySize: 5, hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 16,
                                              depths: 2, seed: 7, scale: 25)
        let generator = Generator(model: model)
        // Drafts priced cheap, so adaptive drafting keeps drafting on this one-layer model (whose
        // depth costs as much as its trunk) and both branches of the accept rule are exercised.
        generator.draftingCosts = DraftingCosts(verification: [1, 1, 1], drafting: [0.01, 0.01])
        let prompt: [Int32] = [1, 3]
        let runs = 6000
        // Every depth drafting every step, and adaptive drafting (which varies the drafts per step).
        for (temperature, topP, adaptive) in [(1.0, 1.0, false), (0.8, 0.85, true)] {
            let sampler = TokenSampler(temperature: temperature, topP: topP)
            let exact = try exactJoint(model, prompt: prompt, sampler)
            let o = GenerationOptions(maxTokens: 3, temperature: temperature, topP: topP, draftDepths: 2,
                                      adaptiveDrafting: adaptive)
            let (counts, stats) = try sampledJoint(generator, prompt: prompt, options: o, runs: runs)
            // Drafts are often rejected and often accepted, so both branches of the rule shape the counts.
            let acceptance = stats.acceptance
            XCTAssertGreaterThan(acceptance[0], 0.15, "T=\(temperature) top-p \(topP): acceptance \(acceptance)")
            XCTAssertLessThan(acceptance[0], 0.9, "T=\(temperature) top-p \(topP): acceptance \(acceptance)")
            XCTAssertGreaterThan(stats.accepted[1] + (stats.drafted[1] - stats.accepted[1]), 100)
            let (chi, dof) = chiSquare(counts, exact)
            XCTAssertGreaterThanOrEqual(dof, 10)
            XCTAssertLessThan(chi, chiSquareBound(dof: dof), "T=\(temperature) top-p \(topP): χ² \(chi) with \(dof) dof")
            // Power: the same counts reject the distribution of a slightly different temperature.
            let wrong = try exactJoint(model, prompt: prompt, TokenSampler(temperature: temperature * 1.15, topP: topP))
            let (chiWrong, dofWrong) = chiSquare(counts, wrong)
            XCTAssertGreaterThan(chiWrong, chiSquareBound(dof: dofWrong), "the test cannot tell T from 1.15·T")
        }
    }

    func testPlainSamplingFollowsTheMainModel() throws {
        let model = try randomGenerationModel(vocabularySize: 5, hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 16,
                                              depths: 2, seed: 7, scale: 25)
        let sampler = TokenSampler(temperature: 1, topP: 1)
        let exact = try exactJoint(model, prompt: [1, 3], sampler)
        let (counts, _) = try sampledJoint(Generator(model: model), prompt: [1, 3],
                                           options: GenerationOptions(maxTokens: 3, temperature: 1), runs: 3000)
        let (chi, dof) = chiSquare(counts, exact)
        XCTAssertLessThan(chi, chiSquareBound(dof: dof), "χ² \(chi) with \(dof) dof")
    }

    func testTheAcceptRuleReproducesTheTarget() {
        // P(out = y) = q(y)·min(1, p(y)/q(y)) + (1 − Σ min(p, q))·r(y) = p(y), evaluated exactly.
        let p = [0.5, 0.3, 0.2, 0.0], q = [0.1, 0.6, 0.1, 0.2]
        var rejected = 0.0
        for y in 0..<4 { rejected += q[y] * (1 - Swift.min(1, p[y] / q[y])) }
        let residualMass = zip(p, q).map { Swift.max(0, $0 - $1) }.reduce(0, +)
        for y in 0..<4 {
            let out = q[y] * Swift.min(1, p[y] / q[y]) + rejected * Swift.max(0, p[y] - q[y]) / residualMass
            XCTAssertEqual(out, p[y], accuracy: 1e-15)
        }
        // The implementation: acceptance frequency of draft 1 is p/q = 0.5; the residual never returns a token with p ≤ q.
        var g = SplitMix64(seed: 3)
        var accepted = 0
        for _ in 0..<20_000 where TokenSampler.accepts(1, target: p, draft: q, &g) { accepted += 1 }
        XCTAssertEqual(Double(accepted) / 20_000, 0.5, accuracy: 0.015)
        var seen = Set<Int32>()
        for _ in 0..<2000 { seen.insert(TokenSampler.residual(target: p, draft: q, &g)) }
        XCTAssertEqual(seen, [0, 2])
        XCTAssertTrue(TokenSampler.accepts(0, target: p, draft: q, &g))  // p ≥ q: always kept
    }

    func testDistributionAppliesTemperatureAndNucleus() {
        var logits: [Float] = [2, 1, 0, 1, -30]
        var p: [Double] = []
        let softmax = [2.0, 1, 0, 1, -30].map(Foundation.exp)
        let total = softmax.reduce(0, +)
        logits.withUnsafeMutableBufferPointer { TokenSampler(temperature: 1, topP: 1).distribution($0.baseAddress!, count: 5, into: &p) }
        for i in 0..<5 { XCTAssertEqual(p[i], softmax[i] / total, accuracy: 1e-12) }
        // Nucleus 0.7: token 0 (0.53), then the tie of 1 and 3 (0.20 each) broken by index: {0, 1}.
        logits.withUnsafeMutableBufferPointer { TokenSampler(temperature: 1, topP: 0.7).distribution($0.baseAddress!, count: 5, into: &p) }
        let kept = softmax[0] + softmax[1]
        for (i, expected) in [softmax[0] / kept, softmax[1] / kept, 0, 0, 0].enumerated() {
            XCTAssertEqual(p[i], expected, accuracy: 1e-12)
        }
        // A tiny nucleus keeps the most likely token only; a low temperature sharpens.
        logits.withUnsafeMutableBufferPointer { TokenSampler(temperature: 1, topP: 1e-9).distribution($0.baseAddress!, count: 5, into: &p) }
        XCTAssertEqual(p, [1, 0, 0, 0, 0])
        logits.withUnsafeMutableBufferPointer { TokenSampler(temperature: 0.5, topP: 1).distribution($0.baseAddress!, count: 5, into: &p) }
        XCTAssertEqual(p[0] / p[1], Foundation.exp(2.0), accuracy: 1e-9)
        XCTAssertEqual(logits.withUnsafeBufferPointer { TokenSampler.argmax($0.baseAddress!, count: 5) }, 0)
        let tie: [Float] = [1, 3, 3, -1]
        XCTAssertEqual(tie.withUnsafeBufferPointer { TokenSampler.argmax($0.baseAddress!, count: 4) }, 1)
    }

    func testSampleNeverReturnsAZeroProbabilityToken() {
        var g = SplitMix64(seed: 1)
        var counts = [0, 0, 0, 0]
        for _ in 0..<4000 { counts[Int(TokenSampler.sample([0.25, 0, 0.75, 0], &g))] += 1 }
        XCTAssertEqual(counts[1] + counts[3], 0)
        XCTAssertEqual(Double(counts[2]) / 4000, 0.75, accuracy: 0.03)
    }
}
