// Incremental decoding with a KV cache reproduces the full forward.

import NN
import Tensors
import TestSupport
import XCTest

final class KVCacheTests: XCTestCase {
    private let (b, s, h) = (2, 9, 8)
    private var x: Tensor { randomTensor([b, s, h], seed: 71) }
    private let positionValues = [0, 1, 2, 3, 4, 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    private let documentValues = [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2]

    /// Runs `step` over consecutive chunks of the sequence axis and concatenates the outputs.
    private func decode(chunks: [Range<Int>], _ step: (Tensor, Tensor, Tensor) throws -> Tensor) throws -> Tensor {
        var outs: [Tensor] = []
        for r in chunks {
            let ids = (0..<b).flatMap { row in r.map { row * s + $0 } }
            outs.append(try step(x.sliced(axis: 1, r), intTensor(ids.map { positionValues[$0] }, [b, r.count]),
                                 intTensor(ids.map { documentValues[$0] }, [b, r.count])))
        }
        return try Tensor.concatenated(outs, axis: 1)
    }

    private let tokenByToken = (0..<9).map { $0..<($0 + 1) }
    private let prefillThenTokens = [0..<4] + (4..<9).map { $0..<($0 + 1) }
    private let unevenChunks = [0..<2, 2..<5, 5..<6, 6..<9]

    func testAttentionDecodingEqualsFullForward() throws {
        var g = SplitMix64(seed: 72)
        let attn = try Attention(hiddenSize: h, heads: 2, std: 0.5, generator: &g)
        let full = try withoutGrad {
            try attn(x, positions: intTensor(positionValues, [b, s]), seqIdx: intTensor(documentValues, [b, s]))
        }
        for chunks in [tokenByToken, prefillThenTokens, unevenChunks] {
            let cache = KVCache()
            let out = try withoutGrad {
                try decode(chunks: chunks) { try attn($0, positions: $1, seqIdx: $2, cache: cache) }
            }
            XCTAssertEqual(cache.length, s)
            XCTAssertLessThan(maxDifference(out, full), 2e-6, "\(chunks)")
        }
    }

    func testDecoderBlockDecodingEqualsFullForward() throws {
        var g = SplitMix64(seed: 73)
        let block = try DecoderBlock(hiddenSize: h, heads: 4, intermediateSize: 16, std: 0.3, generator: &g)
        let full = try withoutGrad {
            try block(x, positions: intTensor(positionValues, [b, s]), seqIdx: intTensor(documentValues, [b, s]))
        }
        let cache = KVCache()
        let out = try withoutGrad {
            try decode(chunks: tokenByToken) { try block($0, positions: $1, seqIdx: $2, cache: cache) }
        }
        XCTAssertLessThan(maxDifference(out, full), 5e-6)
        // Without document ids everything is one document, as in the full causal forward.
        let causal = try withoutGrad { try block(x, positions: intTensor(positionValues, [b, s])) }
        let cache2 = KVCache()
        let out2 = try withoutGrad {
            try decode(chunks: prefillThenTokens) { x, p, _ in try block(x, positions: p, cache: cache2) }
        }
        XCTAssertLessThan(maxDifference(out2, causal), 5e-6)
    }

    func testLongDecodingGrowsTheCache() throws {
        // 40 tokens one at a time: the buffers grow past their first capacity twice.
        var g = SplitMix64(seed: 75)
        let attn = try Attention(hiddenSize: h, heads: 2, std: 0.5, generator: &g)
        let length = 40
        let x = randomTensor([b, length, h], seed: 76)
        let documents = intTensor((0..<(b * length)).map { ($0 % length) / 13 }, [b, length])
        let positions = positionIDs(batch: b, length: length, offset: 3)
        let full = try withoutGrad { try attn(x, positions: positions, seqIdx: documents) }
        let cache = KVCache()
        let out = try withoutGrad {
            try Tensor.concatenated((0..<length).map { t in
                try attn(x.sliced(axis: 1, t..<(t + 1)), positions: positions.sliced(axis: 1, t..<(t + 1)),
                         seqIdx: documents.sliced(axis: 1, t..<(t + 1)), cache: cache)
            }, axis: 1)
        }
        XCTAssertEqual(cache.length, length)
        XCTAssertLessThan(maxDifference(out, full), 2e-6)
    }

    func testCacheMisuseThrowsAndResetEmpties() throws {
        var g = SplitMix64(seed: 74)
        let attn = try Attention(hiddenSize: h, heads: 2, generator: &g)
        let cache = KVCache()
        // Recording gradients through a cache is refused.
        XCTAssertThrowsError(try attn(x, positions: positionIDs(batch: b, length: s), cache: cache))
        XCTAssertEqual(cache.length, 0)
        try withoutGrad {
            _ = try attn(x, positions: positionIDs(batch: b, length: s), cache: cache)
            XCTAssertEqual(cache.length, s)
            XCTAssertEqual(cache.batch, b)
            // Another batch size does not fit the cached rows.
            XCTAssertThrowsError(try attn(randomTensor([1, 1, h]), positions: positionIDs(batch: 1, length: 1), cache: cache))
            cache.reset()
            XCTAssertEqual(cache.length, 0)
            _ = try attn(randomTensor([1, 1, h]), positions: positionIDs(batch: 1, length: 1), cache: cache)
            XCTAssertEqual(cache.length, 1)
        }
    }
}
