import Foundation
import Tensors

/// The largest |a − b| / max(|b|, floor) over two equal-length arrays (NaN-aware: NaN matches NaN).
public func maxRelativeError(_ a: [Float], _ b: [Double], floor: Double = 1e-6) -> Double {
    precondition(a.count == b.count, "count \(a.count) != \(b.count)")
    var worst = 0.0
    for (x, y) in zip(a, b) {
        if x.isNaN && y.isNaN { continue }
        if x.isInfinite || y.isInfinite { if Double(x) != y { return .infinity }; continue }
        worst = max(worst, abs(Double(x) - y) / max(abs(y), floor))
    }
    return worst
}

/// Whether `a` and `b` agree elementwise within `atol + rtol·|b|`; returns a message for the first failure.
public func closeness(_ a: [Float], _ b: [Double], rtol: Double = 1e-5, atol: Double = 1e-6) -> String? {
    guard a.count == b.count else { return "count \(a.count) != \(b.count)" }
    for (i, (x, y)) in zip(a, b).enumerated() {
        if x.isNaN && y.isNaN { continue }
        if x.isInfinite || y.isInfinite { if Double(x) != y { return "index \(i): \(x) vs \(y)" }; continue }
        if abs(Double(x) - y) > atol + rtol * abs(y) { return "index \(i): \(x) vs \(y) (diff \(abs(Double(x) - y)))" }
    }
    return nil
}

/// Central finite differences, in Double, of a scalar function of a Float32 tensor's values.
///
/// `f` is evaluated on perturbed copies of `x`; the result has x's element count.
public func finiteDifferenceGradient(of x: Tensor, step: Double = 1e-2, _ f: (Tensor) throws -> Double) rethrows -> [Double] {
    let base = x.floats
    var g = [Double](repeating: 0, count: base.count)
    for i in 0..<base.count {
        var plus = base, minus = base
        plus[i] += Float(step); minus[i] -= Float(step)
        let hp = Double(plus[i]) - Double(base[i]), hm = Double(base[i]) - Double(minus[i])
        // Shapes come from `x`, so these constructions cannot fail.
        let fp = try f(try! Tensor(plus, shape: x.shape))
        let fm = try f(try! Tensor(minus, shape: x.shape))
        g[i] = (fp - fm) / (hp + hm)
    }
    return g
}
