// The tiled attention kernel at pointer level (AttentionKernel.forward / backward): the
// output, log-sum-exp and every gradient against a float64 reference written from the
// definition (scores, mask, softmax, weighted sum; gradients through the softmax Jacobian),
// for every instruction-set variant this CPU runs; causal and document masks (several and
// non-contiguous documents), grouped-query heads, fewer queries than keys, odd head sizes
// and lengths off the tile sizes, packed q/k/v layouts, and bit-identical reruns.

import Foundation
@testable import NN
import Tensors
import TestSupport
import XCTest

/// One attention problem in canonical layouts: q, o, g `[B, n, Sq, d]`, k, v `[B, g, Sk, d]`;
/// ids `[B, Sq]` and `[B, Sk]` (nil: plain causal).
private struct Problem {
    let shape: AttentionShape
    var q: [Float], k: [Float], v: [Float], g: [Float]
    let queryIDs: [Int64]?, keyIDs: [Int64]?

    init(batch: Int, heads: Int, keyValueHeads: Int, queries: Int, keys: Int, dimension: Int,
         queryIDs: [Int64]? = nil, keyIDs: [Int64]? = nil, seed: UInt64) {
        shape = AttentionShape(batch: batch, heads: heads, keyValueHeads: keyValueHeads, queries: queries, keys: keys,
                               dimension: dimension)
        var generator = SplitMix64(seed: seed)
        func random(_ count: Int, _ range: Float) -> [Float] { (0..<count).map { _ in (generator.nextUniform() * 2 - 1) * range } }
        q = random(batch * heads * queries * dimension, 2)
        k = random(batch * keyValueHeads * keys * dimension, 2)
        v = random(batch * keyValueHeads * keys * dimension, 1)
        g = random(batch * heads * queries * dimension, 1)
        self.queryIDs = queryIDs
        self.keyIDs = keyIDs
    }

    /// Self-attention ids: the same `[B, S]` for queries and keys.
    init(batch: Int, heads: Int, keyValueHeads: Int, length: Int, dimension: Int, ids: [Int64]?, seed: UInt64) {
        self.init(batch: batch, heads: heads, keyValueHeads: keyValueHeads, queries: length, keys: length, dimension: dimension,
                  queryIDs: ids, keyIDs: ids, seed: seed)
    }

    var queryDocuments: DocumentIDs? { queryIDs.map { DocumentIDs(ids: $0, batchStride: shape.queries) } }
    var keyDocuments: DocumentIDs? { keyIDs.map { DocumentIDs(ids: $0, batchStride: shape.keys) } }
}

/// The four results in canonical layouts, plus the log-sum-exp `[B, n, Sq]`.
private struct Results {
    var o: [Float], lse: [Float], dq: [Float], dk: [Float], dv: [Float]
}

private struct Reference {
    var o: [Double], lse: [Double], dq: [Double], dk: [Double], dv: [Double]

