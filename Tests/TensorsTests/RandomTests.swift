import XCTest
@testable import Tensors
import TestSupport

/// The seeded generator: determinism, range, and rough moments.
final class RandomTests: XCTestCase {
    func testSplitMix64MatchesItsReferenceSequence() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference C implementation).
        var g = SplitMix64(seed: 0)
        XCTAssertEqual(g.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(g.next(), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(g.next(), 0x06C4_5D18_8009_454F)
    }

    func testSameSeedSameValues() {
        for dt in [DType.float32, .bfloat16] {
            XCTAssertEqual(Tensor.uniform([7], dtype: dt, seed: 42).floats, Tensor.uniform([7], dtype: dt, seed: 42).floats)
            XCTAssertEqual(Tensor.normal([7], dtype: dt, seed: 42).floats, Tensor.normal([7], dtype: dt, seed: 42).floats)
        }
        XCTAssertNotEqual(Tensor.uniform([7], seed: 1).floats, Tensor.uniform([7], seed: 2).floats)
        XCTAssertNotEqual(Tensor.normal([7], seed: 1).floats, Tensor.normal([7], seed: 2).floats)
        // A generator carried across calls continues its sequence.
        var g = SplitMix64(seed: 9)
        let a = Tensor.uniform([3], generator: &g), b = Tensor.uniform([3], generator: &g)
        XCTAssertEqual(a.floats + b.floats, Tensor.uniform([6], seed: 9).floats)
    }

    func testUniformRangeAndMoments() {
        let v = Tensor.uniform([10_000], low: -2, high: 3, seed: 7).floats.map { Double($0) }
        XCTAssertTrue(v.allSatisfy { $0 >= -2 && $0 < 3 })
        let mean: Double = v.reduce(0, +) / Double(v.count)
        let variance: Double = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)
        XCTAssertEqual(mean, 0.5, accuracy: 0.05)                  // σ/√n ≈ 0.014
        XCTAssertEqual(variance.squareRoot(), 5 / Double(12).squareRoot(), accuracy: 0.03)
    }

    func testNormalMoments() {
        for n in [10_000, 9_999] {  // odd counts use half of the last Box–Muller pair
            let v = Tensor.normal([n], mean: 1.5, std: 2, seed: 11).floats.map { Double($0) }
            XCTAssertTrue(v.allSatisfy { $0.isFinite })
            let mean: Double = v.reduce(0, +) / Double(v.count)
            let sq: Double = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
            let std = (sq / Double(v.count)).squareRoot()
            XCTAssertEqual(mean, 1.5, accuracy: 0.08)              // σ/√n = 0.02
            XCTAssertEqual(std, 2, accuracy: 0.06)
            let within1 = Double(v.filter { Swift.abs($0 - 1.5) < 2 }.count) / Double(n)
            XCTAssertEqual(within1, 0.6827, accuracy: 0.02)
        }
    }

    func testShapesAndDTypes() {
        XCTAssertEqual(Tensor.uniform([2, 0, 3], seed: 1).shape, [2, 0, 3])
        XCTAssertEqual(Tensor.normal([], seed: 1).shape, [])
        XCTAssertEqual(Tensor.normal([4], dtype: .float16, seed: 1).dtype, .float16)
    }
}
