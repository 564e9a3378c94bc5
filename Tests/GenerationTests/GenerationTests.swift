// Speculative decoding with the MTP heads against plain decoding: greedy output is
// identical token for token on several prompts and depth counts (random models, which
// reject most drafts, and a briefly trained one, which accepts most), the counters add
// up, and bad input throws. Also the shared model fixtures of the Generation*Tests files.

import Data
import Model
import Training
import Foundation
import MTP
import NN
import Tensors
@testable import Generation
import TrainingTestSupport
import XCTest

// MARK: - Fixtures

/// A random model; `scale` multiplies every weight, so logits spread (the initial std of
/// 0.02 gives nearly uniform distributions) and drafts disagree with the main model.
func randomGenerationModel(vocabularySize: Int = 11, hiddenSize: Int = 16, layers: Int = 2, heads: Int = 2,
                           intermediateSize: Int = 24, depths: Int = 3, seed: UInt64 = 1, scale: Float = 1) throws -> CausalLM {
    let model = try CausalLM(config: ModelConfig(vocabularySize: vocabularySize, hiddenSize: hiddenSize, layers: layers,
                                                 heads: heads, intermediateSize: intermediateSize, mtpDepths: depths),
                             seed: seed)
    if scale != 1 {
        withoutGrad {
            for (name, p) in model.namedParameters() where !name.hasSuffix("norm.weight") {
                p.value = p.value * Double(scale)
            }
        }
    }
    return model
}

/// A tiny model trained for a few seconds on the built-in corpus (V = 24, D = 2), shared by the tests.
// Read only from XCTest's one test thread.
nonisolated(unsafe) let briefTrainedGenerationModel: Result<CausalLM, Error> = Result {
    let o = tinyTrainingOptions(mtpScale: 0.5, steps: 60, sequenceLength: 48, learningRate: 2e-2, warmup: 3, seed: 5)
    let split = try tinyCorpusSplit(corpusSeed: o.seed, documents: 200, documentSeed: 6)
    let trainer = try Trainer(options: o, train: split.train, heldOut: split.heldOut)
    for _ in 0..<o.steps { try trainer.trainStep() }
    return trainer.model
}

/// Reference logits by full recomputation through the model's layers (no cache):
/// `main[p]` predicts token p + 1, `depths[k][p]` (p + k + 1 < S) predicts token p + k + 2.
func referenceLogits(_ model: CausalLM, _ tokens: [Int32]) throws -> (main: [[Float]], depths: [[[Float]]]) {
    try withoutGrad {
        let s = tokens.count, v = model.config.vocabularySize
        let ids = try Tensor(tokens.map(Int64.init), shape: [1, s])
        let positions = try Tensor((0..<s).map(Int64.init), shape: [1, s])
        let hidden = try model.trunk(ids, positions: positions, seqIdx: nil)
        func rows(_ h: Tensor) throws -> [[Float]] {
            let f = try model.lmHead(h).floats
            return (0..<s).map { Array(f[$0 * v..<($0 + 1) * v]) }
        }
        var depths: [[[Float]]] = []
        if let mtp = model.mtp {
            let outs = try mtp(hidden: hidden, input: .tokenIDs(ids, embed: { try model.embedTokens($0) }),
                               positions: positions, seqIdx: nil)
            depths = try outs.map(rows)
        }
        return (try rows(hidden), depths)
    }
}

/// Prompts of ids in 0 ..< v with lengths 1, 2, 5 and 9.
func generationPrompts(vocabularySize v: Int, seed: UInt64 = 4) -> [[Int32]] {
    var g = SplitMix64(seed: seed)
    return [1, 2, 5, 9].map { n in (0..<n).map { _ in Int32(g.next() % UInt64(v)) } }
}

// MARK: - Tests