    /// Plain loops over the definition, in float64.
    init(_ p: Problem) {
        let s = p.shape, (sq, sk, d) = (s.queries, s.keys, s.dimension), c = 1 / Double(d).squareRoot()
        o = Array(repeating: 0, count: p.q.count)
        dq = Array(repeating: 0, count: p.q.count)
        dk = Array(repeating: 0, count: p.k.count)
        dv = Array(repeating: 0, count: p.v.count)
        lse = Array(repeating: 0, count: s.pairs * sq)
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let qBase = (b * s.heads + h) * sq * d, kBase = (b * s.keyValueHeads + s.keyValueHead(h)) * sk * d
                for i in 0..<sq {
                    func visible(_ j: Int) -> Bool {
                        guard j <= i + sk - sq else { return false }
                        guard let qIDs = p.queryIDs, let kIDs = p.keyIDs else { return true }
                        return qIDs[b * sq + i] == kIDs[b * sk + j]
                    }
                    var scores = [Double](repeating: -.infinity, count: sk)
                    for j in 0..<sk where visible(j) {
                        var dot = 0.0
                        for e in 0..<d { dot += Double(p.q[qBase + i * d + e]) * Double(p.k[kBase + j * d + e]) }
                        scores[j] = c * dot
                    }
                    let m = scores.max()!
                    guard m > -.infinity else {
                        lse[(b * s.heads + h) * sq + i] = -.infinity
                        continue  // no visible key: o = 0 and no gradient
                    }
                    let total = scores.reduce(0.0) { $0 + Foundation.exp($1 - m) }
                    lse[(b * s.heads + h) * sq + i] = m + Foundation.log(total)
                    let probabilities = scores.map { Foundation.exp($0 - m) / total }
                    var dP = [Double](repeating: 0, count: sk)
                    for j in 0..<sk {
                        for e in 0..<d {
                            o[qBase + i * d + e] += probabilities[j] * Double(p.v[kBase + j * d + e])
                            dP[j] += Double(p.g[qBase + i * d + e]) * Double(p.v[kBase + j * d + e])
                        }
                    }
                    // dS = J·dP with the softmax Jacobian J_jl = P_j (δ_jl − P_l).
                    for j in 0..<sk {
                        var dS = 0.0
                        for l in 0..<sk { dS += probabilities[j] * ((j == l ? 1 : 0) - probabilities[l]) * dP[l] }
                        for e in 0..<d {
                            dq[qBase + i * d + e] += c * dS * Double(p.k[kBase + j * d + e])
                            dk[kBase + j * d + e] += c * dS * Double(p.q[qBase + i * d + e])
                            dv[kBase + j * d + e] += probabilities[j] * Double(p.g[qBase + i * d + e])
                        }
                    }
                }
            }
        }
    }
}

/// Where a problem's tensors live: one layout per tensor and the buffers' sizes.
private struct Placement {
    let q: HeadLayout, k: HeadLayout, v: HeadLayout
    /// Element offsets of q, k, v (and of dq, dk, dv) in their buffers; all three share one
    /// buffer when `packed`.
    let qOffset: Int, kOffset: Int, vOffset: Int
    let packed: Bool
    let sizes: (q: Int, k: Int, v: Int)

    static func headsFirst(_ s: AttentionShape) -> Placement {
        Placement(q: .headsFirst(heads: s.heads, length: s.queries, dimension: s.dimension),
                  k: .headsFirst(heads: s.keyValueHeads, length: s.keys, dimension: s.dimension),
                  v: .headsFirst(heads: s.keyValueHeads, length: s.keys, dimension: s.dimension),
                  qOffset: 0, kOffset: 0, vOffset: 0, packed: false,
                  sizes: (s.pairs * s.queries * s.dimension, s.batch * s.keyValueHeads * s.keys * s.dimension,
                          s.batch * s.keyValueHeads * s.keys * s.dimension))
    }

    static func tokensFirst(_ s: AttentionShape) -> Placement {
        Placement(q: .tokensFirst(heads: s.heads, length: s.queries, dimension: s.dimension),
                  k: .tokensFirst(heads: s.keyValueHeads, length: s.keys, dimension: s.dimension),
                  v: .tokensFirst(heads: s.keyValueHeads, length: s.keys, dimension: s.dimension),
                  qOffset: 0, kOffset: 0, vOffset: 0, packed: false, sizes: headsFirst(s).sizes)
    }

    /// q, k, v as column slices of one `[B, S, (n + 2g)·d + pad]` buffer (self-attention).
    static func packed(_ s: AttentionShape, pad: Int) -> Placement {
        precondition(s.queries == s.keys)
        let d = s.dimension, row = (s.heads + 2 * s.keyValueHeads) * d + pad
        let layout = HeadLayout(batch: s.keys * row, head: d, row: row, heads: s.heads)
        let kv = HeadLayout(batch: s.keys * row, head: d, row: row, heads: s.keyValueHeads)
        let size = s.batch * s.keys * row
        return Placement(q: layout, k: kv, v: kv, qOffset: 0, kOffset: s.heads * d, vOffset: (s.heads + s.keyValueHeads) * d,
                         packed: true, sizes: (size, size, size))
    }
}

