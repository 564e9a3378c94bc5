import XCTest
@testable import Tensors
import TestSupport

/// Reductions and the softmax family against Double references, including the
/// extreme inputs a loss meets: ±80, ±1e4, −inf masks, an all −inf row, NaN.
final class ReductionValueTests: XCTestCase {
    // MARK: Double references

    /// `op` applied along `axis` of `values` (row-major `shape`), in Double.
    func reduceReference(_ values: [Double], _ shape: [Int], axis: Int, _ op: ([Double]) -> Double) -> [Double] {
        let outer = shape[..<axis].reduce(1, *), n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        var out: [Double] = []
        for a in 0..<outer { for c in 0..<inner { out.append(op((0..<n).map { values[(a * n + $0) * inner + c] })) } }
        return out
    }

    /// log Σ eˣ in Double, with torch's conventions: NaN anywhere gives NaN, an
    /// all −inf (or empty) row gives −inf, a +inf entry gives +inf.
    func logsumexpReference(_ row: [Double]) -> Double {
        if row.contains(where: \.isNaN) { return .nan }
        guard let m = row.max(), m != -.infinity else { return -.infinity }
        if m == .infinity { return .infinity }
        return m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
    }

    // MARK: sum / mean

    func testSumAndMeanAgainstDouble() throws {
        for shape in [[5], [2, 3], [3, 1, 4], [2, 0], [0, 3]] {
            let x = randomTensor(shape, -10, 10, seed: 3)
            let v = x.floats.map { Double($0) }
            for axis in 0..<shape.count {
                let s = reduceReference(v, shape, axis: axis) { $0.reduce(0, +) }
                XCTAssertNil(closeness(try x.sum(axis: axis).floats, s, rtol: 1e-6, atol: 1e-5), "sum \(shape) \(axis)")
                let m = reduceReference(v, shape, axis: axis) { $0.reduce(0, +) / Double($0.count) }
                XCTAssertNil(closeness(try x.mean(axis: axis).floats, m, rtol: 1e-6, atol: 1e-5), "mean \(shape) \(axis)")
                var kept = shape; kept[axis] = 1
                XCTAssertEqual(try x.sum(axis: axis, keepDims: true).shape, kept)
            }
            XCTAssertNil(closeness(x.sum().floats, [v.reduce(0, +)], rtol: 1e-6, atol: 1e-5))
            XCTAssertEqual(x.sum().shape, [])
        }
        XCTAssertTrue(try Tensor.zeros([0]).mean().item(as: Float.self).isNaN)
        XCTAssertEqual(try Tensor.zeros([0]).sum().item(as: Float.self), 0)
    }

    func testLongSumsAccumulateAccurately() throws {
        // 1 + 1e-8 · 10⁴: a Float32 running sum would drop every small term.
        var v = [Float](repeating: 1e-8, count: 10_000); v[0] = 1
        XCTAssertEqual(try Tensor(v).sum().item(as: Double.self), 1.0001, accuracy: 1e-7)
    }

    func testIntegerSumsAreExactInt64() throws {
        let x = Tensor([Int32.max, Int32.max, 1])
        XCTAssertEqual(x.sum().dtype, .int64)
        XCTAssertEqual(try x.sum().item(as: Int64.self), 2 * Int64(Int32.max) + 1)
        XCTAssertEqual(try Tensor([true, true, false]).sum().item(as: Int64.self), 2)
        XCTAssertEqual(try Tensor([1, 2, 3, 4] as [Int64], shape: [2, 2]).sum(axis: 1).int64s, [3, 7])
        XCTAssertEqual(Tensor([1, 2] as [Int64]).mean().dtype, .float32)
        XCTAssertEqual(try Tensor([1, 2] as [Int64]).mean().item(as: Float.self), 1.5)
    }

    func testHalfTypeReductionsRoundOnce() throws {
        // 128 / 257 must not become 128 / 256 by rounding the count to bfloat16.
        var v = [Float](repeating: 0, count: 257); v[0] = 128
        let x = Tensor(v, dtype: .bfloat16)
        XCTAssertEqual(x.mean().dtype, .bfloat16)
        XCTAssertEqual(try x.mean().item(as: Float.self), float(fromBFloat16Bits: bfloat16Bits(128.0 / 257)))
        XCTAssertEqual(try x.mean(axis: 0).item(as: Float.self), float(fromBFloat16Bits: bfloat16Bits(128.0 / 257)))
    }

    // MARK: max / argmax

    func testMaxAndArgmax() throws {
        let x = try Tensor([Float(1), 5, 5, -2, 7, 7, 0, 0, 0], shape: [3, 3])
        XCTAssertEqual(try x.argmax(axis: 1).int64s, [1, 1, 0], "ties give the first index")
        XCTAssertEqual(try x.argmax(axis: 0).int64s, [0, 1, 1])
        XCTAssertEqual(try x.max(axis: 1).floats, [5, 7, 0])
        XCTAssertEqual(try x.max(axis: 0, keepDims: true).shape, [1, 3])
        XCTAssertEqual(try x.max().item(as: Float.self), 7)
        XCTAssertEqual(try x.argmax(axis: -1, keepDims: true).shape, [3, 1])
        XCTAssertEqual(try Tensor([-Float.infinity, -.infinity]).argmax(axis: 0).int64s, [0])
        XCTAssertEqual(try Tensor([Int64(3), 9, 9, -1]).argmax(axis: 0).int64s, [1])
        XCTAssertEqual(try Tensor([Int64(3), 9, 9, -1]).max(axis: 0).int64s, [9])
        XCTAssertEqual(try Tensor([Int64(3), 9, 9, -1]).max(axis: 0).dtype, .int64)
    }

