import XCTest
@testable import Tensors
import TestSupport

/// Values of the index-driven ops against hand-written (torch-documented) results.
final class IndexingValueTests: XCTestCase {
    func testSearchsortedLeftAndRight() throws {
        let seq = Tensor([Int64(1), 3, 3, 5, 9])
        let values = Tensor([Int64(0), 1, 3, 4, 5, 9, 10])
        XCTAssertEqual(try seq.searchsorted(values).int64s, [0, 0, 1, 3, 3, 4, 5])
        XCTAssertEqual(try seq.searchsorted(values, right: true).int64s, [0, 1, 3, 3, 4, 5, 5])
        // Float sequence, 2-D values keep their shape.
        let fs = Tensor([Float(-1), 0.5, 2])
        let fv = try Tensor([Float(-2), -1, 0.5, 0.6, 2, 3], shape: [2, 3])
        XCTAssertEqual(try fs.searchsorted(fv).int64s, [0, 0, 1, 2, 2, 3])
        XCTAssertEqual(try fs.searchsorted(fv, right: true).int64s, [0, 1, 2, 2, 3, 3])
        XCTAssertEqual(try fs.searchsorted(fv).shape, [2, 3])
        XCTAssertEqual(try fs.searchsorted(fv).dtype, .int64)
        // Empty sequence and empty values.
        XCTAssertEqual(try Tensor([Int64]()).searchsorted(Tensor([Int64(4)])).int64s, [0])
        XCTAssertEqual(try seq.searchsorted(Tensor([Int64]())).int64s, [])
        // Mixed: integer sequence, float values.
        XCTAssertEqual(try seq.searchsorted(Tensor([Float(2.5), 3])).int64s, [1, 1])
    }

    func testSearchsortedOnCumulativeLengths() throws {
        // The seq-index use: token t belongs to document searchsorted(cuSeqlens, t, right) − 1.
        let cu = Tensor([Int32(0), 3, 5, 9])
        let t = try Tensor.arange(0, 9, dtype: .int32)
        XCTAssertEqual(try (cu.searchsorted(t, right: true) - 1).int64s, [0, 0, 0, 1, 1, 2, 2, 2, 2])
    }

    func testRolledWithNegativeAndOversizeShifts() throws {
        let x = Tensor([Int64(0), 1, 2, 3, 4])
        for (shift, expected) in [(1, [4, 0, 1, 2, 3]), (-1, [1, 2, 3, 4, 0]), (7, [3, 4, 0, 1, 2]),
                                  (-12, [2, 3, 4, 0, 1]), (0, [0, 1, 2, 3, 4]), (5, [0, 1, 2, 3, 4]), (-5, [0, 1, 2, 3, 4])] as [(Int, [Int64])] {
            XCTAssertEqual(try x.rolled(shifts: shift, axis: 0).int64s, expected, "shift \(shift)")
        }
        let m = try Tensor([Float(0), 1, 2, 3, 4, 5], shape: [2, 3])
        XCTAssertEqual(try m.rolled(shifts: 1, axis: 1).floats, [2, 0, 1, 5, 3, 4])
        XCTAssertEqual(try m.rolled(shifts: -1, axis: 0).floats, [3, 4, 5, 0, 1, 2])
        XCTAssertEqual(try m.rolled(shifts: -4, axis: -1).floats, [1, 2, 0, 4, 5, 3])
        XCTAssertEqual(try m.rolled(shifts: Int.min, axis: 1).shape, [2, 3])
        XCTAssertEqual(try Tensor.zeros([0, 3]).rolled(shifts: 2, axis: 0).shape, [0, 3])
    }

    func testRolledGradientWithAnExtremeShift() throws {
        let x = Tensor([Float(1), 2, 3]).requiringGrad()
        try x.rolled(shifts: Int.min, axis: 0).backward(Tensor([Float(1), 2, 3]))
        // Int.min ≡ 1 (mod 3): out[i] = x[i − 1], so dx[i] = g[i + 1].
        XCTAssertEqual(x.grad?.floats, [2, 3, 1])
    }

