import XCTest
@testable import Tensors
import TestSupport

/// PyTorch's type promotion (torch.result_type) and which ops keep integers integer.
final class DTypePromotionTests: XCTestCase {
    func testPromotionTable() {
        // Expected results from torch.result_type on tensors of each pair of dtypes.
        let table: [(DType, DType, DType)] = [
            (.float32, .float16, .float32), (.float32, .bfloat16, .float32), (.float16, .bfloat16, .float32),
            (.float16, .int64, .float16), (.bfloat16, .int32, .bfloat16), (.float32, .int64, .float32),
            (.int32, .int64, .int64), (.bool, .int32, .int32), (.bool, .float16, .float16),
            (.bool, .bool, .bool), (.int32, .int32, .int32), (.bfloat16, .bfloat16, .bfloat16),
            (.float16, .bool, .float16), (.int64, .bool, .int64),
        ]
        for (a, b, r) in table {
            XCTAssertEqual(DType.promoted(a, b), r, "\(a), \(b)")
            XCTAssertEqual(DType.promoted(b, a), r, "\(b), \(a)")
        }
        for a in DType.allCases { XCTAssertEqual(DType.promoted(a, a), a) }
    }

    func testBinaryOpsFollowPromotion() throws {
        for a in DType.allCases {
            for b in DType.allCases {
                let x = Tensor.ones([2], dtype: a), y = Tensor.ones([2], dtype: b)
                let p = DType.promoted(a, b)
                XCTAssertEqual(try (x + y).dtype, p, "\(a) + \(b)")
                XCTAssertEqual(try (x * y).dtype, p, "\(a) * \(b)")
                XCTAssertEqual(try Tensor.maximum(x, y).dtype, p, "maximum \(a) \(b)")
                XCTAssertEqual(try (x / y).dtype, p.isFloatingPoint ? p : .float32, "\(a) / \(b): true division")
                XCTAssertEqual(try Tensor.where(Tensor([true, false]), x, y).dtype, p, "where \(a) \(b)")
            }
        }
    }

    func testIntegerOpsStayExactIntegers() throws {
        let big = Int64(1) << 40 + 1  // Float32 would round this
        let x = Tensor([big, -3]), y = Tensor([Int64(2), 5])
        XCTAssertEqual(try (x + y).int64s, [big + 2, 2])
        XCTAssertEqual(try (x - y).int64s, [big - 2, -8])
        XCTAssertEqual(try (x * y).int64s, [2 * big, -15])
        XCTAssertEqual(try Tensor.maximum(x, y).int64s, [big, 5])
        XCTAssertEqual(try Tensor.minimum(x, y).int64s, [2, -3])
        XCTAssertEqual((-x).int64s, [-big, 3])
        XCTAssertEqual((x + 1).int64s, [big + 1, -2])
        XCTAssertEqual((x * 2).dtype, .int64)
        XCTAssertEqual((x - 1).int64s, [big - 1, -4])
        XCTAssertEqual((1 - x).int64s, [1 - big, 4])
        XCTAssertEqual(x.abs().int64s, [big, 3])
        XCTAssertEqual(x.abs().dtype, .int64)
        XCTAssertEqual(try Tensor.where(Tensor([false, true]), x, y).int64s, [2, -3])
        XCTAssertEqual(try x.reshaped([2, 1]).expanded(to: [2, 2]).int64s, [big, big, -3, -3])
        XCTAssertEqual(try Tensor.concatenated([x, y], axis: 0).int64s, [big, -3, 2, 5])
        XCTAssertEqual((Tensor([Int32(7)]) + 1).dtype, .int32)
        XCTAssertEqual((Tensor([Int32(7)]) * 2.5).dtype, .float32)
        XCTAssertEqual((Tensor([Int32(7)]) * 2.5).floats, [17.5])
        XCTAssertEqual((Tensor([Int32(7)]) / 2).floats, [3.5])
        XCTAssertEqual((Tensor([true, false]) + 1).dtype, .int64)
        // Integer negation and overflow wrap (no trap), like torch's int64.
        XCTAssertEqual((-Tensor([Int64.min])).int64s, [Int64.min])
        XCTAssertEqual(try (Tensor([Int64.max]) + Tensor([Int64(1)])).int64s, [Int64.min])
    }