    func testNaNWinsMaxAndArgmax() throws {
        let x = try Tensor([Float(1), .nan, 3, .nan, 2, 1], shape: [2, 3])
        XCTAssertEqual(try x.argmax(axis: 1).int64s, [1, 0])
        XCTAssertTrue(try x.max(axis: 1).floats.allSatisfy(\.isNaN))
        XCTAssertEqual(try Tensor([Float(5), .infinity, .nan]).argmax(axis: 0).int64s, [2])
        XCTAssertTrue(try Tensor([Float(1), .nan]).max().item(as: Float.self).isNaN)
    }

    // MARK: logsumexp / softmax / logSoftmax at extremes

    static let extremeRows: [[Double]] = [
        [0.5, -1, 2], [80, 80, -80], [-80, -80, -80], [1e4, 1e4 - 1, 0], [-1e4, -1e4, -1e4 + 2],
        [-.infinity, 0, -.infinity], [-.infinity, 3, 1], [-.infinity, -.infinity, -.infinity],
        [.nan, 1, 2], [-.infinity, .nan, -.infinity], [88, 89, 90], [-100, -103, -110],
    ]

    func testLogsumexpAtExtremes() throws {
        for row in Self.extremeRows {
            let x = Tensor(row.map { Float($0) })
            let ref = logsumexpReference(row.map { Double(Float($0)) })
            let got = try x.logsumexp(axis: 0).item(as: Float.self)
            XCTAssertNil(closeness([got], [ref], rtol: 2e-7, atol: 1e-6), "\(row)")
        }
        let special: [([Float], Double)] = [([.infinity, 1], .infinity), ([.infinity, .infinity], .infinity),
                                            ([.infinity, -.infinity], .infinity), ([.infinity, .nan], .nan), ([], -.infinity)]
        for (row, ref) in special {
            XCTAssertNil(closeness([try Tensor(row).logsumexp(axis: 0).item(as: Float.self)], [ref]), "\(row)")
        }
    }

    func testSoftmaxAndLogSoftmaxAtExtremes() throws {
        for row in Self.extremeRows {
            let xs = row.map { Double(Float($0)) }
            let lse = logsumexpReference(xs)
            let logRef = xs.map { lse.isNaN ? .nan : $0 - lse }
            let x = Tensor(row.map { Float($0) })
            // Absolute tolerance relative to the row's scale: logSoftmax = x − lse loses
            // the low bits of x when |x| ≈ 1e4.
            let scale = xs.filter(\.isFinite).map(Swift.abs).max() ?? 1
            XCTAssertNil(closeness(try x.logSoftmax(axis: 0).floats, logRef, rtol: 1e-6, atol: 2e-7 * Swift.max(scale, 1)), "logSoftmax \(row)")
            XCTAssertNil(closeness(try x.softmax(axis: 0).floats, logRef.map(Foundation.exp), rtol: 1e-5, atol: 1e-7 * Swift.max(scale, 1)), "softmax \(row)")
        }
    }

    func testSoftmaxRowsSumToOne() throws {
        let x = randomTensor([4, 7], -30, 30, seed: 9)
        for axis in [0, 1] {
            let s = try x.softmax(axis: axis).sum(axis: axis).floats
            XCTAssertNil(closeness(s, s.map { _ in 1 }, rtol: 1e-6, atol: 1e-6))
        }
    }

    func testSoftmaxOverAnInnerAxisMatchesTheReference() throws {
        let x = randomTensor([2, 3, 4], -5, 5, seed: 2)
        let v = x.floats.map { Double($0) }
        let lse = reduceReference(v, [2, 3, 4], axis: 1, logsumexpReference)
        var ref = v
        for a in 0..<2 {
            for k in 0..<3 {
                for c in 0..<4 {
                    let i = (a * 3 + k) * 4 + c
                    ref[i] = v[i] - lse[a * 4 + c]
                }
            }
        }
        XCTAssertNil(closeness(try x.logSoftmax(axis: 1).floats, ref, rtol: 1e-6, atol: 1e-6))
        XCTAssertNil(closeness(try x.logsumexp(axis: 1).floats, lse, rtol: 1e-6, atol: 1e-6))
        XCTAssertNil(closeness(try x.softmax(axis: -2).floats, ref.map(Foundation.exp), rtol: 1e-5, atol: 1e-7))
    }

    func testHalfTypeSoftmaxKeepsItsDType() throws {
        let x = Tensor([Float(1), 2, 3], dtype: .bfloat16)
        XCTAssertEqual(try x.softmax(axis: 0).dtype, .bfloat16)
        XCTAssertEqual(try x.logsumexp(axis: 0).dtype, .bfloat16)
        XCTAssertEqual(try Tensor([Int64(1), 2]).softmax(axis: 0).dtype, .float32)
    }

    // MARK: rank 0

    func testReductionsOfARankZeroTensor() throws {
        let x = Tensor(scalar: Float(2.5))
        for axis in [0, -1] {
            XCTAssertEqual(try x.sum(axis: axis).floats, [2.5])
            XCTAssertEqual(try x.mean(axis: axis).floats, [2.5])
            XCTAssertEqual(try x.max(axis: axis).floats, [2.5])
            XCTAssertEqual(try x.argmax(axis: axis).int64s, [0])
            XCTAssertEqual(try x.logsumexp(axis: axis).floats, [2.5])
            XCTAssertEqual(try x.softmax(axis: axis).floats, [1])
            XCTAssertEqual(try x.logSoftmax(axis: axis).floats, [0])
            XCTAssertEqual(try x.softmax(axis: axis).shape, [])
        }
        XCTAssertThrowsError(try x.sum(axis: 1))
        XCTAssertThrowsError(try x.argmax(axis: 1))
    }
}
