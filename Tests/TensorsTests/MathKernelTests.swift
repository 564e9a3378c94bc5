import XCTest
@testable import Tensors
import TestSupport

/// The vectorised exp/log kernels against Foundation's double-precision exp/log,
/// measured in units in the last place of the correctly rounded Float32 result.
///
/// The sweep visits every `stride`-th Float32 bit pattern (both signs, all
/// exponents) plus a dense sweep where the functions are not constant; an
/// exhaustive sweep of all 2³² inputs (release build) is what the comment at the
/// top of MathKernels.swift reports.
final class MathKernelTests: XCTestCase {
    /// |got − exact| in ulps of the Float32 nearest to `exact` (the smaller ulp just
    /// below a power of two; subnormal ulp = 2⁻¹⁴⁹). A wrong inf/NaN counts as infinite.
    static func ulpError(_ got: Float, _ exact: Double) -> Double {
        if exact.isNaN { return got.isNaN ? 0 : .infinity }
        let nearest = Float(exact)
        if nearest.isInfinite { return got == nearest ? 0 : .infinity }
        if !got.isFinite { return .infinity }
        let below = Float(Swift.abs(exact)).nextDown
        let ulp = Swift.max(Double(Swift.min(Swift.abs(nearest).ulp, below.ulp)), Double(Float.leastNonzeroMagnitude))
        return Swift.abs(Double(got) - exact) / ulp
    }

