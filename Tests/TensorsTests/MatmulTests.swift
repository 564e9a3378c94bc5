import XCTest
@testable import Tensors
import TestSupport

/// matmul values against a Double triple loop, and its gradients by finite differences,
/// for plain, batched, broadcast-batch, transposed and 1-D operands.
final class MatmulTests: XCTestCase {
    /// The torch.matmul result computed in Double from the operands' Float32 values.
    func reference(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> (shape: [Int], values: [Double]) {
        var ashape = a.shape, bshape = b.shape
        var av = a.floats.map { Double($0) }, bv = b.floats.map { Double($0) }
        // Materialise transposes of the last two axes, then treat 1-D operands as torch does.
        func transposeLast(_ v: [Double], _ s: [Int]) -> ([Double], [Int]) {
            let r = s[s.count - 2], c = s[s.count - 1], batch = v.count / Swift.max(r * c, 1)
            var out = v
            for bi in 0..<batch { for i in 0..<r { for j in 0..<c { out[bi * r * c + j * r + i] = v[bi * r * c + i * c + j] } } }
            var t = s; t.swapAt(s.count - 2, s.count - 1)
            return (out, t)
        }
        if transposeA && ashape.count >= 2 { (av, ashape) = transposeLast(av, ashape) }
        if transposeB && bshape.count >= 2 { (bv, bshape) = transposeLast(bv, bshape) }
        let aVec = ashape.count == 1, bVec = bshape.count == 1
        if aVec { ashape = [1] + ashape }
        if bVec { bshape = bshape + [1] }
        let m = ashape[ashape.count - 2], k = ashape[ashape.count - 1], n = bshape[bshape.count - 1]
        let batch = try broadcastShape(Array(ashape.dropLast(2)), Array(bshape.dropLast(2)))
        let sa = Array(ashape.dropLast(2)), sb = Array(bshape.dropLast(2))
        let nb = batch.reduce(1, *)
        var out = [Double](repeating: 0, count: nb * m * n)
        for bi in 0..<nb {
            // Batch coordinates → each operand's (broadcast) batch offset.
            var rem = bi, ia = 0, ib = 0, strideA = 1, strideB = 1
            for d in stride(from: batch.count - 1, through: 0, by: -1) {
                let c = rem % batch[d]; rem /= batch[d]
                let da = d - (batch.count - sa.count), db = d - (batch.count - sb.count)
                if da >= 0 { ia += (sa[da] == 1 ? 0 : c) * strideA; strideA *= sa[da] }
                if db >= 0 { ib += (sb[db] == 1 ? 0 : c) * strideB; strideB *= sb[db] }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k {
                        let l: Double = av[(ia * m + i) * k + p], r: Double = bv[(ib * k + p) * n + j]
                        s += l * r
                    }
                    out[(bi * m + i) * n + j] = s
                }
            }
        }
        var shape = batch + [m, n]
        if bVec { shape.removeLast() }
        if aVec { shape.remove(at: shape.count - (bVec ? 1 : 2)) }
        return (shape, out)
    }

    /// (a shape, b shape, transposeA, transposeB): shapes as stored.
    static let cases: [([Int], [Int], Bool, Bool)] = [
        ([3, 4], [4, 2], false, false), ([4, 3], [4, 2], true, false), ([3, 4], [2, 4], false, true),
        ([4, 3], [2, 4], true, true), ([2, 3, 4], [2, 4, 2], false, false), ([2, 3, 4], [4, 2], false, false),
        ([3, 4], [2, 4, 5], false, false), ([2, 1, 3, 4], [3, 4, 2], false, false),
        ([2, 4, 3], [1, 2, 4], true, true), ([1, 4], [4, 1], false, false),
        ([4], [4, 2], false, false), ([2, 3, 4], [4], false, false), ([4], [4], false, false),
        ([4], [2, 4, 3], false, false), ([3, 4], [2, 4], false, true),
        ([3, 0], [0, 2], false, false), ([0, 4], [4, 2], false, false), ([3, 4], [4, 0], false, false),
        ([0, 3, 4], [4, 2], false, false),
    ]

    func testValuesAgainstADoubleReference() throws {
        for (k, (sa, sb, ta, tb)) in Self.cases.enumerated() {
            let a = randomTensor(sa, seed: UInt64(k)), b = randomTensor(sb, seed: UInt64(k + 100))
            let label = "\(sa)\(ta ? "ᵀ" : "") · \(sb)\(tb ? "ᵀ" : "")"
            let y: Tensor
            do { y = try Tensor.matmul(a, b, transposeA: ta, transposeB: tb) } catch { XCTFail("\(label): \(error)"); continue }
            let ref = try reference(a, b, transposeA: ta, transposeB: tb)
            XCTAssertEqual(y.shape, ref.shape, label)
            if y.shape == ref.shape { XCTAssertNil(closeness(y.floats, ref.values, rtol: 1e-5, atol: 1e-5), label) }
        }
    }

    func testGradients() {
        for (k, (sa, sb, ta, tb)) in Self.cases.enumerated() {
            let a = randomTensor(sa, seed: UInt64(k)), b = randomTensor(sb, seed: UInt64(k + 100))
            assertGradient([a, b], "\(sa)\(ta ? "ᵀ" : "") · \(sb)\(tb ? "ᵀ" : "")") {
                try Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
            }
        }
    }

    func testOneOperandWithoutGradient() throws {
        let a = randomTensor([2, 3], seed: 1).requiringGrad(), b = randomTensor([3, 2], seed: 2)
        try Tensor.matmul(a, b).sum().backward()
        XCTAssertEqual(a.grad?.shape, [2, 3])
        XCTAssertNil(b.grad)
    }

    func testHalfAndIntegerOperands() throws {
        let a = try Tensor([1, 2, 3, 4] as [Int64], shape: [2, 2]), b = try Tensor([Float(1), 0, 0, 1], shape: [2, 2])
        XCTAssertEqual(try Tensor.matmul(a, a).dtype, .float32)
        XCTAssertEqual(try Tensor.matmul(a, a).floats, [7, 10, 15, 22])
        let h = b.cast(to: .bfloat16)
        XCTAssertEqual(try Tensor.matmul(h, h).dtype, .bfloat16)
        XCTAssertEqual(try Tensor.matmul(h, b).dtype, .float32)
    }
}
