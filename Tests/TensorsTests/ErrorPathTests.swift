import XCTest
@testable import Tensors
import TestSupport

/// Caller mistakes throw a TensorError naming the offending values; they never trap.
final class ErrorPathTests: XCTestCase {
    /// Asserts `body` throws a TensorError whose description contains every one of `fragments`.
    func assertThrows(_ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        do {
            _ = try body()
            XCTFail("did not throw", file: file, line: line)
        } catch let error as TensorError {
            for f in fragments where !error.description.contains(f) {
                XCTFail("\"\(error)\" does not mention \(f)", file: file, line: line)
            }
        } catch {
            XCTFail("threw a non-TensorError \(error)", file: file, line: line)
        }
    }

    let x = Tensor.zeros([2, 3])

    func testReshape() {
        assertThrows(["[2, 3]", "[4]"]) { try self.x.reshaped([4]) }
        assertThrows { try self.x.reshaped([-1, -1]) }
        assertThrows { try self.x.reshaped([-1, 4]) }
        assertThrows { try self.x.reshaped([-2, -3]) }
        assertThrows { try Tensor.zeros([0]).reshaped([-1, 0]) }
        assertThrows { try self.x.squeezed(axis: 1) }
    }

    func testBadAxes() {
        assertThrows(["2", "rank 2"]) { try self.x.sum(axis: 2) }
        assertThrows { try self.x.sum(axis: -3) }
        assertThrows { try self.x.mean(axis: 5) }
        assertThrows { try self.x.max(axis: 2) }
        assertThrows { try self.x.argmax(axis: -3) }
        assertThrows { try self.x.logsumexp(axis: 2) }
        assertThrows { try self.x.softmax(axis: 2) }
        assertThrows { try self.x.logSoftmax(axis: -3) }
        assertThrows { try self.x.squeezed(axis: 2) }
        assertThrows { try self.x.unsqueezed(axis: 4) }
        assertThrows { try self.x.unsqueezed(axis: -4) }
        assertThrows { try self.x.permuted([0, 0]) }
        assertThrows { try self.x.permuted([0]) }
        assertThrows { try self.x.permuted([0, 2]) }
        assertThrows { try self.x.transposed(0, 2) }
        assertThrows { try Tensor.zeros([3]).transposed() }
        assertThrows { try self.x.sliced(axis: 2, 0..<1) }
        assertThrows(["0..<4"]) { try self.x.sliced(axis: 1, 0..<4) }
        assertThrows { try self.x.gathered(axis: 2, index: Tensor.zeros([2, 3], dtype: .int64)) }
        assertThrows { try self.x.rolled(shifts: 1, axis: 2) }
        assertThrows { try self.x.indexFilled(axis: -3, index: Tensor([Int64(0)]), value: 0) }
        assertThrows { try Tensor.concatenated([self.x, self.x], axis: 2) }
        assertThrows { try Tensor.stacked([self.x], axis: 3) }
        assertThrows { try self.x.max(axis: 1).argmax(axis: 1) }
        assertThrows { try self.x[2] }
        assertThrows { try self.x[-3] }
    }

    func testAxisOpsOnARankZeroTensorThrow() {
        let s = Tensor(scalar: Float(1))
        assertThrows { try s.squeezed(axis: 0) }
        assertThrows { try s.transposed(0, 0) }
        assertThrows { try s.transposed(0, -1) }
        assertThrows { try s.sliced(axis: 0, 0..<1) }
        assertThrows { try s.rolled(shifts: 1, axis: 0) }
        assertThrows { try s.gathered(axis: 0, index: Tensor(scalar: Int64(0))) }
        assertThrows { try s.scatterAdded(axis: 0, index: Tensor(scalar: Int64(0)), source: s) }
        assertThrows { try s.indexFilled(axis: 0, index: Tensor([Int64(0)]), value: 0) }
        assertThrows { try Tensor.concatenated([s, s], axis: 0) }
        assertThrows { try s[0] }
        assertThrows { try s.max(axis: 1) }
        assertThrows { try s.logsumexp(axis: 1) }
    }

    func testEmptyReductionsThatHaveNoValue() {
        assertThrows { try Tensor.zeros([2, 0]).argmax(axis: 1) }
        assertThrows { try Tensor.zeros([2, 0]).max(axis: 1) }
        assertThrows { try Tensor.zeros([0]).max() }
    }

