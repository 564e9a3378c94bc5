// The layers' inference path (the `Frozen` forms, on raw rows against a KVCache)
// against their training forward: norms and rotations bit for bit (one kernel each),
// projections, the MLP, attention and the decoder block within rounding, whether
// decoded token by token, after a prefill, in uneven chunks, or with outputs for the
// last rows only; the cache grows past its first capacity on the way.

import NN
import Tensors
import TestSupport
import XCTest

final class InferenceTests: XCTestCase {
    /// `rows` of `values` (`width` floats each) copied into a buffer with the spare row inference needs.
    private func buffer(_ values: [Float], rows: Range<Int>, width: Int) -> RowBuffer {
        let b = RowBuffer(capacity: (rows.count + 1) * width)
        b.pointer.update(from: Array(values[(rows.lowerBound * width)..<(rows.upperBound * width)]), count: rows.count * width)
        return b
    }

    private func floats(_ b: RowBuffer, _ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: b.pointer, count: count)) }

    private func largestDifference(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    func testNormAndRotationAreTheTrainingKernelsBitForBit() throws {
        let norm = RMSNorm(dimension: 12, epsilon: 1e-5)
        norm.weight.value = randomTensor([12], 0.5, 1.5, seed: 1)
        let x = randomTensor([5, 12], seed: 2)
        let input = buffer(x.floats, rows: 0..<5, width: 12), out = RowBuffer(capacity: 60)
        withExtendedLifetime(input) { RMSNorm.Frozen(norm)(input.pointer, rows: 5, into: out.pointer) }
        XCTAssertEqual(floats(out, 60), try norm(x).floats)

        // Positions 3 ..< 3 + S; the table grows past its first 64 positions.
        let (heads, s, d) = (3, 70, 8)
        let rope = try RotaryEmbedding(headDimension: d, base: 500)
        let tokenMajor = randomTensor([1, s, heads, d], seed: 3)
        let trained = try rope(tokenMajor.transposed(1, 2), positions: positionIDs(batch: 1, length: s, offset: 3))
        let table = RotaryEmbedding.PositionTable(rope)
        let rows = buffer(tokenMajor.floats, rows: 0..<s, width: heads * d)
        table.rotate(rows.pointer, rows: 10, heads: heads, firstPosition: 3)
        table.rotate(rows.pointer + 10 * heads * d, rows: s - 10, heads: heads, firstPosition: 13)
        XCTAssertGreaterThanOrEqual(table.positions, s + 3)
        XCTAssertEqual(floats(rows, s * heads * d), try trained.transposed(1, 2).floats)
    }

    func testProjectionAndMLPMatchTheTrainingForward() throws {
        var g = SplitMix64(seed: 7)
        let linear = Linear(inFeatures: 12, outFeatures: 20, std: 0.5, generator: &g)
        let mlp = MLP(hiddenSize: 12, intermediateSize: 20, std: 0.5, generator: &g)
        let x = randomTensor([3, 12], seed: 8)
        // Three rows run as four through the spare row (see Linear.Frozen): the results do not depend on it.
        let input = buffer(x.floats, rows: 0..<3, width: 12)
        input.pointer[36] = .nan
        let projected = RowBuffer(capacity: 4 * 20)
        Linear.Frozen(linear)(input.pointer, rows: 3, into: projected.pointer)
        XCTAssertLessThan(largestDifference(floats(projected, 60), try linear(x).floats), 1e-6)
        let residual = RowBuffer(capacity: 4 * 12)
        withExtendedLifetime(input) {
            MLP.Frozen(mlp)(input.pointer, rows: 3, addingInto: residual.pointer, scratch: InferenceScratch())
        }
        XCTAssertLessThan(largestDifference(floats(residual, 36), try mlp(x).floats), 1e-6)
    }

    func testAttentionDecodingEqualsTheTrainingForward() throws {
        var g = SplitMix64(seed: 72)
        let layer = try Attention(hiddenSize: 16, heads: 2, std: 0.5, generator: &g)
        let frozen = Attention.Frozen(layer)
        // 70 tokens: the cache grows past its first 64 positions.
        let s = 70
        let x = randomTensor([1, s, 16], seed: 71)
        let full = try layer(x, positions: positionIDs(batch: 1, length: s, offset: 5)).floats
        let cache = frozen.makeCache(), scratch = InferenceScratch()
        var out: [Float] = []
        for t in 0..<s {
            let input = buffer(x.floats, rows: t..<(t + 1), width: 16), residual = RowBuffer(capacity: 2 * 16)
            withExtendedLifetime(input) {
                frozen(input.pointer, rows: 1, outputs: 1, firstPosition: 5 + t, cache: cache, addingInto: residual.pointer,
                       scratch: scratch)
            }
            out += floats(residual, 16)
        }
        XCTAssertEqual(cache.length, s)
        XCTAssertLessThan(largestDifference(out, full), 1e-5)
    }

    func testDecoderBlockDecodingEqualsTheTrainingForward() throws {
        var g = SplitMix64(seed: 73)
        let block = try DecoderBlock(hiddenSize: 16, heads: 4, intermediateSize: 24, std: 0.3, generator: &g)
        block.inputLayernorm.weight.value = randomTensor([16], 0.5, 1.5, seed: 74)
        block.postAttentionLayernorm.weight.value = randomTensor([16], 0.5, 1.5, seed: 75)
        let frozen = DecoderBlock.Frozen(block)
        let (s, h) = (11, 16)
        let x = randomTensor([1, s, h], seed: 76)
        let full = try block(x, positions: positionIDs(batch: 1, length: s, offset: 2)).floats
        let tokenByToken = (0..<s).map { $0..<($0 + 1) }
        let prefillThenTokens = [0..<4] + (4..<s).map { $0..<($0 + 1) }
        let unevenChunks = [0..<2, 2..<5, 5..<6, 6..<9, 9..<11]
        let scratch = InferenceScratch()
        for chunks in [tokenByToken, prefillThenTokens, unevenChunks] {
            for lastOnly in [false, true] {
                let cache = frozen.makeCache()
                var worst: Float = 0
                for rows in chunks {
                    let m = rows.count, outputs = lastOnly ? 1 : m
                    let stream = buffer(x.floats, rows: rows, width: h)
                    frozen(stream.pointer, rows: m, outputs: outputs, firstPosition: 2 + rows.lowerBound, cache: cache,
                           scratch: scratch)
                    let computed = (rows.upperBound - outputs)..<rows.upperBound
                    worst = max(worst, largestDifference(Array(floats(stream, m * h)[((m - outputs) * h)...]),
                                                         Array(full[(computed.lowerBound * h)..<(computed.upperBound * h)])))
                }
                XCTAssertEqual(cache.length, s)
                XCTAssertLessThan(worst, 1e-5, "\(chunks), outputs for the last row only: \(lastOnly)")
            }
        }
    }
}
