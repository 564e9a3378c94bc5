// The decoding engine's KV caches against a full recomputation through the model's
// training forward (main trunk and every MTP depth, with rolled-back positions), and
// batched verification rows bit-identical to plain decoding on every BLAS (what greedy
// identity rests on; the kernel's own row test is in NNTests), and every cache a speculative
// generation leaves bit-identical to computing the committed sequence afresh (rolled-back
// drafts leave no trace; the rows a depth keeps after accepted drafts are final).
// The cache itself and the layers' inference path are tested in NNTests.

import Data
import Model
import Training
import Foundation
import MTP
import NN
import Tensors
import TestSupport
@testable import Generation
import XCTest

final class GenerationCacheTests: XCTestCase {
    /// Largest |a − b| over two logit rows.
    private func maxDifference(_ a: UnsafePointer<Float>, _ b: [Float]) -> Float {
        var m: Float = 0
        for (i, y) in b.enumerated() { m = Swift.max(m, abs(a[i] - y)) }
        return m
    }

    private func sequence(_ count: Int, vocabularySize v: Int, seed: UInt64) -> [Int32] {
        var g = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int32(g.next() % UInt64(v)) }
    }

    func testMainCacheMatchesFullRecomputation() throws {
        let model = try randomGenerationModel(scale: 8)
        let tokens = sequence(21, vocabularySize: 11, seed: 3)
        let reference = try referenceLogits(model, tokens).main
        let engine = DecodingEngine(weights: DecodingWeights(model))
        let v = model.config.vocabularySize
        var start = 0, worst: Float = 0
        // Chunks of 5, 1, 2, 3, 4, … rows; before each, a rejected block of garbage is appended and rolled back.
        for (i, size) in [5, 1, 2, 3, 4, 1, 1, 3, 1].enumerated() {
            let garbage = sequence(i % 3 + 1, vocabularySize: v, seed: UInt64(i))
            garbage.withUnsafeBufferPointer { engine.runMain($0, start: start, outputs: $0.count) }
            engine.truncateMain(to: start)
            let chunk = Array(tokens[start..<(start + size)])
            chunk.withUnsafeBufferPointer { engine.runMain($0, start: start, outputs: size) }
            for r in 0..<size {
                worst = Swift.max(worst, maxDifference(engine.logits.pointer + r * v, reference[start + r]))
            }
            start += size
        }
        XCTAssertEqual(start, tokens.count)
        XCTAssertLessThan(worst, 2e-4, "largest logit difference against the full forward")
    }

    func testDepthCachesMatchFullRecomputation() throws {
        let model = try randomGenerationModel(depths: 3, scale: 8)
        let s = 16
        let tokens = sequence(s, vocabularySize: 11, seed: 8)
        let reference = try referenceLogits(model, tokens).depths
        let engine = DecodingEngine(weights: DecodingWeights(model))
        let v = model.config.vocabularySize
        tokens.withUnsafeBufferPointer { engine.runMain($0, start: 0, outputs: s) }
        for k in 0..<3 {
            // Positions 0 ..< s − k − 1 have a next-but-k token; row p reads token p + k + 1.
            let count = s - k - 1
            var start = 0, worst: Float = 0
            for (i, size) in [3, 1, 1, 2, 4, 1, 2, 1, 1].enumerated() where start < count {
                let size = Swift.min(size, count - start)
                // A speculative row with a wrong token, rolled back.
                [Int32((i * 7) % v)].withUnsafeBufferPointer { engine.runDepth(k, tokens: $0, start: start, outputs: 1) }
                engine.truncateDepth(k, to: start)
                let inputs = Array(tokens[(start + k + 1)..<(start + k + 1 + size)])
                inputs.withUnsafeBufferPointer { engine.runDepth(k, tokens: $0, start: start, outputs: size) }
                worst = Swift.max(worst, maxDifference(engine.logits.pointer, reference[k][start + size - 1]))
                start += size
            }
            XCTAssertEqual(start, count)
            XCTAssertLessThan(worst, 2e-4, "depth \(k): largest logit difference against the full MTP forward")
        }
    }

    /// The first position below `count` whose cached key or value bits differ between `a` and `b`.
    private func firstDifference(_ a: KVCache, _ b: KVCache, count: Int) -> Int? {
        func row(_ cache: KVCache, _ p: Int) -> [UInt32] {
            (0..<cache.heads).flatMap { h in (0..<cache.headDimension).map { cache.keys(head: h)[$0 * cache.capacity + p].bitPattern } }
                + (0..<cache.width).map { cache.values[p * cache.width + $0].bitPattern }
        }
        return (0..<count).first { row(a, $0) != row(b, $0) }
    }

    func testCachesAfterSpeculativeDecodingEqualAFreshComputationBitForBit() throws {
        // Steps that accept some drafts and reject others: a depth keeps the rows that read
        // accepted drafts only, and they must hold what the committed tokens give, as must
        // everything else it and the main trunk cached.
        let model = try randomGenerationModel(depths: 3, scale: 8)
        let generator = Generator(model: model)
        var keptDeepRows = 0
        for (temperature, seed) in [(0.0, UInt64(0)), (1.0, 1), (1.0, 2), (1.0, 3)] {
            let prompt: [Int32] = [1, 4, 2, 7]
            let result = try generator.generate(prompt: prompt, options: GenerationOptions(
                maxTokens: 24, temperature: temperature, seed: seed, draftDepths: 3, adaptiveDrafting: false))
            keptDeepRows += result.statistics.accepted[0]
            let sequence = prompt + result.tokens, engine = generator.engine
            let fresh = DecodingEngine(weights: DecodingWeights(model))
            // Only positions whose inputs are among the returned tokens (a last step may overshoot them).
            let mainLength = Swift.min(engine.mainCaches[0].length, sequence.count)
            Array(sequence[0..<mainLength]).withUnsafeBufferPointer { fresh.runMain($0, start: 0, outputs: $0.count) }
            for (l, cache) in engine.mainCaches.enumerated() {
                XCTAssertNil(firstDifference(cache, fresh.mainCaches[l], count: mainLength), "main layer \(l), T = \(temperature)")
            }
            for k in 0..<3 {
                let count = Swift.min(engine.depthCaches[k][0].length, sequence.count - k - 1, mainLength)
                guard count > 0 else { continue }
                Array(sequence[(k + 1)..<(k + 1 + count)]).withUnsafeBufferPointer {
                    fresh.runDepth(k, tokens: $0, start: 0, outputs: $0.count)
                }
                for (i, cache) in engine.depthCaches[k].enumerated() {
                    XCTAssertNil(firstDifference(cache, fresh.depthCaches[k][i], count: count),
                                 "depth \(k) block \(i), T = \(temperature): first differing position")
                }
            }
        }
        XCTAssertGreaterThan(keptDeepRows, 0, "no draft was accepted: the kept rows were not exercised")
    }

    /// Logits of `block` verified at position 7 after `prefix` in one batched forward, and of the
    /// same rows decoded one by one.
    private func verifiedAndSingle(_ model: CausalLM, rows m: Int) -> (verified: [[Float]], single: [[Float]]) {
        let v = model.config.vocabularySize
        let prefix = sequence(7, vocabularySize: v, seed: 1), block = Array(sequence(8, vocabularySize: v, seed: 2).prefix(m))
        let verifier = DecodingEngine(weights: DecodingWeights(model)), single = DecodingEngine(weights: DecodingWeights(model))
        for e in [verifier, single] { prefix.withUnsafeBufferPointer { e.runMain($0, start: 0, outputs: prefix.count) } }
        block.withUnsafeBufferPointer { verifier.runMain($0, start: 7, outputs: m) }
        let verified = (0..<m).map { Array(UnsafeBufferPointer(start: verifier.logits.pointer + $0 * v, count: v)) }
        var alone: [[Float]] = []
        for r in 0..<m {
            [block[r]].withUnsafeBufferPointer { single.runMain($0, start: 7 + r, outputs: 1) }
            alone.append(Array(UnsafeBufferPointer(start: single.logits.pointer, count: v)))
        }
        return (verified, alone)
    }

    func testBatchedVerificationEqualsPlainDecodingBitForBit() throws {
        // On every BLAS and CPU: the few rows of a verification run the batch-invariant kernel.
        reportBLASKernelOnce()
        for (depths, intermediate) in [(3, 24), (2, 40)] {
            let model = try randomGenerationModel(intermediateSize: intermediate, depths: depths, scale: 8)
            for m in 1...Linear.Frozen.kernelRows {
                let (verified, single) = verifiedAndSingle(model, rows: m)
                XCTAssertEqual(verified, single, "\(m) rows, intermediate \(intermediate)")
            }
        }
    }
}
