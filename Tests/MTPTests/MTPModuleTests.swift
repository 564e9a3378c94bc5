// SPEC §5: the MTP module rolls ids and positions cumulatively, and its input
// modes agree.

import MTP
import NN
import Tensors
import XCTest

final class MTPModuleTests: XCTestCase {
    func testTokenIDsModeEqualsHandRolledShiftedIDs() throws {
        var g = SplitMix64(seed: 4)
        let config = MTPConfig(numLayers: 2, layerPattern: "*", lossScalingFactor: 0.1)
        let module = try MTPModule(config: config, hiddenSize: 8, heads: 2, intermediateSize: 16, generator: &g)
        let embedding = Embedding(vocabularySize: 10, dimension: 8, generator: &g)
        let ids = try Tensor([3, 1, 4, 1, 5, 9] as [Int64], shape: [1, 6])
        let positions = try Tensor([0, 1, 2, 3, 4, 5] as [Int64], shape: [1, 6])
        let seq = try Tensor([0, 0, 0, 0, 0, 0] as [Int64], shape: [1, 6])
        let hidden = Tensor.normal([1, 6, 8], seed: 5)
        let viaIDs = try module(hidden: hidden, input: .tokenIDs(ids, embed: { try embedding($0) }), positions: positions, seqIdx: seq)
        // Worked by hand: depth 0 sees token t+1, depth 1 token t+2, zero-filled at the end.
        let depth0 = try Tensor([1, 4, 1, 5, 9, 0] as [Int64], shape: [1, 6])
        let depth1 = try Tensor([4, 1, 5, 9, 0, 0] as [Int64], shape: [1, 6])
        let viaShifted = try module(hidden: hidden, input: .shiftedIDs([depth0, depth1], embed: { try embedding($0) }),
                                    positions: positions, seqIdx: seq)
        let viaEmbeddings = try module(hidden: hidden, input: .embeddings([embedding(depth0), embedding(depth1)]),
                                       positions: positions, seqIdx: seq)
        XCTAssertEqual(viaIDs.count, 2)
        for k in 0..<2 {
            XCTAssertEqual(viaIDs[k].shape, [1, 6, 8])
            XCTAssertEqual(viaIDs[k].floats, viaShifted[k].floats)
            XCTAssertEqual(viaIDs[k].floats, viaEmbeddings[k].floats)
        }
        XCTAssertThrowsError(try module(hidden: hidden, input: .embeddings([embedding(depth0)]), positions: positions, seqIdx: seq))
    }

    func testDepthOutputsAtAPositionIgnoreLaterTokens() throws {
        // Depth k at position t may depend on tokens up to t+k+1 only.
        var g = SplitMix64(seed: 8)
        let module = try MTPModule(config: MTPConfig(numLayers: 2, layerPattern: "*"), hiddenSize: 8, heads: 2,
                                   intermediateSize: 16, generator: &g)
        let embedding = Embedding(vocabularySize: 10, dimension: 8, generator: &g)
        let positions = try Tensor([0, 1, 2, 3, 4, 5, 6, 7] as [Int64], shape: [1, 8])
        let hidden = Tensor.normal([1, 8, 8], seed: 2)
        let a = try Tensor([1, 2, 3, 4, 5, 6, 7, 8] as [Int64], shape: [1, 8])
        let b = try Tensor([1, 2, 3, 4, 5, 6, 7, 0] as [Int64], shape: [1, 8])  // token 7 changed
        let outA = try module(hidden: hidden, input: .tokenIDs(a, embed: { try embedding($0) }), positions: positions, seqIdx: nil)
        let outB = try module(hidden: hidden, input: .tokenIDs(b, embed: { try embedding($0) }), positions: positions, seqIdx: nil)
        for k in 0..<2 {
            let last = 7 - (k + 1)  // the first position that sees token 7
            let fa = outA[k].floats, fb = outB[k].floats
            XCTAssertEqual(Array(fa[0..<(last * 8)]), Array(fb[0..<(last * 8)]), "depth \(k) before \(last)")
            XCTAssertNotEqual(Array(fa[(last * 8)..<(last * 8 + 8)]), Array(fb[(last * 8)..<(last * 8 + 8)]))
        }
    }

