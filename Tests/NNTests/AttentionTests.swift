// The Attention layer: values against a float64 composition of its parts,
// gradients of input and projections, and the document and causal masks.

import NN
import Tensors
import TestSupport
import XCTest

final class AttentionTests: XCTestCase {
    private func layer(seed: UInt64 = 61, hidden: Int = 8, heads: Int = 2) throws -> Attention {
        var g = SplitMix64(seed: seed)
        return try Attention(hiddenSize: hidden, heads: heads, std: 0.5, generator: &g)
    }

    func testValuesMatchNaiveReference() throws {
        let attn = try layer()
        let x = randomTensor([2, 5, 8], seed: 62)
        let positions = [0, 1, 2, 0, 1, 7, 8, 9, 10, 11]
        let seqIdx = [0, 0, 0, 1, 1, 3, 3, 3, 3, 3]
        let y = try attn(x, positions: intTensor(positions, [2, 5]), seqIdx: intTensor(seqIdx, [2, 5]))
        XCTAssertEqual(y.shape, [2, 5, 8])
        assertClose(y, Naive.attentionLayer(doubles(x), attn, batch: 2, length: 5, positions: positions, seqIdx: seqIdx),
                    rtol: 1e-4, atol: 1e-5)
        let causal = try attn(x, positions: positionIDs(batch: 2, length: 5))
        assertClose(causal, Naive.attentionLayer(doubles(x), attn, batch: 2, length: 5, positions: [0, 1, 2, 3, 4], seqIdx: nil),
                    rtol: 1e-4, atol: 1e-5)
    }

    func testGradientsWithRespectToInputAndProjections() throws {
        let attn = try layer(hidden: 8, heads: 2)
        let x = randomTensor([2, 4, 8], seed: 63)
        let positions = intTensor([0, 1, 2, 3, 5, 6, 0, 1], [2, 4])
        let seqIdx = intTensor([0, 0, 1, 1, 2, 2, 3, 3], [2, 4])
        XCTAssertNil(try layerGradientCheck([x], parameters: attn.parameters) {
            try attn($0[0], positions: positions, seqIdx: seqIdx)
        })
        XCTAssertNil(try layerGradientCheck([x], parameters: attn.parameters, seed: 3) {
            try attn($0[0], positions: positions)
        })
    }

    func testChangingOneDocumentLeavesTheOtherUnchanged() throws {
        let attn = try layer(seed: 64, hidden: 16, heads: 4)
        let seqIdx = intTensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], [1, 10])
        let positions = intTensor([0, 1, 2, 3, 0, 1, 2, 3, 4, 5], [1, 10])
        let x = randomTensor([1, 10, 16], seed: 65)
        let y = try attn(x, positions: positions, seqIdx: seqIdx)
        // New tokens for document 0 (positions 0..<4): document 1's outputs do not move.
        let x1 = try Tensor.concatenated([randomTensor([1, 4, 16], seed: 66), x.sliced(axis: 1, 4..<10)], axis: 1)
        let y1 = try attn(x1, positions: positions, seqIdx: seqIdx)
        XCTAssertEqual(tokens(y1, batch: 0, 4..<10), tokens(y, batch: 0, 4..<10))
        XCTAssertNotEqual(tokens(y1, batch: 0, 0..<4), tokens(y, batch: 0, 0..<4))
        // New tokens for document 1: document 0's outputs do not move.
        let x2 = try Tensor.concatenated([x.sliced(axis: 1, 0..<4), randomTensor([1, 6, 16], seed: 67)], axis: 1)
        let y2 = try attn(x2, positions: positions, seqIdx: seqIdx)
        XCTAssertEqual(tokens(y2, batch: 0, 0..<4), tokens(y, batch: 0, 0..<4))
        XCTAssertNotEqual(tokens(y2, batch: 0, 4..<10), tokens(y, batch: 0, 4..<10))
        // Without the mask document 1 sees document 0: the mask is what isolates it.
        let open = try attn(x, positions: positions), open1 = try attn(x1, positions: positions)
        XCTAssertNotEqual(tokens(open1, batch: 0, 4..<10), tokens(open, batch: 0, 4..<10))
    }

    func testNoCausalLeakage() throws {
        let attn = try layer(seed: 68, hidden: 8, heads: 2)
        let x = randomTensor([2, 7, 8], seed: 69)
        let positions = positionIDs(batch: 2, length: 7)
        let y = try attn(x, positions: positions)
        for t in [0, 3, 6] {
            // Change token t of row 1 only.
            var values = x.floats
            for j in 0..<8 { values[(7 + t) * 8 + j] += 1 }
            let yt = try attn(try Tensor(values, shape: [2, 7, 8]), positions: positions)
            XCTAssertEqual(tokens(yt, batch: 1, 0..<t), tokens(y, batch: 1, 0..<t), "token \(t)")
            XCTAssertNotEqual(tokens(yt, batch: 1, t..<7), tokens(y, batch: 1, t..<7), "token \(t)")
            XCTAssertEqual(tokens(yt, batch: 0, 0..<7), tokens(y, batch: 0, 0..<7), "token \(t)")
        }
    }

    func testShapeErrors() throws {
        let attn = try layer()
        XCTAssertThrowsError(try attn(Tensor.zeros([2, 3, 6]), positions: positionIDs(batch: 2, length: 3)))
        XCTAssertThrowsError(try attn(Tensor.zeros([2, 3, 8]), positions: positionIDs(batch: 2, length: 4)))
        XCTAssertThrowsError(try attn(Tensor.zeros([2, 3, 8]), positions: positionIDs(batch: 2, length: 3),
                                      seqIdx: intTensor([0, 0, 0], [3, 1])))
    }
}
