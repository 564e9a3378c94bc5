// The decoding engine's KV caches against a full recomputation through the model's
// training forward (main trunk and every MTP depth, with rolled-back positions), and
// batched verification rows bit-identical to plain decoding on every BLAS (what greedy
// identity rests on; the kernel's own row test is in NNTests).
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