    func testGatheredAndScatterAdded() throws {
        let x = try Tensor([Float(10), 11, 12, 20, 21, 22], shape: [2, 3])
        let idx = try Tensor([2, 0, 1, 1] as [Int64], shape: [2, 2])
        XCTAssertEqual(try x.gathered(axis: 1, index: idx).floats, [12, 10, 21, 21])
        XCTAssertEqual(try x.gathered(axis: 0, index: try Tensor([1, 0, 1] as [Int64], shape: [1, 3])).floats, [20, 11, 22])
        XCTAssertEqual(try x.gathered(axis: 1, index: try Tensor([-1] as [Int64], shape: [1, 1])).floats, [12])
        // torch.scatter_add: out[i][index[i][j]] += src[i][j]
        let src = try Tensor([Float(1), 2, 3, 4, 5, 6], shape: [2, 3])
        XCTAssertEqual(try Tensor.zeros([2, 3]).scatterAdded(axis: 1, index: idx, source: src).floats, [2, 0, 1, 0, 9, 0])
        XCTAssertEqual(try x.scatterAdded(axis: 0, index: try Tensor([1, 1, 0] as [Int64], shape: [1, 3]), source: src).floats,
                       [10, 11, 15, 21, 23, 22])
    }

    func testGatherAndScatterKeepIntegerValuesExact() throws {
        let big = Int64(1) << 40 + 1  // not representable in Float32
        let x = try Tensor([big, 2, 3, big + 2], shape: [2, 2])
        XCTAssertEqual(try x.gathered(axis: 1, index: try Tensor([1, 0, 1, 1] as [Int64], shape: [2, 2])).int64s, [2, big, big + 2, big + 2])
        let s = try x.scatterAdded(axis: 0, index: try Tensor([0, 0] as [Int64], shape: [1, 2]), source: try Tensor([Int64(1), 1], shape: [1, 2]))
        XCTAssertEqual(s.dtype, .int64)
        XCTAssertEqual(s.int64s, [big + 1, 3, 3, big + 2])
    }

    func testIndexFilledAndMaskFilled() throws {
        let x = try Tensor([Float(1), 2, 3, 4, 5, 6], shape: [2, 3])
        XCTAssertEqual(try x.indexFilled(axis: 1, index: Tensor([Int64(0), -1]), value: -1).floats, [-1, 2, -1, -1, 5, -1])
        XCTAssertEqual(try x.indexFilled(axis: 0, index: Tensor([Int32(1)]), value: 0).floats, [1, 2, 3, 0, 0, 0])
        XCTAssertEqual(try x.maskFilled(where: Tensor([true, false, true]), value: -.infinity).floats,
                       [-.infinity, 2, -.infinity, -.infinity, 5, -.infinity])
        XCTAssertEqual(try x.maskFilled(where: try Tensor([false, true], shape: [2, 1]), value: 9).floats, [1, 2, 3, 9, 9, 9])
        // Integer tensors stay integer.
        let i = Tensor([Int64(1), 2, 3])
        let f = try i.maskFilled(where: Tensor([false, true, false]), value: -100)
        XCTAssertEqual(f.dtype, .int64)
        XCTAssertEqual(f.int64s, [1, -100, 3])
        XCTAssertEqual(try i.indexFilled(axis: 0, index: Tensor([Int64(2)]), value: 7).int64s, [1, 2, 7])
        // Half types stay half.
        XCTAssertEqual(try x.cast(to: .bfloat16).maskFilled(where: Tensor([true, false, false]), value: 0).dtype, .bfloat16)
    }

    func testEmbeddingLooksUpRows() throws {
        let w = try Tensor([Float(0), 1, 10, 11, 20, 21], shape: [3, 2])
        let e = try Tensor.embedding(try Tensor([2, 0, 2, 1] as [Int32], shape: [2, 2]), weight: w)
        XCTAssertEqual(e.shape, [2, 2, 2])
        XCTAssertEqual(e.floats, [20, 21, 0, 1, 20, 21, 10, 11])
        XCTAssertEqual(try Tensor.embedding(Tensor([Int64]()), weight: w).shape, [0, 2])
        XCTAssertEqual(try Tensor.embedding(w.cast(to: .bfloat16).argmax(axis: 1), weight: w.cast(to: .bfloat16)).dtype, .bfloat16)
    }
}