    func testBroadcastMismatch() {
        let y = Tensor.zeros([4])
        assertThrows(["[2, 3]", "[4]"]) { try self.x + y }
        assertThrows { try self.x - y }
        assertThrows { try self.x * y }
        assertThrows { try self.x / y }
        assertThrows { try Tensor.maximum(self.x, y) }
        assertThrows { try Tensor.minimum(self.x, y) }
        assertThrows { try self.x .== y }
        assertThrows { try self.x .< y }
        assertThrows { try Tensor.where(Tensor([true, false]), self.x, self.x) }
        assertThrows { try Tensor.where(Tensor([true, false, true]), self.x, y) }
        assertThrows { try self.x.expanded(to: [4, 3, 2]) }
        assertThrows { try self.x.expanded(to: [3]) }
        assertThrows { try Tensor.zeros([1]).expanded(to: [-1]) }
        assertThrows { try self.x.maskFilled(where: Tensor([true, false]), value: 0) }
    }

    func testMatmulMismatch() {
        assertThrows(["[2, 3]", "[2, 3]"]) { try Tensor.matmul(self.x, self.x) }
        assertThrows { try Tensor.matmul(self.x, Tensor.zeros([3, 4]), transposeA: true) }
        assertThrows { try Tensor.matmul(Tensor.zeros([2, 2, 3]), Tensor.zeros([3, 3, 4])) }
        assertThrows { try Tensor.matmul(Tensor.zeros([3]), Tensor.zeros([4])) }
        assertThrows { try Tensor.matmul(Tensor(scalar: Float(1)), self.x) }
    }

    func testGatherAndScatterIndices() {
        assertThrows(["7"]) { try self.x.gathered(axis: 1, index: Tensor([0, 7] as [Int64]).reshaped([1, 2])) }
        assertThrows(["-4"]) { try self.x.gathered(axis: 1, index: Tensor([-4] as [Int64]).reshaped([1, 1])) }
        assertThrows { try self.x.gathered(axis: 1, index: Tensor([Float(0)]).reshaped([1, 1])) }
        assertThrows { try self.x.gathered(axis: 1, index: Tensor([true]).reshaped([1, 1])) }
        assertThrows { try self.x.gathered(axis: 1, index: Tensor([Int64(0)])) }
        assertThrows { try self.x.gathered(axis: 1, index: Tensor.zeros([3, 1], dtype: .int64)) }
        assertThrows(["3"]) { try self.x.scatterAdded(axis: 0, index: Tensor([3] as [Int64]).reshaped([1, 1]), source: Tensor.ones([1, 1])) }
        assertThrows { try self.x.scatterAdded(axis: 1, index: Tensor.zeros([2, 2], dtype: .int64), source: Tensor.ones([2, 1])) }
        assertThrows(["5"]) { try self.x.indexFilled(axis: 1, index: Tensor([Int64(5)]), value: 0) }
        assertThrows { try self.x.indexFilled(axis: 1, index: Tensor.zeros([1, 1], dtype: .int64), value: 0) }
    }

    func testEmbeddingOutOfRange() {
        let w = Tensor.zeros([4, 2])
        assertThrows(["4"]) { try Tensor.embedding(Tensor([Int64(1), 4]), weight: w) }
        assertThrows { try Tensor.embedding(Tensor([Int64(-1)]), weight: w) }
        assertThrows { try Tensor.embedding(Tensor([Int64(-5)]), weight: w) }
        assertThrows { try Tensor.embedding(Tensor([Float(1)]), weight: w) }
        assertThrows { try Tensor.embedding(Tensor([Int64(1)]), weight: Tensor.zeros([4])) }
    }

    func testConcatenatedAndStackedShapes() {
        assertThrows(["[2, 3]", "[2, 4]"]) { try Tensor.concatenated([self.x, Tensor.zeros([2, 4])], axis: 0) }
        assertThrows { try Tensor.concatenated([self.x, Tensor.zeros([3])], axis: 0) }
        assertThrows { try Tensor.concatenated([], axis: 0) }
        assertThrows { try Tensor.stacked([self.x, Tensor.zeros([3, 2])]) }
        assertThrows { try Tensor.stacked([]) }
    }

    func testItemAndSearchsorted() {
        assertThrows(["[2, 3]"]) { try self.x.item(as: Float.self) }
        assertThrows { try Tensor.zeros([0]).item(as: Float.self) }
        assertThrows { try self.x.searchsorted(Tensor([Float(1)])) }
        assertThrows { try Tensor.arange(0, 1, step: 0) }
    }

    func testBackward() {
        assertThrows { try self.x.backward() }
        let y = self.x.requiringGrad()
        assertThrows { try y.backward() }
        assertThrows(["[3]"]) { try y.backward(Tensor.zeros([3])) }
    }
}