    func testComparisonsProduceBool() throws {
        let a = Tensor([Float(1), 2, .nan]), b = Tensor([Float(1), 3, .nan])
        XCTAssertEqual(try (a .== b).dtype, .bool)
        XCTAssertEqual(try (a .== b).int64s, [1, 0, 0])
        XCTAssertEqual(try (a .!= b).int64s, [0, 1, 1])
        XCTAssertEqual(try (a .< b).int64s, [0, 1, 0])
        XCTAssertEqual(try (a .<= b).int64s, [1, 1, 0])
        XCTAssertEqual(try (a .> b).int64s, [0, 0, 0])
        XCTAssertEqual(try (a .>= b).int64s, [1, 0, 0])
        XCTAssertEqual((a .> 1.5).int64s, [0, 1, 0])
        XCTAssertEqual((a .< 1.5).int64s, [1, 0, 0])
        XCTAssertEqual((a .== 2).int64s, [0, 1, 0])
        XCTAssertEqual((a .!= 2).int64s, [1, 0, 1])
        let i = Tensor([Int64(1) << 40, 5]), j = Tensor([Int64(1) << 40 + 1, 5])
        XCTAssertEqual(try (i .< j).int64s, [1, 0], "integer comparisons are exact")
        XCTAssertEqual(try (i .== j).dtype, .bool)
        XCTAssertEqual(try (Tensor([Int64(2)]) .< Tensor([Float(2.5)])).int64s, [1])
        XCTAssertEqual(try (Tensor([Float(1), 2], dtype: .bfloat16) .== Tensor([Float(1), 2])).int64s, [1, 1])
        XCTAssertEqual(try (a .< Tensor([Float(2)])).shape, [3], "comparisons broadcast")
    }

    func testHalfTypesComputeInFloat32AndRoundOnce() throws {
        // 3 · 0.3 with the scalar kept at full precision: bf16(0.9) = 0.8984375; rounding the
        // scalar to bf16 first (0.30078125) would give 0.90234375.
        let x = Tensor([Float(3)], dtype: .bfloat16)
        XCTAssertEqual((x * 0.3).dtype, .bfloat16)
        XCTAssertEqual((x * 0.3).floats, [float(fromBFloat16Bits: bfloat16Bits(0.9))])
        XCTAssertEqual((0.3 * x).floats, [float(fromBFloat16Bits: bfloat16Bits(0.9))])
        XCTAssertEqual((x / 0.3).floats, [float(fromBFloat16Bits: bfloat16Bits(10))])
        XCTAssertEqual((x + 0.001).floats, [3])  // 3.001 rounds to 3 in bf16
        let h = Tensor([Float(1)], dtype: .float16)
        XCTAssertEqual((h + 0.0003).floats, [Float(Float16(Float(1.0003)))])
        // Elementwise unary ops keep a half dtype; on integers they give Float32.
        XCTAssertEqual(x.exp().dtype, .bfloat16)
        XCTAssertEqual(Tensor([Int64(1)]).exp().dtype, .float32)
        XCTAssertEqual(Tensor([Int64(4)]).sqrt().floats, [2])
    }

    func testCastsBetweenEveryPair() {
        let values: [Float] = [0, 1, -2, 3.75, -0.5]
        for from in DType.allCases {
            for to in DType.allCases {
                let x = Tensor(values, dtype: from)
                let y = x.cast(to: to)
                XCTAssertEqual(y.dtype, to)
                // The reference: the source value (already in `from`) converted per torch.
                let expected: [Float] = x.floats.map { v in
                    switch to {
                    case .bool: return v != 0 ? 1 : 0
                    case .int32, .int64: return v.rounded(.towardZero)
                    case .bfloat16: return float(fromBFloat16Bits: bfloat16Bits(v))
                    case .float16: return Float(Float16(v))
                    case .float32: return v
                    }
                }
                XCTAssertEqual(y.floats, expected, "\(from) → \(to)")
            }
        }
        XCTAssertEqual(Tensor([Float.nan, 1e20, -1e20]).cast(to: .int64).int64s, [0, .max, .min])
        XCTAssertEqual(Tensor([Int64(1) << 40 + 1]).cast(to: .int32).int64s, [1], "int64 → int32 wraps like torch")
    }
}
