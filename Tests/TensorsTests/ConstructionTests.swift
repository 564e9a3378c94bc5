import XCTest
@testable import Tensors
import TestSupport

/// Building tensors and reading them back: arange, full, ones, zeros, arrays, scalars, item.
final class ConstructionTests: XCTestCase {
    func testArange() throws {
        XCTAssertEqual(try Tensor.arange(0, 5).int64s, [0, 1, 2, 3, 4])
        XCTAssertEqual(try Tensor.arange(0, 5).dtype, .int64)
        XCTAssertEqual(try Tensor.arange(2, 9, step: 3).int64s, [2, 5, 8])
        XCTAssertEqual(try Tensor.arange(2, 8, step: 3).int64s, [2, 5])
        XCTAssertEqual(try Tensor.arange(5, 0, step: -2).int64s, [5, 3, 1])
        XCTAssertEqual(try Tensor.arange(5, 0, step: -1).int64s, [5, 4, 3, 2, 1])
        XCTAssertEqual(try Tensor.arange(3, 3).shape, [0])
        XCTAssertEqual(try Tensor.arange(3, 1).shape, [0])
        XCTAssertEqual(try Tensor.arange(0, 3, dtype: .float32).floats, [0, 1, 2])
        XCTAssertEqual(try Tensor.arange(0, 3, dtype: .int32).dtype, .int32)
        XCTAssertThrowsError(try Tensor.arange(0, 3, step: 0))
    }

    func testFullOnesZeros() {
        for dt in DType.allCases {
            XCTAssertEqual(Tensor.zeros([2, 3], dtype: dt).floats, [Float](repeating: 0, count: 6), "\(dt)")
            XCTAssertEqual(Tensor.ones([2, 1], dtype: dt).floats, [1, 1], "\(dt)")
            XCTAssertEqual(Tensor.ones([], dtype: dt).shape, [])
            XCTAssertEqual(Tensor.zeros([0, 4], dtype: dt).count, 0)
            XCTAssertEqual(Tensor.full([3], value: 2, dtype: dt).dtype, dt)
        }
        XCTAssertEqual(Tensor.full([2], value: -2.75).floats, [-2.75, -2.75])
        XCTAssertEqual(Tensor.full([2], value: -2.75, dtype: .int64).int64s, [-2, -2])
        XCTAssertEqual(Tensor.full([1], value: 0.1, dtype: .bfloat16).floats, [float(fromBFloat16Bits: bfloat16Bits(0.1))])
        XCTAssertEqual(Tensor.full([1], value: 0.1, dtype: .float16).floats, [Float(Float16(Float(0.1)))])
        XCTAssertEqual(Tensor.full([1], value: 3e9, dtype: .int64).int64s, [3_000_000_000])
        XCTAssertEqual(Tensor.full([2], value: 0.5, dtype: .bool).int64s, [1, 1])
        XCTAssertTrue(Tensor.full([1], value: .nan).floats[0].isNaN)
        // Values an integer cannot hold saturate (NaN gives 0), as casts do; they never trap.
        XCTAssertEqual(Tensor.full([1], value: .nan, dtype: .int64).int64s, [0])
        XCTAssertEqual(Tensor.full([1], value: .infinity, dtype: .int64).int64s, [Int64.max])
        XCTAssertEqual(Tensor.full([1], value: -1e30, dtype: .int32).int64s, [Int64(Int32.min)])
    }

    func testArraysAndScalars() throws {
        let t = try Tensor([1, 2, 3, 4, 5, 6] as [Int32], shape: [2, 3])
        XCTAssertEqual(t.dtype, .int32)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.rank, 2)
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.scalars(as: Int.self), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.floats, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor([Float(1.5), -2]).dtype, .float32)
        XCTAssertEqual(Tensor([1.5, -2] as [Double]).dtype, .float32)
        XCTAssertEqual(Tensor([Float16(1.5)]).dtype, .float16)
        XCTAssertEqual(Tensor([true, false]).dtype, .bool)
        XCTAssertEqual(Tensor([1, 2] as [Int]).dtype, .int64)
        XCTAssertEqual(Tensor([Float(1.75), -2.5], dtype: .int64).int64s, [1, -2], "floats truncate toward zero")
        XCTAssertEqual(Tensor([Int64(1) << 40 + 1]).int64s, [Int64(1) << 40 + 1], "int64 is exact")
        let s = Tensor(scalar: Float(3.5))
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.count, 1)
        XCTAssertEqual(try s.item(as: Float.self), 3.5)
        XCTAssertEqual(try s.item(as: Int64.self), 3)
        XCTAssertEqual(try Tensor([Float(7)], shape: [1, 1]).item(as: Double.self), 7)
        XCTAssertEqual(Tensor([Float.nan, .infinity, -.infinity]).scalars(as: Int64.self), [0, .max, .min])
        XCTAssertThrowsError(try Tensor([Float(1), 2], shape: [3]))
        XCTAssertThrowsError(try Tensor([Float](), shape: [-1]))
        XCTAssertEqual(try Tensor([Float](), shape: [2, 0]).shape, [2, 0])
    }

    func testRawBytesRoundTrip() throws {
        let t = try Tensor([Float(1), -2, 3.5, 0], shape: [2, 2])
        let u = try t.withUnsafeBytes { try Tensor(rawBytes: $0, shape: [2, 2], dtype: .float32) }
        XCTAssertEqual(u.floats, t.floats)
        XCTAssertFalse(u.sharesStorage(with: t))
        XCTAssertThrowsError(try t.withUnsafeBytes { try Tensor(rawBytes: $0, shape: [3], dtype: .float32) })
        XCTAssertThrowsError(try t.withUnsafeBytes { try Tensor(rawBytes: $0, shape: [Int.max, 2], dtype: .float32) })
        XCTAssertThrowsError(try t.withUnsafeBytes { try Tensor(rawBytes: $0, shape: [-4, -1], dtype: .float32) })
    }

    func testAllocationMeterCountsLiveStorage() {
        let before = AllocationMeter.currentBytes
        let t = Tensor.zeros([1000])
        XCTAssertGreaterThanOrEqual(AllocationMeter.currentBytes - before, 4000)
        XCTAssertEqual(t.count, 1000)
        let m = AllocationMeter.measure { Tensor.zeros([2000]).count }
        XCTAssertEqual(m.result, 2000)
        XCTAssertGreaterThanOrEqual(m.peakBytes, 8000)
        XCTAssertGreaterThanOrEqual(AllocationMeter.peakBytes, AllocationMeter.currentBytes)
    }
}
