import XCTest
@testable import Tensors
import TestSupport

/// Finite-difference checks of the index-driven ops: gather, scatter-add, the
/// fills, roll and embedding (repeated indices must add their gradients).
final class IndexingGradientTests: XCTestCase {
    func testGathered() throws {
        let x = randomTensor([3, 4], seed: 1)
        let cases: [(Int, Tensor)] = [
            (0, try Tensor([2, 0, 1, 2, 0, 0, 2, 1] as [Int64], shape: [2, 4])),
            (1, try Tensor([3, 3, 0, 1, 2, 2] as [Int64], shape: [3, 2])),   // repeated: gradients add
            (-1, try Tensor([-1, 0] as [Int32], shape: [1, 2])),             // negative, int32, smaller off-axis
            (1, try Tensor([Int64](), shape: [3, 0])),
        ]
        for (axis, index) in cases {
            assertGradient([x], "gathered axis \(axis) index \(index.shape)") { try $0[0].gathered(axis: axis, index: index) }
        }
        assertGradient([randomTensor([2, 3, 2], seed: 2)], "gathered 3-D") {
            try $0[0].gathered(axis: 1, index: Tensor([2, 0, 1, 1] as [Int64], shape: [2, 1, 2]))
        }
    }

    func testScatterAddedIntoBothOperands() throws {
        let x = randomTensor([3, 4], seed: 3)
        let cases: [(Int, Tensor, [Int])] = [
            (0, try Tensor([2, 0, 2, 1, 1, 1, 0, 2] as [Int64], shape: [2, 4]), [2, 4]),
            (1, try Tensor([3, 3, 0, 1, 1, 1] as [Int64], shape: [3, 2]), [3, 3]),  // source larger than index
            (-1, try Tensor([-1] as [Int64], shape: [1, 1]), [2, 2]),
            (0, try Tensor([Int64](), shape: [0, 4]), [1, 4]),
        ]
        for (axis, index, sourceShape) in cases {
            let src = randomTensor(sourceShape, seed: 4)
            assertGradient([x, src], "scatterAdded axis \(axis) index \(index.shape) source \(sourceShape)") {
                try $0[0].scatterAdded(axis: axis, index: index, source: $0[1])
            }
        }
    }

    func testMaskFilled() throws {
        let x = randomTensor([2, 3], seed: 5)
        for mask in [try Tensor([true, false, true, false, false, true], shape: [2, 3]),
                     Tensor([false, true, true]),
                     try Tensor([true, false], shape: [2, 1]),
                     Tensor(scalar: false)] {
            assertGradient([x], "maskFilled \(mask.shape)") { try $0[0].maskFilled(where: mask, value: -.infinity).exp() }
            assertGradient([x], "maskFilled \(mask.shape) 0.5") { try $0[0].maskFilled(where: mask, value: 0.5) }
        }
    }

    func testIndexFilled() throws {
        let x = randomTensor([3, 4], seed: 6)
        for (axis, index) in [(0, Tensor([2, 0] as [Int64])), (1, Tensor([-1, 1, 1] as [Int64])),
                              (1, Tensor([Int64]())), (0, Tensor(scalar: Int64(1)))] {
            assertGradient([x], "indexFilled axis \(axis) \(index.int64s)") { try $0[0].indexFilled(axis: axis, index: index, value: 7) }
        }
    }

    func testRolled() {
        let x = randomTensor([3, 4], seed: 7)
        for (shift, axis) in [(1, 0), (-1, 1), (5, 1), (-7, 0), (0, 1), (4, 1), (2, -1)] {
            assertGradient([x], "rolled \(shift) axis \(axis)") { try $0[0].rolled(shifts: shift, axis: axis) }
        }
        assertGradient([randomTensor([0, 2], seed: 1)], "rolled empty") { try $0[0].rolled(shifts: 1, axis: 0) }
    }

    func testEmbedding() throws {
        let w = randomTensor([5, 3], seed: 8)
        for ids in [Tensor([4, 0, 4, 2] as [Int64]),                                // repeated row
                    try Tensor([1, 1, 3, 0, 2, 4] as [Int32], shape: [2, 3]),
                    Tensor(scalar: Int64(2)),
                    try Tensor([Int64](), shape: [0])] {
            assertGradient([w], "embedding \(ids.shape)") { try Tensor.embedding(ids, weight: $0[0]) }
        }
        assertGradient([randomTensor([3, 0], seed: 1)], "embedding H = 0") { try Tensor.embedding(Tensor([Int64(1), 2]), weight: $0[0]) }
    }
}
