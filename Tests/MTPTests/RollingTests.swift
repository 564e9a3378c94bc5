// SPEC §1: rollTensor, shiftPackedTensor and seqIdx(fromCuSeqlens:length:), with
// every expected value written out by hand.

import Foundation
import MTP
import Tensors
import XCTest

final class RollTensorTests: XCTestCase {
    private let x = floatTensor([1, 2, 3, 4, 5], [5])

    func testNegativeShiftMovesLeftAndZeroFillsTheEnd() throws {
        XCTAssertEqual(try rollTensor(x).floats, [2, 3, 4, 5, 0], "default shift is -1 along the last dim")
        XCTAssertEqual(try rollTensor(x, shifts: -1).floats, [2, 3, 4, 5, 0])
        XCTAssertEqual(try rollTensor(x, shifts: -2).floats, [3, 4, 5, 0, 0])
        XCTAssertEqual(try rollTensor(x, shifts: -4).floats, [5, 0, 0, 0, 0])
    }

    func testPositiveShiftMovesRightAndZeroFillsTheStart() throws {
        XCTAssertEqual(try rollTensor(x, shifts: 1).floats, [0, 1, 2, 3, 4])
        XCTAssertEqual(try rollTensor(x, shifts: 3).floats, [0, 0, 0, 1, 2])
    }

    func testShiftZeroReturnsTheSameValues() throws {
        let y = try rollTensor(x, shifts: 0)
        XCTAssertEqual(y.shape, [5])
        XCTAssertEqual(y.floats, [1, 2, 3, 4, 5])
    }

    func testShiftAtLeastTheLengthZeroesEverything() throws {
        for s in [-5, -6, -12, 5, 7] {
            let y = try rollTensor(x, shifts: s)
            XCTAssertEqual(y.shape, [5])
            XCTAssertEqual(y.floats, [0, 0, 0, 0, 0], "shift \(s) must not wrap around")
        }
    }

    func testExtremeShiftsZeroEverythingWithoutTrapping() throws {
        for s in [Int.min, Int.min + 1, Int.max] {
            let a = x.requiringGrad()
            let y = try rollTensor(a, shifts: s)
            XCTAssertEqual(y.floats, [0, 0, 0, 0, 0], "shift \(s)")
            try y.backward(Tensor.ones([5]))
            XCTAssertEqual(a.grad?.floats ?? [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], "nothing flows back for shift \(s)")
        }
    }

    func testEmptyDimIsReturnedUnchanged() throws {
        let empty = Tensor.zeros([2, 0])
        let y = try rollTensor(empty, shifts: -1, dim: -1)
        XCTAssertEqual(y.shape, [2, 0])
        XCTAssertEqual(y.count, 0)
        // The other dim is not empty and still rolls (no elements either way).
        XCTAssertEqual(try rollTensor(empty, shifts: -1, dim: 0).shape, [2, 0])
    }

    func testOtherDims() throws {
        let m = floatTensor([1, 2, 3,
                             4, 5, 6], [2, 3])
        XCTAssertEqual(try rollTensor(m, shifts: -1, dim: 0).floats, [4, 5, 6, 0, 0, 0])
        XCTAssertEqual(try rollTensor(m, shifts: -1, dim: -2).floats, [4, 5, 6, 0, 0, 0])
        XCTAssertEqual(try rollTensor(m, shifts: 1, dim: 0).floats, [0, 0, 0, 1, 2, 3])
        XCTAssertEqual(try rollTensor(m, shifts: -1, dim: 1).floats, [2, 3, 0, 5, 6, 0])

        // [2, 3, 2]: roll the middle dim; each trailing pair moves as a unit.
        let t = floatTensor((1...12).map { Float($0) }, [2, 3, 2])
        XCTAssertEqual(try rollTensor(t, shifts: -1, dim: 1).floats, [3, 4, 5, 6, 0, 0, 9, 10, 11, 12, 0, 0])
        XCTAssertEqual(try rollTensor(t, shifts: 2, dim: 1).floats, [0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 7, 8])
    }

    func testIntegerLabelsKeepTheirDtype() throws {
        let labels = int64Tensor([7, -100, 3, 9], [4])
        let y = try rollTensor(labels, shifts: -1)
        XCTAssertEqual(y.dtype, .int64)
        XCTAssertEqual(y.int64s, [-100, 3, 9, 0])
        let y32 = try rollTensor(int32Tensor([7, 8, 9], [3]), shifts: 1)
        XCTAssertEqual(y32.dtype, .int32)
        XCTAssertEqual(y32.int64s, [0, 7, 8])
    }