final class GenerationTests: XCTestCase {
    func testGreedySpeculativeOutputIsIdenticalOnRandomModels() throws {
        for (seed, scale) in [(UInt64(1), Float(1)), (2, 8), (3, 30)] {
            let model = try randomGenerationModel(seed: seed, scale: scale)
            let generator = Generator(model: model)
            var rejected = 0
            for prompt in generationPrompts(vocabularySize: 11, seed: seed) {
                let plain = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 23))
                XCTAssertEqual(plain.tokens.count, 23)
                XCTAssertEqual(plain.statistics.mainForwards, 23)
                for depths in 1...3 {
                    let adaptive = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 23, draftDepths: depths))
                    XCTAssertEqual(adaptive.tokens, plain.tokens, "adaptive: seed \(seed) scale \(scale) prompt \(prompt) depths \(depths)")
                    let fast = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 23, draftDepths: depths,
                                                                                                adaptiveDrafting: false))
                    XCTAssertEqual(fast.tokens, plain.tokens, "seed \(seed) scale \(scale) prompt \(prompt) depths \(depths)")
                    let s = fast.statistics
                    rejected += s.drafted[0] - s.accepted[0]
                    XCTAssertEqual(s.mainForwards, s.verifications + 1)
                    // Every verification yields 1 + accepted tokens; the first token comes from the prompt's forward.
                    XCTAssertEqual(s.verifiedTokens, s.verifications + s.accepted.reduce(0, +))
                    XCTAssertGreaterThanOrEqual(s.verifiedTokens + 1, 23)
                    XCTAssertLessThan(s.verifiedTokens + 1 - (depths + 1), 23)
                    XCTAssertEqual(s.drafted[0], s.verifications)
                    for k in 1..<depths { XCTAssertEqual(s.drafted[k], s.accepted[k - 1]) }
                }
            }
            XCTAssertGreaterThan(rejected, 0, "seed \(seed): the rejection path was never taken")
        }
    }

    func testGreedySpeculativeOutputIsIdenticalOnATrainedModel() throws {
        let model = try briefTrainedGenerationModel.get()
        let generator = Generator(model: model)
        let corpus = try SyntheticCorpus(vocabularySize: 24, seed: 5)
        var accepted = [0, 0], drafted = [0, 0]
        for doc in try corpus.documents(count: 6, seed: 77) {
            let prompt = Array(doc.prefix(6))
            let plain = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 30))
            for depths in 1...2 {
                let adaptive = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 30, draftDepths: depths))
                XCTAssertEqual(adaptive.tokens, plain.tokens, "adaptive: prompt \(prompt) depths \(depths)")
                let fast = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 30, draftDepths: depths,
                                                                                            adaptiveDrafting: false))
                XCTAssertEqual(fast.tokens, plain.tokens, "prompt \(prompt) depths \(depths)")
                if depths == 2 {
                    for k in 0..<2 { accepted[k] += fast.statistics.accepted[k]; drafted[k] += fast.statistics.drafted[k] }
                }
            }
        }
        // A trained depth agrees with the main model most of the time: the accept path is exercised.
        XCTAssertGreaterThan(Double(accepted[0]) / Double(drafted[0]), 0.5, "depth 0: \(accepted[0])/\(drafted[0])")
        XCTAssertGreaterThan(accepted[1], 0)
    }

    func testGenerationIsDeterministicAndReusesTheGenerator() throws {
        let generator = Generator(model: try randomGenerationModel(scale: 8))
        let o = GenerationOptions(maxTokens: 17, temperature: 0.9, topP: 0.9, seed: 11, draftDepths: 2)
        let a = try generator.generate(prompt: [1, 2, 3], options: o)
        _ = try generator.generate(prompt: [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4], options: GenerationOptions(maxTokens: 40))
        let b = try generator.generate(prompt: [1, 2, 3], options: o)
        XCTAssertEqual(a.tokens, b.tokens)
        XCTAssertEqual(a.statistics.accepted, b.statistics.accepted)
    }

    func testTheGeneratorIsASnapshotOfTheModel() throws {
        let model = try randomGenerationModel(scale: 8)
        let generator = Generator(model: model)
        let before = try generator.generate(prompt: [3, 1], options: GenerationOptions(maxTokens: 12))
        withoutGrad { for p in model.parameters { p.value = p.value * 0.0 } }
        XCTAssertEqual(try generator.generate(prompt: [3, 1], options: GenerationOptions(maxTokens: 12)).tokens, before.tokens)
    }

    func testZeroTokensAndPlainStatistics() throws {
        let generator = Generator(model: try randomGenerationModel())
        let none = try generator.generate(prompt: [1], options: GenerationOptions(maxTokens: 0, draftDepths: 2))
        XCTAssertEqual(none.tokens, [])
        XCTAssertEqual(none.statistics.mainForwards, 0)
        let one = try generator.generate(prompt: [1], options: GenerationOptions(maxTokens: 1, draftDepths: 2))
        XCTAssertEqual(one.tokens.count, 1)
        XCTAssertEqual(one.statistics.verifications, 0)
        XCTAssertEqual(one.statistics.tokensPerForward, 1)
        XCTAssertTrue(one.statistics.acceptance.allSatisfy(\.isNaN))
    }

    func testInvalidInputThrowsNamingTheValue() throws {
        let generator = Generator(model: try randomGenerationModel(depths: 2))
        func message(_ prompt: [Int32], _ o: GenerationOptions) -> String {
            do {
                _ = try generator.generate(prompt: prompt, options: o)
                return "no error"
            } catch let e as GenerationError {
                return e.message
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message([], GenerationOptions()).contains("empty"))
        XCTAssertTrue(message([1, 11], GenerationOptions()).contains("11"))
        XCTAssertTrue(message([1, -2], GenerationOptions()).contains("-2"))
        XCTAssertTrue(message([1], GenerationOptions(maxTokens: -1)).contains("-1"))
        XCTAssertTrue(message([1], GenerationOptions(temperature: -0.5)).contains("-0.5"))
        XCTAssertTrue(message([1], GenerationOptions(temperature: .nan)).contains("nan"))
        XCTAssertTrue(message([1], GenerationOptions(topP: 0)).contains("0"))
        XCTAssertTrue(message([1], GenerationOptions(topP: 1.5)).contains("1.5"))
        XCTAssertTrue(message([1], GenerationOptions(draftDepths: 3)).contains("0...2"))
        XCTAssertThrowsError(try generator.compare(prompt: [1], options: GenerationOptions(), repeats: 1))
        XCTAssertThrowsError(try generator.compare(prompt: [1], options: GenerationOptions(draftDepths: 1), repeats: 0))
        let noMTP = Generator(model: try randomGenerationModel(depths: 0))
        XCTAssertEqual(noMTP.maximumDraftDepths, 0)
        XCTAssertThrowsError(try noMTP.generate(prompt: [1], options: GenerationOptions(draftDepths: 1)))
    }

    func testComparisonReportsIdenticalOutputAndTimes() throws {
        let generator = Generator(model: try randomGenerationModel(scale: 8))
        let c = try generator.compare(prompt: [2, 7, 1], options: GenerationOptions(maxTokens: 15, draftDepths: 2), repeats: 2)
        XCTAssertTrue(c.identical)
        XCTAssertEqual(c.plainTokens, c.speculativeTokens)
        XCTAssertGreaterThan(c.plainSeconds, 0)
        XCTAssertGreaterThan(c.speculativeSeconds, 0)
        let twice = c.merged(with: c)
        XCTAssertEqual(twice.prompts, 2)
        XCTAssertEqual(twice.statistics.verifications, 2 * c.statistics.verifications)
        XCTAssertEqual(twice.speedup, c.speedup, accuracy: 1e-12)
    }

    func testCheckpointLoadsTheSameModel() throws {
        var o = TrainingOptions(model: ModelConfig(vocabularySize: 24, hiddenSize: 16, layers: 1, heads: 2,
                                                   intermediateSize: 32, mtpDepths: 2))
        o.steps = 1
        o.batchSize = 2
        o.sequenceLength = 32
        o.evalEvery = 1000
        let corpus = try SyntheticCorpus(vocabularySize: 24, seed: 0)
        let split = try DocumentSplit(try corpus.documents(count: 40, seed: 1), heldOutFraction: 0.1, seed: 2)
        let trainer = try Trainer(options: o, train: split.train, heldOut: split.heldOut)
        try trainer.trainStep()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("generation-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try trainer.saveCheckpoint(to: url)
        let (loaded, options) = try Trainer.loadModel(checkpoint: url)
        XCTAssertEqual(options, o)
        let prompt: [Int32] = [0, 8, 20]
        XCTAssertEqual(try Generator(model: loaded).generate(prompt: prompt, options: GenerationOptions(maxTokens: 10)).tokens,
                       try Generator(model: trainer.model).generate(prompt: prompt, options: GenerationOptions(maxTokens: 10)).tokens)
        let bogus = FileManager.default.temporaryDirectory.appendingPathComponent("generation-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: bogus) }
        try SafeTensors.write(["x": Tensor.zeros([1])], metadata: [:], to: bogus)
        XCTAssertThrowsError(try CausalLM.load(checkpoint: bogus))
    }
}
