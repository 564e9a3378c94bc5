// Floats become integers by one rule wherever it happens — a cast, building an integer
// tensor from floats, reading floats out of an integer tensor, a scalar's int64Value:
// truncation toward zero (PyTorch's), NaN → 0, beyond the range (±inf included) saturating.

import Tensors
import XCTest

final class IntegerConversionTests: XCTestCase {
    private let values: [Float] = [2.7, -2.7, 0.5, -0.5, 1e20, -1e20, .infinity, -.infinity, .nan, 0x1p62, -0x1p63]
    private let int64s: [Int64] = [2, -2, 0, 0, .max, .min, .max, .min, 0, 1 << 62, .min]

    func testCastConstructionAndScalarsAgree() throws {
        XCTAssertEqual(Tensor(values).cast(to: .int64).int64s, int64s, "cast")
        XCTAssertEqual(try Tensor(values, shape: [values.count], dtype: .int64).int64s, int64s, "construction")
        XCTAssertEqual(values.map(\.int64Value), int64s, "Float.int64Value")
        XCTAssertEqual(values.map { Double($0).int64Value }, int64s, "Double.int64Value")
        XCTAssertEqual(Tensor(values).scalars(as: Int64.self), int64s, "read-back")
        XCTAssertEqual(values.map { Tensor.full([1], value: Double($0), dtype: .int64).int64s[0] }, int64s, "full")
    }

    func testInt32SaturatesByTheSameRule() throws {
        let int32s = int64s.map { Int32(clamping: $0) }
        XCTAssertEqual(Tensor(values).cast(to: .int32).scalars(as: Int32.self), int32s, "cast")
        XCTAssertEqual(try Tensor(values, shape: [values.count], dtype: .int32).scalars(as: Int32.self), int32s, "construction")
        XCTAssertEqual(Tensor(values).scalars(as: Int32.self), int32s, "read-back")
        XCTAssertEqual(values.map { Tensor.full([1], value: Double($0), dtype: .int32).scalars(as: Int32.self)[0] }, int32s, "full")
        XCTAssertEqual(Tensor([Float(3e9)]).cast(to: .int32).scalars(as: Int32.self), [.max], "no wrap-around")
    }

    func testBoolIsNonZeroEverywhere() throws {
        let bools = values.map { $0 != 0 }
        XCTAssertEqual(Tensor(values).cast(to: .bool).scalars(as: Bool.self), bools, "cast")
        XCTAssertEqual(try Tensor(values, shape: [values.count], dtype: .bool).scalars(as: Bool.self), bools, "construction")
    }
}
