// Grouped-query attention (g key/value heads shared by n/g query heads each): the fused
// node equals plain attention on repeated key/value heads, its backward sums the group's
// gradients (finite differences), and decoding against a g-head cache equals the
// training forward.

import NN
import Tensors
import TestSupport
import XCTest

final class GroupedQueryAttentionTests: XCTestCase {
    private let (b, n, s, d) = (2, 4, 5, 4)

    /// `[B, g, S, d]` → `[B, n, S, d]`, query head h reading key/value head h / (n/g).
    private func repeated(_ t: Tensor, heads: Int) throws -> Tensor {
        let (bb, g, ss, dd) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        let v = t.floats, group = heads / g
        var out: [Float] = []
        for bi in 0..<bb {
            for h in 0..<heads {
                let base = (bi * g + h / group) * ss * dd
                out += v[base..<(base + ss * dd)]
            }
        }
        return try Tensor(out, shape: [bb, heads, ss, dd])
    }

    func testValuesEqualAttentionOnRepeatedHeads() throws {
        let q = randomTensor([b, n, s, d], -2, 2, seed: 1)
        for g in [1, 2] {
            let k = randomTensor([b, g, s, d], -2, 2, seed: 2), v = randomTensor([b, g, s, d], seed: 3)
            let grouped = try scaledDotProductAttention(q, k, v, seqIdx: intTensor([0, 0, 1, 1, 1], [1, s]))
            let plain = try scaledDotProductAttention(q, repeated(k, heads: n), repeated(v, heads: n),
                                                      seqIdx: intTensor([0, 0, 1, 1, 1], [1, s]))
            XCTAssertEqual(grouped.floats, plain.floats, "g = \(g)")
        }
    }

    func testGradientsSumOverTheGroup() throws {
        let q = randomTensor([b, n, s, d], -2, 2, seed: 4)
        for g in [1, 2] {
            let k = randomTensor([b, g, s, d], -2, 2, seed: 5), v = randomTensor([b, g, s, d], seed: 6)
            XCTAssertNil(try gradientCheck([q, k, v]) { try scaledDotProductAttention($0[0], $0[1], $0[2]) }, "g = \(g)")
            let docs = intTensor([0, 0, 1, 1, 1, 3, 4, 3, 4, 4], [b, s])
            XCTAssertNil(try gradientCheck([q, k, v], seed: 9) { try scaledDotProductAttention($0[0], $0[1], $0[2], seqIdx: docs) },
                         "g = \(g), documents")
        }
    }

    func testMismatchedHeadCountsAreRefused() throws {
        let q = randomTensor([1, 4, 3, 2]), k = randomTensor([1, 3, 3, 2])
        XCTAssertThrowsError(try scaledDotProductAttention(q, k, k))
        var gen = SplitMix64(seed: 1)
        XCTAssertThrowsError(try Attention(hiddenSize: 16, heads: 4, keyValueHeads: 3, generator: &gen)) {
            XCTAssertTrue("\($0)".contains("3 key/value heads"), "\($0)")
        }
    }

    func testLayerShapesAndDecodingEqualTheTrainingForward() throws {
        var gen = SplitMix64(seed: 11)
        let layer = try Attention(hiddenSize: 16, heads: 4, keyValueHeads: 2, std: 0.5, generator: &gen)
        XCTAssertEqual(layer.kProj.weight.shape, [8, 16])
        XCTAssertEqual(layer.vProj.weight.shape, [8, 16])
        XCTAssertEqual(layer.qProj.weight.shape, [16, 16])
        let length = 9
        let x = randomTensor([1, length, 16], seed: 12)
        let full = try layer(x, positions: positionIDs(batch: 1, length: length, offset: 3)).floats
        let frozen = Attention.Frozen(layer)
        let cache = frozen.makeCache(), scratch = InferenceScratch()
        XCTAssertEqual(cache.heads, 2)
        var out: [Float] = []
        let values = x.floats
        for t in 0..<length {
            let input = RowBuffer(capacity: 2 * 16), residual = RowBuffer(capacity: 2 * 16)
            for c in 0..<16 { input.pointer[c] = values[t * 16 + c] }
            frozen(input.pointer, rows: 1, outputs: 1, firstPosition: 3 + t, cache: cache, addingInto: residual.pointer,
                   scratch: scratch)
            out += Array(UnsafeBufferPointer(start: residual.pointer, count: 16))
        }
        let worst = zip(out, full).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-5)
    }
}
