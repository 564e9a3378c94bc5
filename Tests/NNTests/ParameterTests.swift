// Parameters, names, seeded initialisation and loading.

import NN
import Tensors
import TestSupport
import XCTest

final class ParameterTests: XCTestCase {
    private func block(seed: UInt64) throws -> DecoderBlock {
        var g = SplitMix64(seed: seed)
        return try DecoderBlock(hiddenSize: 8, heads: 2, intermediateSize: 12, generator: &g)
    }

    func testDecoderBlockNamesAreTheHuggingFaceKeys() throws {
        let names = try block(seed: 1).namedParameters().map(\.name)
        XCTAssertEqual(names, [
            "input_layernorm.weight",
            "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
            "post_attention_layernorm.weight",
            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
        ])
        let shapes = try block(seed: 1).namedParameters().map(\.parameter.shape)
        XCTAssertEqual(shapes, [[8], [8, 8], [8, 8], [8, 8], [8, 8], [8], [12, 8], [12, 8], [8, 12]])
        XCTAssertEqual(try block(seed: 1).parameterCount, 8 + 4 * 64 + 8 + 3 * 96)
    }

    func testPrefixedNamesAndBias() {
        var g = SplitMix64(seed: 3)
        let linear = Linear(inFeatures: 3, outFeatures: 2, bias: true, generator: &g)
        XCTAssertEqual(linear.namedParameters(prefix: "model.lm_head").map(\.name), ["model.lm_head.weight", "model.lm_head.bias"])
        XCTAssertEqual(linear.namedParameters(prefix: "").map(\.name), ["weight", "bias"])
        XCTAssertEqual(linear.bias?.value.floats, [0, 0])
    }

    func testTiedWeightsShareOneParameterAndGradient() throws {
        var g = SplitMix64(seed: 4)
        let embedding = Embedding(vocabularySize: 5, dimension: 3, generator: &g)
        let head = try Linear(weight: embedding.weight)
        XCTAssertEqual(head.inFeatures, 3)
        XCTAssertEqual(head.outFeatures, 5)
        let ids = intTensor([1, 4], [2])
        try head(embedding(ids)).sum().backward()
        // Both uses add into the one gradient.
        let w = doubles(embedding.weight.value), colSums = (0..<3).map { j in (0..<5).map { w[$0 * 3 + j] }.reduce(0, +) }
        var expected = [Double](repeating: 0, count: 15)
        for i in 0..<5 { for j in 0..<3 { expected[i * 3 + j] = w[1 * 3 + j] + w[4 * 3 + j] } }
        for id in [1, 4] { for j in 0..<3 { expected[id * 3 + j] += colSums[j] } }
        assertClose(embedding.weight.grad!, expected, rtol: 1e-5, atol: 1e-7)
        XCTAssertThrowsError(try Linear(weight: Parameter(Tensor.zeros([3]))))
        XCTAssertThrowsError(try Linear(weight: embedding.weight, bias: Parameter(Tensor.zeros([3]))))
        XCTAssertThrowsError(try Embedding(weight: Parameter(Tensor.zeros([2, 0]))))
    }

    func testSeededInitialisationIsDeterministic() throws {
        let a = try block(seed: 42), b = try block(seed: 42), c = try block(seed: 43)
        for ((name, p), (_, q)) in zip(a.namedParameters(), b.namedParameters()) {
            XCTAssertEqual(p.value.floats, q.value.floats, name)
        }
        XCTAssertNotEqual(a.selfAttn.qProj.weight.value.floats, c.selfAttn.qProj.weight.value.floats)
        // Each projection draws its own numbers from the shared generator.
        XCTAssertNotEqual(a.selfAttn.qProj.weight.value.floats, a.selfAttn.kProj.weight.value.floats)
    }

