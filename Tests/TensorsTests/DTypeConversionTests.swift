import XCTest
@testable import Tensors
import TestSupport

/// Float32 ↔ bfloat16 / float16 conversions: exact widening, round-to-nearest-even
/// narrowing (ties built from exact bit patterns), NaN, ±inf, ±0, overflow, subnormals,
/// and exhaustive round trips of all 65,536 bit patterns of each half type.
final class DTypeConversionTests: XCTestCase {
    // MARK: bfloat16

    func testBFloat16TiesRoundToEven() {
        // bf16 keeps the top 16 bits; the low 16 are the discarded fraction.
        // 0x3F80_8000: exactly halfway between 0x3F80 (even) and 0x3F81 → 0x3F80.
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80)
        // 0x3F81_8000: halfway between 0x3F81 (odd) and 0x3F82 → 0x3F82.
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82)
        // Just below and above a tie.
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F81_7FFF)), 0x3F81)
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        // Negative ties mirror positive ones.
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0xBF80_8000)), 0xBF80)
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0xBF81_8000)), 0xBF82)
        // A tie that carries into the exponent: 0x3FFF_8000 → 0x4000 (2.0).
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3FFF_8000)), 0x4000)
    }

    func testBFloat16SpecialValues() {
        XCTAssertEqual(bfloat16Bits(0), 0x0000)
        XCTAssertEqual(bfloat16Bits(-0.0), 0x8000)
        XCTAssertEqual(bfloat16Bits(.infinity), 0x7F80)
        XCTAssertEqual(bfloat16Bits(-.infinity), 0xFF80)
        XCTAssertEqual(bfloat16Bits(1), 0x3F80)
        // NaN stays NaN (quiet), whatever its payload, including payloads that live only in the low bits.
        for bits: UInt32 in [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0x7FFF_FFFF, 0xFF80_0001, 0x7F80_8000] {
            let b = bfloat16Bits(Float(bitPattern: bits))
            XCTAssertTrue(float(fromBFloat16Bits: b).isNaN, String(bits, radix: 16))
            XCTAssertEqual(b & 0x8000, UInt16(bits >> 16) & 0x8000, "sign kept")
        }
        // Largest finite bf16 = 0x7F7F; Float.greatestFiniteMagnitude rounds up to inf (RNE).
        XCTAssertEqual(float(fromBFloat16Bits: 0x7F7F), Float(bitPattern: 0x7F7F_0000))
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x7F7F_0000)), 0x7F7F)
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x7F7F_7FFF)), 0x7F7F)
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x7F7F_8000)), 0x7F80, "tie at the top overflows to inf")
        XCTAssertEqual(bfloat16Bits(.greatestFiniteMagnitude), 0x7F80)
        XCTAssertEqual(bfloat16Bits(-.greatestFiniteMagnitude), 0xFF80)
    }

    func testBFloat16Subnormals() {
        // Float32 subnormals keep their top bits: bf16 shares Float32's exponent range.
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x0001_0000)), 0x0001)  // smallest bf16 subnormal
        XCTAssertEqual(float(fromBFloat16Bits: 0x0001), Float(bitPattern: 0x0001_0000))
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x0000_8000)), 0x0000, "half the smallest: tie to even 0")
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x0000_8001)), 0x0001)
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x0001_8000)), 0x0002, "tie to even upward")
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x007F_8000)), 0x0080, "largest subnormal tie rounds to the smallest normal")
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x8000_0001)), 0x8000, "tiny negative → −0")
        XCTAssertEqual(bfloat16Bits(.leastNonzeroMagnitude), 0x0000)
    }

    func testBFloat16ExhaustiveRoundTrip() {
        var mismatches = 0
        for b in 0...UInt16.max {
            let f = float(fromBFloat16Bits: b)
            XCTAssertEqual(f.bitPattern, UInt32(b) << 16)  // widening is exact (a shift)
            if f.isNaN {
                if !float(fromBFloat16Bits: bfloat16Bits(f)).isNaN { mismatches += 1 }
            } else if bfloat16Bits(f) != b {
                mismatches += 1
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testBFloat16AgainstADoubleReferenceOnRandomFloats() {
        // Reference: nearest of the two bf16 neighbours, computed in Double, ties to even mantissa.
        var g = SplitMix64(seed: 3)
        for _ in 0..<20_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            guard f.isFinite else { continue }
            let lo = UInt16(f.bitPattern >> 16), hi = lo &+ 1
            let dLo = Swift.abs(Double(f) - Double(float(fromBFloat16Bits: lo)))
            let upper = float(fromBFloat16Bits: hi)
            // Past the largest finite the next pattern is inf: measure against 2^128.
            let upperD = upper.isInfinite ? Double(sign: f.sign, exponent: 128, significand: 1) : Double(upper)
            let dHi = Swift.abs(Double(f) - upperD)
            let expected = dLo < dHi ? lo : (dHi < dLo ? hi : (lo & 1 == 0 ? lo : hi))
            XCTAssertEqual(bfloat16Bits(f), expected, String(f.bitPattern, radix: 16))
        }
    }

    // MARK: float16

    func testFloat16TiesRoundToEven() {
        // binary16 has 10 fraction bits; Float32 has 23: 13 bits are dropped for normal values.
        // 1 + 2^-11 is halfway between 1 (even) and 1 + 2^-10 → 1.
        XCTAssertEqual(float16Bits(Float(bitPattern: 0x3F80_1000)), 0x3C00)
        // 1 + 3·2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 → 1 + 2^-9.
        XCTAssertEqual(float16Bits(Float(bitPattern: 0x3F80_3000)), 0x3C02)
        XCTAssertEqual(float16Bits(Float(bitPattern: 0x3F80_1001)), 0x3C01)
        XCTAssertEqual(float16Bits(Float(bitPattern: 0x3F80_0FFF)), 0x3C00)
        XCTAssertEqual(float16Bits(Float(bitPattern: 0xBF80_3000)), 0xBC02)
    }

    func testFloat16SpecialValues() {
        XCTAssertEqual(float16Bits(0), 0x0000)
        XCTAssertEqual(float16Bits(-0.0), 0x8000)
        XCTAssertEqual(float16Bits(.infinity), 0x7C00)
        XCTAssertEqual(float16Bits(-.infinity), 0xFC00)
        for bits: UInt32 in [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0x7FFF_FFFF] {
            XCTAssertTrue(float(fromFloat16Bits: float16Bits(Float(bitPattern: bits))).isNaN)
        }
        // Largest finite 65504 = 0x7BFF; halfway to 65536 (= 65520) rounds to even → inf.
        XCTAssertEqual(float(fromFloat16Bits: 0x7BFF), 65504)
        XCTAssertEqual(float16Bits(65504), 0x7BFF)
        XCTAssertEqual(float16Bits(65519.996), 0x7BFF)
        XCTAssertEqual(float16Bits(65520), 0x7C00)
        XCTAssertEqual(float16Bits(1e6), 0x7C00)
        XCTAssertEqual(float16Bits(-1e6), 0xFC00)
    }

    func testFloat16Subnormals() {
        let tiny = Float(bitPattern: 0x3380_0000)  // 2^-24, the smallest subnormal
        XCTAssertEqual(float16Bits(tiny), 0x0001)
        XCTAssertEqual(float(fromFloat16Bits: 0x0001), tiny)
        XCTAssertEqual(float16Bits(tiny / 2), 0x0000, "half the smallest: tie to even 0")
        XCTAssertEqual(float16Bits(tiny * 1.5), 0x0002, "1.5 × smallest: tie to even 2")
        XCTAssertEqual(float16Bits(tiny * 2.5), 0x0002, "2.5 × smallest: tie to even 2")
        XCTAssertEqual(float16Bits(tiny * 0.5000001), 0x0001)
        XCTAssertEqual(float(fromFloat16Bits: 0x03FF), Float(0x3FF) * tiny, "largest subnormal")
        XCTAssertEqual(float16Bits(Float(0x3FF) * tiny + tiny / 2), 0x0400, "tie rounds up to the smallest normal")
        XCTAssertEqual(float16Bits(-tiny / 4), 0x8000)
    }

    func testFloat16ExhaustiveRoundTrip() {
        var mismatches = 0
        for b in 0...UInt16.max {
            let f = float(fromFloat16Bits: b)
            // Widening reference computed from the bit fields, in Double.
            let sign = b >> 15 == 1 ? -1.0 : 1.0, e = Int(b >> 10) & 0x1F, m = Double(b & 0x3FF)
            let ref: Double = e == 0 ? sign * m * 0x1p-24 : (e == 31 ? (m == 0 ? sign * .infinity : .nan)
                                                                     : sign * (1 + m / 1024) * Foundation.pow(2, Double(e - 15)))
            if ref.isNaN { XCTAssertTrue(f.isNaN) } else { XCTAssertEqual(Double(f), ref, String(b, radix: 16)) }
            if f.isNaN {
                if !float(fromFloat16Bits: float16Bits(f)).isNaN { mismatches += 1 }
            } else if float16Bits(f) != b {
                mismatches += 1
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    // MARK: Through tensors

    func testTensorCastsUseTheSameRounding() {
        let bits: [UInt32] = [0x3F80_8000, 0x3F81_8000, 0x7F7F_8000, 0x0000_8000, 0x3F80_1000, 0x3F80_3000, 0x7FC0_0000]
        let x = Tensor(bits.map { Float(bitPattern: $0) })
        let bf = x.cast(to: .bfloat16), h = x.cast(to: .float16)
        let bfBits = bf.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        let hBits = h.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        XCTAssertEqual(bfBits, bits.map { bfloat16Bits(Float(bitPattern: $0)) })
        XCTAssertEqual(hBits, bits.map { float16Bits(Float(bitPattern: $0)) })
        // Storing through a non-cast path (arrays, full) rounds the same way.
        XCTAssertEqual(Tensor(bits.map { Float(bitPattern: $0) }, dtype: .bfloat16).withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }, bfBits)
        // bf16 ↔ f16 goes through Float32 exactly once.
        XCTAssertEqual(bf.cast(to: .float16).floats.map(\.bitPattern), bf.floats.map { Float(Float16($0)).bitPattern })
    }
}
