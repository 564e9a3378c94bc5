// The decoding cache: storage layout ([n, d, C] keys, token-major values) across
// growth, rollback with truncate (a rejected draft leaves no trace), and its errors.

import NN
import Tensors
import TestSupport
import XCTest

final class KVCacheTests: XCTestCase {
    func testCacheGrowsAndKeepsItsPositions() {
        let cache = KVCache(heads: 2, headDimension: 4)
        var keys: [Float] = [], values: [Float] = []
        for t in 0..<150 {
            let k = (0..<8).map { Float(t * 10 + $0) }, v = (0..<8).map { -Float(t * 10 + $0) }
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { cache.append(keys: kp.baseAddress!, values: $0.baseAddress!, count: 1) }
            }
            keys += k
            values += v
        }
        XCTAssertEqual(cache.length, 150)
        XCTAssertGreaterThanOrEqual(cache.capacity, 150)
        XCTAssertEqual(cache.capacity % 8, 0)
        for t in [0, 63, 64, 149] {
            for head in 0..<2 {
                for c in 0..<4 { XCTAssertEqual(cache.keys(head: head)[c * cache.capacity + t], keys[t * 8 + head * 4 + c]) }
            }
            for j in 0..<8 { XCTAssertEqual(cache.values[t * 8 + j], values[t * 8 + j]) }
        }
    }

    func testTruncateRollsBackAndAppendingContinuesExactly() throws {
        // Decoding 4 tokens, 2 wrong ones rolled back, then the 3 right ones: the outputs equal
        // those of decoding the 4 and then the 3 right tokens, bit for bit.
        var g = SplitMix64(seed: 4)
        let attention = Attention.Frozen(try Attention(hiddenSize: 8, heads: 2, std: 0.5, generator: &g))
        let x = randomTensor([7, 8], seed: 5).floats, wrong = randomTensor([2, 8], seed: 6).floats
        let scratch = InferenceScratch()
        func run(_ rows: ArraySlice<Float>, at position: Int, _ cache: KVCache) -> [Float] {
            let m = rows.count / 8
            let input = RowBuffer(capacity: (m + 1) * 8), out = RowBuffer(capacity: (m + 1) * 8)
            input.pointer.update(from: Array(rows), count: rows.count)
            attention(input.pointer, rows: m, outputs: m, firstPosition: position, cache: cache, addingInto: out.pointer,
                      scratch: scratch)
            return withExtendedLifetime(input) { Array(UnsafeBufferPointer(start: out.pointer, count: m * 8)) }
        }
        let straight = attention.makeCache()
        let expected = run(x[0..<32], at: 0, straight) + run(x[32...], at: 4, straight)
        let cache = attention.makeCache()
        XCTAssertEqual(run(x[0..<32], at: 0, cache), Array(expected[0..<32]))
        _ = run(wrong[...], at: 4, cache)
        XCTAssertEqual(cache.length, 6)
        try cache.truncate(to: 4)
        XCTAssertEqual(cache.length, 4)
        XCTAssertEqual(run(x[32...], at: 4, cache), Array(expected[32...]))
        XCTAssertThrowsError(try cache.truncate(to: 8))
        XCTAssertThrowsError(try cache.truncate(to: -1))
        try cache.truncate(to: 0)
        XCTAssertEqual(cache.length, 0)
        _ = run(x[0..<8], at: 0, cache)
        cache.reset()
        XCTAssertEqual(cache.length, 0)
        XCTAssertEqual(run(x[0..<32], at: 0, cache) + run(x[32...], at: 4, cache), expected)
    }
}