    func testGradientFlowsToTheSourcePositions() throws {
        let upstream = floatTensor([1, 2, 3, 4, 5], [5])
        // Left roll: y[i] = x[i+1], so x[i] receives upstream[i-1]; x[0] fell off.
        let a = x.requiringGrad()
        try rollTensor(a, shifts: -1).backward(upstream)
        XCTAssertEqual(a.grad?.floats, [0, 1, 2, 3, 4])
        // Right roll by 2: y[i] = x[i-2], so x[i] receives upstream[i+2]; x[3], x[4] fell off.
        let b = x.requiringGrad()
        try rollTensor(b, shifts: 2).backward(upstream)
        XCTAssertEqual(b.grad?.floats, [3, 4, 5, 0, 0])
        // Shift 0 passes the gradient through unchanged.
        let c = x.requiringGrad()
        try rollTensor(c, shifts: 0).backward(upstream)
        XCTAssertEqual(c.grad?.floats, [1, 2, 3, 4, 5])
    }

    func testDimOutOfRangeThrows() {
        assertThrows(try rollTensor(x, shifts: -1, dim: 1), containing: "dim 1")
        assertThrows(try rollTensor(x, shifts: -1, dim: -2), containing: "dim -2")
    }
}

final class ShiftPackedTensorTests: XCTestCase {
    /// [B = 2, S = 4].
    private let x = floatTensor([1, 2, 3, 4,
                                 5, 6, 7, 8], [2, 4])
    /// Row 0: sequences {0, 1} {2, 3}; row 1: {0, 1, 2} {3}. Arbitrary ids: only equality matters.
    private let seq = int64Tensor([5, 5, 9, 9,
                                   2, 2, 2, 7], [2, 4])

    func testDepthOneAndTwoWithoutSeqIdx() throws {
        XCTAssertEqual(try shiftPackedTensor(x, depth: 1).floats, [2, 3, 4, 0, 6, 7, 8, 0])
        XCTAssertEqual(try shiftPackedTensor(x, depth: 2).floats, [3, 4, 0, 0, 7, 8, 0, 0])
        XCTAssertEqual(try shiftPackedTensor(x, depth: 4).floats, [0, 0, 0, 0, 0, 0, 0, 0], "depth == S")
        XCTAssertEqual(try shiftPackedTensor(x, depth: 9).floats, [0, 0, 0, 0, 0, 0, 0, 0], "depth > S")
        XCTAssertEqual(try shiftPackedTensor(x, depth: .max, seqIdx: seq).floats, [0, 0, 0, 0, 0, 0, 0, 0], "no overflow")
    }

    func testDepthOneAndTwoWithSeqIdxAndFillValue() throws {
        // Depth 1: t keeps x[t+1] only when t+1 is in t's sequence.
        XCTAssertEqual(try shiftPackedTensor(x, depth: 1, seqIdx: seq, fillValue: -1).floats,
                       [2, -1, 4, -1,
                        6, 7, -1, -1])
        // Depth 2: row 0 has no pair two apart in one sequence; row 1 only (0, 2).
        XCTAssertEqual(try shiftPackedTensor(x, depth: 2, seqIdx: seq, fillValue: -1).floats,
                       [-1, -1, -1, -1,
                        7, -1, -1, -1])
        // Default fill is 0.
        XCTAssertEqual(try shiftPackedTensor(x, depth: 1, seqIdx: seq).floats, [2, 0, 4, 0, 6, 7, 0, 0])
    }