/// Canonical `[B, heads, length, d]` values into `buffer` at `layout`.
private func scatter(_ values: [Float], into buffer: UnsafeMutablePointer<Float>, _ layout: HeadLayout,
                     batch: Int, heads: Int, length: Int, dimension d: Int) {
    for b in 0..<batch {
        for h in 0..<heads {
            for i in 0..<length {
                for e in 0..<d { buffer[layout.offset(batch: b, head: h) + i * layout.row + e] = values[((b * heads + h) * length + i) * d + e] }
            }
        }
    }
}

private func gather(_ buffer: UnsafePointer<Float>, _ layout: HeadLayout, batch: Int, heads: Int, length: Int,
                    dimension d: Int) -> [Float] {
    var out = [Float](repeating: 0, count: batch * heads * length * d)
    for b in 0..<batch {
        for h in 0..<heads {
            for i in 0..<length {
                for e in 0..<d { out[((b * heads + h) * length + i) * d + e] = buffer[layout.offset(batch: b, head: h) + i * layout.row + e] }
            }
        }
    }
    return out
}

/// Forward then backward through the kernel; output and gradient buffers start as NaN, so an
/// element the kernel leaves unwritten shows. With a packed placement also checks that the
/// padding columns of the packed gradient buffer stay untouched.
private func runKernel(_ p: Problem, _ at: Placement, variant: Linear.KernelVariant = .current) -> Results {
    let s = p.shape, (sq, sk, d) = (s.queries, s.keys, s.dimension)
    let inputs = [UnsafeMutablePointer<Float>.allocate(capacity: at.sizes.q), .allocate(capacity: at.sizes.k),
                  .allocate(capacity: at.sizes.v)]
    let grads = [UnsafeMutablePointer<Float>.allocate(capacity: at.sizes.q), .allocate(capacity: at.sizes.k),
                 .allocate(capacity: at.sizes.v)]
    let o = UnsafeMutablePointer<Float>.allocate(capacity: at.sizes.q), g = UnsafeMutablePointer<Float>.allocate(capacity: at.sizes.q)
    let lse = UnsafeMutablePointer<Float>.allocate(capacity: s.pairs * sq)
    defer { (inputs + grads + [o, g, lse]).forEach { $0.deallocate() } }
    for (buffer, size) in zip(inputs + grads, [at.sizes.q, at.sizes.k, at.sizes.v, at.sizes.q, at.sizes.k, at.sizes.v]) {
        buffer.initialize(repeating: .nan, count: size)
    }
    o.initialize(repeating: .nan, count: at.sizes.q)
    g.initialize(repeating: .nan, count: at.sizes.q)
    lse.initialize(repeating: .nan, count: s.pairs * sq)
    // Packed: q, k, v (and dq, dk, dv) are slices of the first buffer of each triple.
    let q = inputs[0] + at.qOffset, k = (at.packed ? inputs[0] : inputs[1]) + at.kOffset
    let v = (at.packed ? inputs[0] : inputs[2]) + at.vOffset
    let dq = grads[0] + at.qOffset, dk = (at.packed ? grads[0] : grads[1]) + at.kOffset
    let dv = (at.packed ? grads[0] : grads[2]) + at.vOffset
    scatter(p.q, into: q, at.q, batch: s.batch, heads: s.heads, length: sq, dimension: d)
    scatter(p.k, into: k, at.k, batch: s.batch, heads: s.keyValueHeads, length: sk, dimension: d)
    scatter(p.v, into: v, at.v, batch: s.batch, heads: s.keyValueHeads, length: sk, dimension: d)
    scatter(p.g, into: g, at.q, batch: s.batch, heads: s.heads, length: sq, dimension: d)
    AttentionKernel.forward(q: q, at.q, k: k, at.k, v: v, at.v, out: o, at.q, logSumExp: lse, shape: s,
                            queryDocuments: p.queryDocuments, keyDocuments: p.keyDocuments, variant: variant.rawValue)
    AttentionKernel.backward(gradOut: g, at.q, out: o, at.q, logSumExp: lse, q: q, at.q, k: k, at.k, v: v, at.v,
                             dq: dq, dk: dk, dv: dv, shape: s, queryDocuments: p.queryDocuments, keyDocuments: p.keyDocuments,
                             variant: variant.rawValue)
    if at.packed {
        let row = at.q.row, used = (s.heads + 2 * s.keyValueHeads) * d
        for r in 0..<(s.batch * sk) {
            for e in used..<row where !grads[0][r * row + e].isNaN {
                XCTFail("padding column \(e) of packed row \(r) was written")
                break
            }
        }
    }
    return Results(o: gather(o, at.q, batch: s.batch, heads: s.heads, length: sq, dimension: d),
                   lse: Array(UnsafeBufferPointer(start: lse, count: s.pairs * sq)),
                   dq: gather(dq, at.q, batch: s.batch, heads: s.heads, length: sq, dimension: d),
                   dk: gather(dk, at.k, batch: s.batch, heads: s.keyValueHeads, length: sk, dimension: d),
                   dv: gather(dv, at.v, batch: s.batch, heads: s.keyValueHeads, length: sk, dimension: d))
}