    /// Blocks recomputed in the backward pass give the gradients of kept activations bit for
    /// bit, also when one physical depth (two blocks) serves every depth.
    func testRecomputedBlocksGiveTheSameGradientBits() throws {
        for config in [MTPConfig(numLayers: 2, layerPattern: "*"), MTPConfig(numLayers: 3, layerPattern: "**", useRepeatedLayer: true)] {
            func gradients(recompute: Bool) throws -> [[Float]] {
                var g = SplitMix64(seed: 12)
                let module = try MTPModule(config: config, hiddenSize: 8, heads: 2, intermediateSize: 16, generator: &g)
                let embedding = Embedding(vocabularySize: 10, dimension: 8, generator: &g)
                for block in module.depths.flatMap(\.blocks) { block.recomputesInBackward = recompute }
                let hidden = Tensor.normal([2, 6, 8], seed: 13).requiringGrad()
                let ids = try Tensor((0..<12).map { Int64($0 * 7 % 10) }, shape: [2, 6])
                let positions = try Tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 4, 5] as [Int64], shape: [2, 6])
                let seq = try Tensor([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0] as [Int64], shape: [2, 6])
                let outputs = try module(hidden: hidden, input: .tokenIDs(ids, embed: { try embedding($0) }), positions: positions,
                                         seqIdx: seq)
                var loss = try (hidden * hidden).sum()
                for (k, o) in outputs.enumerated() { loss = try loss + (o * o).sum() * Double(k + 1) }
                try loss.backward()
                return try [hidden.grad!.floats, embedding.weight.grad!.floats]
                    + module.parameters.map { try XCTUnwrap($0.grad).floats }
            }
            XCTAssertEqual(try gradients(recompute: false), try gradients(recompute: true), "\(config)")
        }
    }

    func testParameterNamesOfTheSublayers() throws {
        var g = SplitMix64(seed: 1)
        let module = try MTPModule(config: MTPConfig(numLayers: 2, layerPattern: "**"), hiddenSize: 8, heads: 2,
                                   intermediateSize: 16, generator: &g)
        let names = Set(module.namedParameters().map(\.name))
        // 2 depths × 2 sublayers: the first of a depth owns the fusion, the last the final norm.
        for key in ["layers.0.enorm.weight", "layers.0.hnorm.weight", "layers.0.eh_proj.weight", "layers.1.final_layernorm.weight",
                    "layers.2.enorm.weight", "layers.3.final_layernorm.weight", "layers.1.self_attn.q_proj.weight"] {
            XCTAssertTrue(names.contains(key), key)
        }
        XCTAssertFalse(names.contains("layers.1.enorm.weight"))
        XCTAssertFalse(names.contains("layers.0.final_layernorm.weight"))
        // The full order: depth by depth, the fusion first, the final norm last.
        let block = { (i: Int) in
            ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
             "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"].map { "layers.\(i).\($0).weight" }
        }
        let depth = { (first: Int) in
            ["layers.\(first).enorm.weight", "layers.\(first).hnorm.weight", "layers.\(first).eh_proj.weight"]
                + block(first) + block(first + 1) + ["layers.\(first + 1).final_layernorm.weight"]
        }
        XCTAssertEqual(module.namedParameters().map(\.name), depth(0) + depth(2))
        XCTAssertEqual(module.depths[1].namedParameters(prefix: "x").map(\.name).first, "x.0.enorm.weight",
                       "a depth alone numbers its sublayers from 0")
        let repeated = try MTPModule(config: MTPConfig(numLayers: 3, layerPattern: "*", useRepeatedLayer: true), hiddenSize: 8,
                                     heads: 2, intermediateSize: 16, generator: &g)
        XCTAssertEqual(repeated.depths.count, 1)
        XCTAssertEqual(repeated.namedParameters().map(\.name).last, "layers.0.final_layernorm.weight",
                       "one physical depth: one set of names")
        XCTAssertThrowsError(try MTPModule(config: MTPConfig(numLayers: 0, layerPattern: "*"), hiddenSize: 8, heads: 2,
                                           intermediateSize: 16, generator: &g))
    }
}