    func testIntegerTensorKeepsItsDtype() throws {
        let labels = int64Tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 4])
        let y = try shiftPackedTensor(labels, depth: 1, seqIdx: seq, fillValue: -100)
        XCTAssertEqual(y.dtype, .int64)
        XCTAssertEqual(y.int64s, [2, -100, 4, -100, 6, 7, -100, -100])
    }

    func testSwappedBatchAndSeqDims() throws {
        // The same data laid out [S = 4, B = 2]; seqIdx stays [B, S].
        let xt = try x.transposed(0, 1)
        let y = try shiftPackedTensor(xt, depth: 1, seqIdx: seq, fillValue: -1, batchDim: 1, seqDim: 0)
        XCTAssertEqual(y.shape, [4, 2])
        XCTAssertEqual(try y.transposed(0, 1).floats, [2, -1, 4, -1, 6, 7, -1, -1])
    }

    func testTrailingFeatureDimMovesWithItsToken() throws {
        // [B = 1, S = 3, H = 2]: token t holds (10t, 10t + 1).
        let h = floatTensor([0, 1, 10, 11, 20, 21], [1, 3, 2])
        let ids = int64Tensor([0, 0, 1], [1, 3])
        XCTAssertEqual(try shiftPackedTensor(h, depth: 1, seqIdx: ids).floats, [10, 11, 0, 0, 0, 0])
        XCTAssertEqual(try shiftPackedTensor(h, depth: 1).floats, [10, 11, 20, 21, 0, 0])
        // Sequence dim last: [B = 1, H = 2, S = 3].
        let hs = try h.transposed(1, 2)
        let y = try shiftPackedTensor(hs, depth: 1, seqIdx: ids, batchDim: 0, seqDim: 2)
        XCTAssertEqual(try y.transposed(1, 2).floats, [10, 11, 0, 0, 0, 0])
    }

    func testGradientFlowsOnlyThroughKeptPositions() throws {
        let a = x.requiringGrad()
        try shiftPackedTensor(a, depth: 1, seqIdx: seq).backward(Tensor.ones([2, 4]))
        // y[t] = x[t+1] at kept t: row 0 keeps t = 0, 2 (sources 1, 3); row 1 keeps t = 0, 1 (sources 1, 2).
        XCTAssertEqual(a.grad?.floats, [0, 1, 0, 1,
                                        0, 1, 1, 0])
    }

    func testErrors() {
        assertThrows(try shiftPackedTensor(floatTensor([1, 2, 3], [3]), depth: 1), containing: "rank")
        assertThrows(try shiftPackedTensor(x, depth: 0), containing: "depth")
        assertThrows(try shiftPackedTensor(x, depth: -1), containing: "-1")
        assertThrows(try shiftPackedTensor(x, depth: 1, batchDim: 1, seqDim: 1), containing: "differ")
        assertThrows(try shiftPackedTensor(x, depth: 1, batchDim: 0, seqDim: -2), containing: "differ")
        assertThrows(try shiftPackedTensor(x, depth: 1, seqIdx: int64Tensor([0, 0, 1, 1], [4])), containing: "[4]")
        assertThrows(try shiftPackedTensor(x, depth: 1, seqIdx: int64Tensor([0, 0, 0, 1, 1, 1], [2, 3])),
                     containing: "[2, 4]")
        // Swapped dims: seqIdx must be [B, S] = [2, 4], not the tensor's [4, 2].
        assertThrows(try shiftPackedTensor(x.transposed(0, 1), depth: 1, seqIdx: int64Tensor(Array(repeating: 0, count: 8), [4, 2]),
                                           batchDim: 1, seqDim: 0), containing: "[2, 4]")
    }
}

final class SeqIdxFromCuSeqlensTests: XCTestCase {
    func testBoundaryTokenBelongsToTheNextSequence() throws {
        // Sequences [0, 3) and [3, 8): token 3 sits on the boundary.
        let s = try seqIdx(fromCuSeqlens: int64Tensor([0, 3, 8], [3]), length: 8)
        XCTAssertEqual(s.dtype, .int64)
        XCTAssertEqual(s.shape, [8])
        XCTAssertEqual(s.int64s, [0, 0, 0, 1, 1, 1, 1, 1])
    }

    func testTailPaddingGetsIndexN() throws {
        // n = 2 sequences cover 6 tokens; positions 6 and 7 are padding.
        let s = try seqIdx(fromCuSeqlens: int64Tensor([0, 2, 6], [3]), length: 8)
        XCTAssertEqual(s.int64s, [0, 0, 1, 1, 1, 1, 2, 2])
    }

    func testRowVectorInputIsSqueezed() throws {
        let s = try seqIdx(fromCuSeqlens: int32Tensor([0, 4, 5, 8], [1, 4]), length: 8)
        XCTAssertEqual(s.shape, [8])
        XCTAssertEqual(s.int64s, [0, 0, 0, 0, 1, 2, 2, 2])
    }

    func testEmptySequenceAndSingleEntry() throws {
        // A zero-length sequence [4, 4) is skipped: token 4 belongs to the third.
        XCTAssertEqual(try seqIdx(fromCuSeqlens: int64Tensor([0, 4, 4, 6], [4]), length: 6).int64s, [0, 0, 0, 0, 2, 2])
        // cu = [0]: no sequence, every token is padding of index n = 0.
        XCTAssertEqual(try seqIdx(fromCuSeqlens: int64Tensor([0], [1]), length: 3).int64s, [0, 0, 0])
    }

    func testErrors() {
        assertThrows(try seqIdx(fromCuSeqlens: int64Tensor([0, 2, 0, 3], [2, 2]), length: 4), containing: "[2, 2]")
        assertThrows(try seqIdx(fromCuSeqlens: int64Tensor([], [0]), length: 4), containing: "[0]")
        assertThrows(try seqIdx(fromCuSeqlens: floatTensor([0, 2, 4], [3]), length: 4), containing: "integer")
    }
}