/// Each element within 1e-5 of the reference relative to the tensor's largest magnitude (a
/// small gradient element is a difference of large terms, so its own relative error is not
/// a measure of the kernel).
private func assertMatches(_ actual: Results, _ expected: Reference, _ label: String, file: StaticString = #filePath,
                           line: UInt = #line) {
    for (name, a, e) in [("o", actual.o, expected.o), ("lse", actual.lse, expected.lse), ("dq", actual.dq, expected.dq),
                         ("dk", actual.dk, expected.dk), ("dv", actual.dv, expected.dv)] {
        let scale = e.lazy.filter(\.isFinite).map(abs).max() ?? 0
        XCTAssertFalse(a.contains { $0.isNaN }, "\(label) \(name): an element was not written", file: file, line: line)
        let error = maxRelativeError(a, e, floor: Swift.max(scale, 1e-30))
        XCTAssertLessThanOrEqual(error, 1e-5, "\(label) \(name)", file: file, line: line)
    }
}

/// Contiguous documents of the given lengths, numbered from `first`, as one row of ids.
private func documents(_ lengths: [Int], first: Int64 = 0) -> [Int64] {
    lengths.enumerated().flatMap { i, n in [Int64](repeating: first + Int64(i), count: n) }
}

final class AttentionKernelTests: XCTestCase {
    private func check(_ p: Problem, _ label: String, placement: Placement? = nil, file: StaticString = #filePath,
                       line: UInt = #line) {
        let expected = Reference(p)
        for variant in Linear.KernelVariant.supported {
            let actual = runKernel(p, placement ?? .headsFirst(p.shape), variant: variant)
            assertMatches(actual, expected, "\(label) [\(variant)]", file: file, line: line)
        }
    }

    func testPlainCausalMatchesReferenceAcrossTiles() {
        // 70 keys: two key tiles; 70 rows: five query blocks of 16, the last partial.
        check(Problem(batch: 2, heads: 2, keyValueHeads: 2, length: 70, dimension: 5, ids: nil, seed: 1), "S = 70, d = 5")
        // More than 128 queries: blocks of 32.
        check(Problem(batch: 1, heads: 1, keyValueHeads: 1, length: 150, dimension: 3, ids: nil, seed: 2), "S = 150, d = 3")
    }