    /// The worst ulp error of `kernel` against `reference` over `inputs`, and where.
    static func worst(_ inputs: [Float], _ kernel: (SIMD8<Float>) -> SIMD8<Float>, _ reference: (Double) -> Double) -> (ulps: Double, at: Float) {
        var out = [Float](repeating: 0, count: inputs.count)
        inputs.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in VectorMath.map(i.baseAddress!, o.baseAddress!, count: inputs.count, kernel) }
        }
        var w = (ulps: 0.0, at: Float(0))
        for (x, y) in zip(inputs, out) {
            let e = ulpError(y, reference(Double(x)))
            if e > w.ulps { w = (e, x) }
        }
        return w
    }

    /// Every `stride`-th bit pattern of all 2³² (a prime stride hits every exponent and both signs).
    static func strided(_ stride: UInt64) -> [Float] {
        Swift.stride(from: UInt64(0), to: 1 << 32, by: Int(stride)).map { Float(bitPattern: UInt32($0)) }
    }

    /// `count` evenly spaced bit patterns of the floats in `[low, high]` (same sign).
    static func dense(_ low: Float, _ high: Float, count: Int) -> [Float] {
        let a = UInt64(low.bitPattern), b = UInt64(high.bitPattern)
        let (lo, hi) = (Swift.min(a, b), Swift.max(a, b))
        let step = Swift.max(1, (hi - lo) / UInt64(count))
        return Swift.stride(from: lo, through: hi, by: Int(step)).map { Float(bitPattern: UInt32($0)) }
    }

    static let sweep = strided(40_009)  // ≈ 107k patterns

    func testExpIsWithinTwoUlpsOverTheFloatRange() {
        let inputs = Self.sweep + Self.dense(0, 88.8, count: 40_000) + Self.dense(-0.0, -104, count: 40_000)
        let w = Self.worst(inputs, VectorMath.exp, Foundation.exp)
        XCTAssertLessThanOrEqual(w.ulps, 2, "exp: \(w.ulps) ulp at \(w.at)")
    }

    func testLogIsWithinTwoUlpsOverTheFloatRange() {
        let inputs = Self.sweep + Self.dense(0.5, 2, count: 40_000) + Self.dense(.leastNonzeroMagnitude, .leastNormalMagnitude, count: 10_000)
        let w = Self.worst(inputs, VectorMath.log, Foundation.log)
        XCTAssertLessThanOrEqual(w.ulps, 2, "log: \(w.ulps) ulp at \(w.at)")
    }

    /// The exhaustive sweep behind the numbers in MathKernels.swift (≈ 7 CPU-minutes in a
    /// release build): `MTP_EXHAUSTIVE_ULP=1 swift test -c release --filter MathKernelTests`.
    func testExhaustiveSweepOnRequest() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["MTP_EXHAUSTIVE_ULP"] == "1", "set MTP_EXHAUSTIVE_ULP=1 to run")
        var worstExp = (ulps: 0.0, at: Float(0)), worstLog = worstExp
        let chunk: UInt64 = 1 << 22
        for start in Swift.stride(from: UInt64(0), to: 1 << 32, by: Int(chunk)) {
            let inputs = (start..<(start + chunk)).map { Float(bitPattern: UInt32($0)) }
            let e = Self.worst(inputs, VectorMath.exp, Foundation.exp), l = Self.worst(inputs, VectorMath.log, Foundation.log)
            if e.ulps > worstExp.ulps { worstExp = e }
            if l.ulps > worstLog.ulps { worstLog = l }
        }
        print("exhaustive: exp \(worstExp.ulps) ulp at \(worstExp.at), log \(worstLog.ulps) ulp at \(worstLog.at)")
        XCTAssertLessThanOrEqual(worstExp.ulps, 2)
        XCTAssertLessThanOrEqual(worstLog.ulps, 2)
    }

    func testExpSpecialValues() {
        XCTAssertEqual(VectorMath.exp(0), 1)
        XCTAssertEqual(VectorMath.exp(-0.0), 1)
        XCTAssertEqual(VectorMath.exp(.infinity), .infinity)
        XCTAssertEqual(VectorMath.exp(-.infinity), 0)
        XCTAssertTrue(VectorMath.exp(.nan).isNaN)
        XCTAssertEqual(VectorMath.exp(.leastNonzeroMagnitude), 1)
        XCTAssertEqual(VectorMath.exp(-.leastNonzeroMagnitude), 1)
        XCTAssertEqual(VectorMath.exp(1), Float(M_E), accuracy: Float(M_E).ulp)
        // Largest finite result and the overflow edge: e^88.72283 < Float.max < e^88.722840.
        XCTAssertLessThanOrEqual(Self.ulpError(VectorMath.exp(88.72), Foundation.exp(Double(Float(88.72)))), 2)
        XCTAssertTrue(VectorMath.exp(88.72283).isFinite)
        XCTAssertEqual(VectorMath.exp(88.72284), .infinity)
        XCTAssertEqual(VectorMath.exp(1000), .infinity)
        // Underflow: e^−103.97 is just above half the smallest subnormal; e^−103.98 just below.
        XCTAssertEqual(VectorMath.exp(-103.97), .leastNonzeroMagnitude)
        XCTAssertEqual(VectorMath.exp(-103.98), 0)
        XCTAssertEqual(VectorMath.exp(-1000), 0)
        // Subnormal results round correctly to within the bound.
        for x: Float in [-87.5, -90, -95.3, -100, -103] {
            XCTAssertLessThanOrEqual(Self.ulpError(VectorMath.exp(x), Foundation.exp(Double(x))), 2, "\(x)")
            XCTAssertGreaterThan(VectorMath.exp(x), 0)
        }
    }

    func testLogSpecialValues() {
        XCTAssertEqual(VectorMath.log(0), -.infinity)
        XCTAssertEqual(VectorMath.log(-0.0), -.infinity)
        XCTAssertEqual(VectorMath.log(.infinity), .infinity)
        XCTAssertTrue(VectorMath.log(-.infinity).isNaN)
        XCTAssertTrue(VectorMath.log(.nan).isNaN)
        XCTAssertTrue(VectorMath.log(-1).isNaN)
        XCTAssertTrue(VectorMath.log(-.leastNonzeroMagnitude).isNaN)
        XCTAssertEqual(VectorMath.log(1), 0)
        XCTAssertEqual(VectorMath.log(Float(M_E)), 1, accuracy: Float(1).ulp)
        let edges: [Float] = [.leastNonzeroMagnitude, .leastNormalMagnitude, Float.leastNormalMagnitude.nextDown,
                              Float(bitPattern: 0x0000_0300), .greatestFiniteMagnitude, Float(1).nextUp, Float(1).nextDown, 2, 0.5]
        for x in edges {
            XCTAssertLessThanOrEqual(Self.ulpError(VectorMath.log(x), Foundation.log(Double(x))), 2, "\(x)")
        }
    }

    func testScalarAndVectorFormsAgreeAndTailsAreHandled() {
        let xs: [Float] = (0..<21).map { Float($0) * 0.37 - 3 }  // 21: two full vectors and a tail of 5
        var out = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { o in VectorMath.map(i.baseAddress!, o.baseAddress!, count: xs.count, VectorMath.exp) } }
        XCTAssertEqual(out, xs.map { VectorMath.exp($0) })
        let inputs: [Float] = [1, 2, 0, -1, .infinity, .nan, Float.leastNormalMagnitude / 1000, 10]
        let lane = VectorMath.log(SIMD8<Float>(inputs))
        for i in 0..<8 {
            let s = VectorMath.log(inputs[i])
            XCTAssertTrue(lane[i] == s || (lane[i].isNaN && s.isNaN), "\(inputs[i])")
        }
    }

    func testTensorExpAndLogUseTheKernelsOnEveryBlock() throws {
        // Large enough that the parallel split runs (more than 8 blocks of 8192).
        let n = 8192 * 9 + 3
        let x = Tensor.uniform([n], low: -20, high: 20, seed: 5)
        let y = x.exp().floats, xs = x.floats
        var bad = 0
        for i in Swift.stride(from: 0, to: n, by: 1) where y[i] != VectorMath.exp(xs[i]) { bad += 1 }
        XCTAssertEqual(bad, 0)
        let l = x.abs().log().floats
        XCTAssertEqual(l[n - 1], VectorMath.log(Swift.abs(xs[n - 1])))
        XCTAssertEqual(l[0], VectorMath.log(Swift.abs(xs[0])))
    }
}