    func testInitialisationDistributions() throws {
        var g = SplitMix64(seed: 9)
        let linear = Linear(inFeatures: 64, outFeatures: 64, generator: &g)
        let w = doubles(linear.weight.value)
        let mean = w.reduce(0, +) / Double(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.002)
        XCTAssertEqual(std, 0.02, accuracy: 0.001)
        let embedding = Embedding(vocabularySize: 50, dimension: 40, std: 0.5, generator: &g)
        let e = doubles(embedding.weight.value)
        XCTAssertEqual((e.map { $0 * $0 }.reduce(0, +) / Double(e.count)).squareRoot(), 0.5, accuracy: 0.03)
        XCTAssertEqual(try block(seed: 1).inputLayernorm.weight.value.floats, [Float](repeating: 1, count: 8))
    }

    func testAssignedValuesBecomeFreshLeaves() throws {
        let p = Parameter(try Tensor([1, 2, 3] as [Float], shape: [3]))
        XCTAssertTrue(p.value.requiresGrad && p.value.isLeaf)
        try (p.value * p.value).sum().backward()
        XCTAssertEqual(p.grad?.floats, [2, 4, 6])
        p.zeroGrad()
        XCTAssertNil(p.grad)
        // An update computed with or without recording is stored as a new leaf.
        p.value = withoutGrad { p.value - 1 }
        XCTAssertTrue(p.value.requiresGrad && p.value.isLeaf)
        p.value = p.value * 2
        XCTAssertTrue(p.value.requiresGrad && p.value.isLeaf)
        XCTAssertEqual(p.value.floats, [0, 2, 4])
    }

    func testLoadParametersRoundTripsAndChecksEveryKey() throws {
        let a = try block(seed: 5), b = try block(seed: 6)
        var tensors: [String: Tensor] = [:]
        for (k, v) in a.parameterTensors() { tensors["model.layers.0." + k] = v }
        try b.loadParameters(tensors, prefix: "model.layers.0")
        for ((name, p), (_, q)) in zip(a.namedParameters(), b.namedParameters()) {
            XCTAssertEqual(p.value.floats, q.value.floats, name)
            XCTAssertTrue(q.value.requiresGrad, name)
        }

        let c = try block(seed: 7), before = c.selfAttn.qProj.weight.value.floats
        var missing = a.parameterTensors()
        missing["mlp.down_proj.weight"] = nil
        XCTAssertThrowsError(try c.loadParameters(missing)) { error in
            XCTAssertTrue("\(error)".contains("mlp.down_proj.weight"), "\(error)")
        }
        var wrong = a.parameterTensors()
        wrong["self_attn.o_proj.weight"] = Tensor.zeros([8, 4])
        XCTAssertThrowsError(try c.loadParameters(wrong)) { error in
            XCTAssertTrue("\(error)".contains("self_attn.o_proj.weight"), "\(error)")
        }
        // A failed load changes nothing.
        XCTAssertEqual(c.selfAttn.qProj.weight.value.floats, before)
    }

    func testZeroGradClearsEveryParameter() throws {
        let b = try block(seed: 8)
        let x = randomTensor([1, 3, 8], seed: 2)
        try b(x, positions: positionIDs(batch: 1, length: 3)).sum().backward()
        XCTAssertTrue(b.parameters.allSatisfy { $0.grad != nil })
        b.zeroGrad()
        XCTAssertTrue(b.parameters.allSatisfy { $0.grad == nil })
    }

    func testInvalidConfigurationsThrow() {
        var g = SplitMix64(seed: 1)
        XCTAssertThrowsError(try Attention(hiddenSize: 10, heads: 3, generator: &g))
        XCTAssertThrowsError(try Attention(hiddenSize: 6, heads: 2, generator: &g))  // odd head dimension
        XCTAssertThrowsError(try DecoderBlock(hiddenSize: 8, heads: 2, intermediateSize: 0, generator: &g))
        XCTAssertThrowsError(try RotaryEmbedding(headDimension: 4, base: 0))
    }
}
