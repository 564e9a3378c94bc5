// The fused attention node: values against a float64 softmax loop, and its
// hand-written backward against finite differences, with and without documents.

import NN
import Tensors
import TestSupport
import XCTest

final class ScaledDotProductAttentionTests: XCTestCase {
    private let (b, n, s, d) = (2, 2, 6, 4)
    private var q: Tensor { randomTensor([b, n, s, d], -2, 2, seed: 51) }
    private var k: Tensor { randomTensor([b, n, s, d], -2, 2, seed: 52) }
    private var v: Tensor { randomTensor([b, n, s, d], seed: 53) }
    /// Row 0: three documents; row 1: non-contiguous ids (a token sees earlier tokens of its id).
    private let documents = [0, 0, 1, 1, 1, 2, 4, 7, 4, 7, 7, 4]

    private func reference(_ seqIdx: [Int]?) -> [Double] {
        Naive.attention(doubles(q), doubles(k), doubles(v), batch: b, heads: n, length: s, dim: d, seqIdx: seqIdx)
    }

    func testCausalValuesMatchNaiveReference() throws {
        assertClose(try scaledDotProductAttention(q, k, v), reference(nil), rtol: 1e-5, atol: 1e-6)
        // Without a mask, the first token only sees itself.
        let y = try scaledDotProductAttention(q, k, v)
        XCTAssertEqual(Array(y.floats[0..<d]), Array(v.floats[0..<d]))
    }

    func testDocumentMaskedValuesMatchNaiveReference() throws {
        let y = try scaledDotProductAttention(q, k, v, seqIdx: intTensor(documents, [b, s]))
        assertClose(y, reference(documents), rtol: 1e-5, atol: 1e-6)
        // One row of ids may serve the whole batch.
        let shared = [0, 0, 0, 1, 1, 1]
        assertClose(try scaledDotProductAttention(q, k, v, seqIdx: intTensor(shared, [1, s])),
                    reference(shared + shared), rtol: 1e-5, atol: 1e-6)
    }

    func testGradientsWithAndWithoutDocumentMask() throws {
        XCTAssertNil(try gradientCheck([q, k, v]) { try scaledDotProductAttention($0[0], $0[1], $0[2]) })
        let seqIdx = intTensor(documents, [b, s])
        XCTAssertNil(try gradientCheck([q, k, v], seed: 7) { try scaledDotProductAttention($0[0], $0[1], $0[2], seqIdx: seqIdx) })
    }

    func testLengthsAroundTheSIMDWidth() throws {
        for length in [1, 7, 8, 9, 17] {
            let q = randomTensor([1, 1, length, 8], -2, 2, seed: 54), k = randomTensor([1, 1, length, 8], -2, 2, seed: 55)
            let v = randomTensor([1, 1, length, 8], seed: 56)
            let ids = (0..<length).map { $0 / 5 }
            let y = try scaledDotProductAttention(q, k, v, seqIdx: intTensor(ids, [1, length]))
            assertClose(y, Naive.attention(doubles(q), doubles(k), doubles(v), batch: 1, heads: 1, length: length, dim: 8, seqIdx: ids),
                        rtol: 1e-5, atol: 1e-6)
        }
    }

    func testLargeScoresStayStable() throws {
        // Scores of several hundred: the softmax subtracts the row maximum first.
        let q = randomTensor([1, 2, 9, 8], -12, 12, seed: 57), k = randomTensor([1, 2, 9, 8], -12, 12, seed: 58)
        let v = randomTensor([1, 2, 9, 8], seed: 59)
        let y = try scaledDotProductAttention(q, k, v)
        XCTAssertTrue(y.floats.allSatisfy(\.isFinite))
        assertClose(y, Naive.attention(doubles(q), doubles(k), doubles(v), batch: 1, heads: 2, length: 9, dim: 8, seqIdx: nil),
                    rtol: 1e-4, atol: 1e-5)
    }

    func testShapeErrors() {
        XCTAssertThrowsError(try scaledDotProductAttention(q, k, Tensor.zeros([b, n, s, d + 1])))
        XCTAssertThrowsError(try scaledDotProductAttention(q, k, v, seqIdx: intTensor([0, 0], [1, 2])))
        XCTAssertThrowsError(try scaledDotProductAttention(q, k, v, seqIdx: Tensor.zeros([b, s])))
        XCTAssertThrowsError(try scaledDotProductAttention(Tensor.zeros([s, d]), Tensor.zeros([s, d]), Tensor.zeros([s, d])))
    }
}