    func testHeadDimensionsInUseAndOdd() {
        for d in [1, 7, 24, 32, 33, 64] {
            check(Problem(batch: 1, heads: 2, keyValueHeads: 2, length: 19, dimension: d, ids: nil, seed: UInt64(d)), "d = \(d)")
        }
    }

    func testDocumentMasksWithContiguousAndNonContiguousIDs() {
        // Row 0: five contiguous documents (one spans a tile edge); row 1: interleaved ids
        // (a token sees the earlier tokens with its id, wherever they are).
        let row0 = documents([9, 30, 1, 20, 10])
        let row1 = (0..<70).map { Int64([3, 5, 3, 3, 7, 5][$0 % 6]) }
        check(Problem(batch: 2, heads: 2, keyValueHeads: 2, length: 70, dimension: 5, ids: row0 + row1, seed: 3), "documents")
        // Ids that return after an interruption, within an otherwise contiguous row.
        let returning = documents([12, 12]) + documents([12], first: 0) + documents([34], first: 5)
        check(Problem(batch: 1, heads: 1, keyValueHeads: 1, length: 70, dimension: 4, ids: returning, seed: 4), "returning ids")
    }

    func testGroupedQueryHeads() {
        let ids = documents([5, 17, 15]) + (0..<37).map { Int64($0 % 3) }
        for g in [1, 2] {
            check(Problem(batch: 2, heads: 4, keyValueHeads: g, length: 37, dimension: 8, ids: ids, seed: 10 + UInt64(g)),
                  "n = 4, g = \(g)")
            check(Problem(batch: 1, heads: 4, keyValueHeads: g, length: 21, dimension: 3, ids: nil, seed: 20 + UInt64(g)),
                  "n = 4, g = \(g), causal")
        }
    }

    func testFewerQueriesThanKeys() {
        // The queries are the last 20 of 70 key positions, as in context parallelism.
        check(Problem(batch: 1, heads: 2, keyValueHeads: 1, queries: 20, keys: 70, dimension: 6, seed: 30), "Sq < Sk")
        let keys = documents([25, 30, 15]) + (0..<70).map { Int64($0 % 4) }
        var queries = Array(keys[50..<70]) + Array(keys[120..<140])
        queries[3] = 99  // no key of document 99: that row sees nothing (o = 0, no gradient)
        check(Problem(batch: 2, heads: 2, keyValueHeads: 2, queries: 20, keys: 70, dimension: 6, queryIDs: queries,
                      keyIDs: keys, seed: 31), "Sq < Sk with documents")
        let tokensFirst = Problem(batch: 1, heads: 2, keyValueHeads: 2, queries: 20, keys: 70, dimension: 6, seed: 32)
        check(tokensFirst, "Sq < Sk, tokens-first", placement: .tokensFirst(tokensFirst.shape))
    }

    func testPackedProjectionLayout() {
        // q, k, v as column slices of one [B, S, (n + 2g)·d + 3] buffer, the gradients into one
        // buffer laid out the same way; the padding columns must stay untouched.
        let ids = documents([10, 20, 11]) + documents([41])
        for g in [1, 2, 4] {
            let p = Problem(batch: 2, heads: 4, keyValueHeads: g, length: 41, dimension: 5, ids: ids, seed: 40 + UInt64(g))
            check(p, "packed, g = \(g)", placement: .packed(p.shape, pad: 3))
        }
    }

    func testEmptyShapes() throws {
        // No queries: the keys get zero gradients (every element written). No rows, heads or
        // tokens: nothing to do, nothing traps.
        check(Problem(batch: 1, heads: 2, keyValueHeads: 1, queries: 0, keys: 5, dimension: 3, seed: 70), "Sq = 0")
        for shape in [[0, 2, 4, 3], [2, 2, 0, 3], [1, 2, 3, 0]] {
            let q = Tensor.zeros(shape).requiringGrad(), k = Tensor.zeros(shape).requiringGrad()
            let v = Tensor.zeros(shape).requiringGrad()
            let y = try scaledDotProductAttention(q, k, v)
            XCTAssertEqual(y.shape, shape)
            try y.backward(Tensor.zeros(shape))
            XCTAssertEqual(q.grad?.shape, shape)
        }
    }

    func testNaNReachesExactlyTheRowsThatSeeIt() {
        // A NaN query poisons its own row; a NaN key every later row of its document.
        var p = Problem(batch: 1, heads: 1, keyValueHeads: 1, length: 20, dimension: 4, ids: documents([8, 12]), seed: 60)
        p.q[5 * 4 + 1] = .nan
        p.k[11 * 4 + 2] = .nan
        for variant in Linear.KernelVariant.supported {
            let o = runKernel(p, .headsFirst(p.shape), variant: variant).o
            for i in 0..<20 {
                let poisoned = i == 5 || i >= 11
                XCTAssertEqual(o[(i * 4)..<(i * 4 + 4)].contains { $0.isNaN }, poisoned, "row \(i) [\(variant)]")
            }
        }
    }

    func testResultsAreBitIdenticalAcrossRunsAndBatchSplits() {
        // Every unit runs on one thread start to end: the bits depend neither on the run nor on
        // how the units are spread over threads (each batch row alone gives the same bits).
        let ids = documents([7, 20, 3, 10]) + (0..<40).map { Int64($0 % 5) }
        let p = Problem(batch: 2, heads: 4, keyValueHeads: 2, length: 40, dimension: 24, ids: ids, seed: 50)
        let first = runKernel(p, .headsFirst(p.shape)), second = runKernel(p, .headsFirst(p.shape))
        for (a, b) in [(first.o, second.o), (first.dq, second.dq), (first.dk, second.dk), (first.dv, second.dv)] {
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
        }
        let s = p.shape, perQ = s.heads * s.queries * s.dimension, perK = s.keyValueHeads * s.keys * s.dimension
        for b in 0..<s.batch {
            let row = Problem(batch: 1, heads: 4, keyValueHeads: 2, length: 40, dimension: 24,
                              ids: Array(ids[(b * 40)..<(b * 40 + 40)]), seed: 50)
            let alone = runKernel(Problem(slicing: p, row: b, like: row), .headsFirst(row.shape))
            XCTAssertEqual(alone.o.map(\.bitPattern), first.o[(b * perQ)..<((b + 1) * perQ)].map(\.bitPattern))
            XCTAssertEqual(alone.dq.map(\.bitPattern), first.dq[(b * perQ)..<((b + 1) * perQ)].map(\.bitPattern))
            XCTAssertEqual(alone.dk.map(\.bitPattern), first.dk[(b * perK)..<((b + 1) * perK)].map(\.bitPattern))
            XCTAssertEqual(alone.dv.map(\.bitPattern), first.dv[(b * perK)..<((b + 1) * perK)].map(\.bitPattern))
        }
    }
}

private extension Problem {
    /// Batch row `row` of `p`, with the sizes of `like` (a one-row problem).
    init(slicing p: Problem, row: Int, like: Problem) {
        let s = p.shape, perQ = s.heads * s.queries * s.dimension, perK = s.keyValueHeads * s.keys * s.dimension
        self.shape = like.shape
        q = Array(p.q[(row * perQ)..<((row + 1) * perQ)])
        g = Array(p.g[(row * perQ)..<((row + 1) * perQ)])
        k = Array(p.k[(row * perK)..<((row + 1) * perK)])
        v = Array(p.v[(row * perK)..<((row + 1) * perK)])
        queryIDs = p.queryIDs.map { Array($0[(row * s.queries)..<((row + 1) * s.queries)]) }
        keyIDs = p.keyIDs.map { Array($0[(row * s.keys)..<((row + 1) * s.keys)]) }
    }
}
