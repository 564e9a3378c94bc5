import Foundation
import Tensors

/// Compares the gradients `backward()` gives for `f` at `inputs` with central
/// differences, evaluated in Double, of the random projection
/// `L(x₁…xₙ) = Σ r ⊙ f(x₁…xₙ)` (r uniform in [−1, 1), fixed by `seed`).
///
/// Every input is made a leaf (`requiringGrad()`); the analytic gradient is
/// `f(x).backward(r)`, so a leaf the output does not depend on may have no
/// gradient (read as zeros). Only the quotient and the projection are in
/// Double: the op itself runs in Float32, so `step` trades truncation error
/// (∝ step²) against rounding noise (∝ ulp / step).
///
/// - Parameters:
///   - inputs: Float32 tensors at which to differentiate.
///   - seed: seeds the projection r.
///   - step: the finite-difference step.
///   - rtol, atol: an element passes when |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|).
///   - f: the function under test.
/// - Returns: nil when every element of every input passes, else a message naming
///   the first failing input, element and both values.
public func gradientCheck(_ inputs: [Tensor], seed: UInt64 = 0x5EED, step: Double = 3e-3,
                          rtol: Double = 1e-2, atol: Double = 1e-3,
                          _ f: ([Tensor]) throws -> Tensor) throws -> String? {
    let leaves = inputs.map { $0.requiringGrad() }
    let y = try f(leaves)
    guard y.requiresGrad || y.count == 0 || inputs.allSatisfy({ $0.count == 0 }) else {
        return "output does not require a gradient"
    }
    var rng = SplitMix64(seed: seed)
    let r = (0..<y.count).map { _ in Double(2 * rng.nextUniform() - 1) }
    if y.requiresGrad {
        try y.backward(Tensor(r.map { Float($0) }, shape: y.shape))
    }

    func projection(_ xs: [Tensor]) throws -> Double {
        let out = try withoutGrad { try f(xs) }
        guard out.shape == y.shape else { throw GradientCheckError.shapeChanged(y.shape, out.shape) }
        var s = 0.0
        for (ri, v) in zip(r, out.floats) { s += ri * Double(v) }
        return s
    }

    for (k, x) in inputs.enumerated() {
        let analytic: [Float]
        if let g = leaves[k].grad {
            guard g.shape == x.shape else { return "input \(k): grad shape \(g.shape) != input shape \(x.shape)" }
            guard g.dtype == x.dtype else { return "input \(k): grad dtype \(g.dtype) != input dtype \(x.dtype)" }
            analytic = g.floats
        } else {
            analytic = [Float](repeating: 0, count: x.count)
        }
        let base = x.floats
        for i in 0..<base.count {
            var plus = base, minus = base
            plus[i] += Float(step); minus[i] -= Float(step)
            let h = Double(plus[i]) - Double(minus[i])
            var xp = inputs, xm = inputs
            xp[k] = try Tensor(plus, shape: x.shape)
            xm[k] = try Tensor(minus, shape: x.shape)
            let numeric = (try projection(xp) - projection(xm)) / h
            let a = Double(analytic[i])
            if !(Swift.abs(a - numeric) <= atol + rtol * Swift.max(Swift.abs(a), Swift.abs(numeric))) {
                return "input \(k) \(x.shape), element \(i): analytic \(a) vs numeric \(numeric)"
            }
        }
    }
    return nil
}

/// Raised by ``gradientCheck(_:seed:step:rtol:atol:_:)`` when the function under test
/// changes its output shape between evaluations.
public enum GradientCheckError: Error {
    case shapeChanged([Int], [Int])
}

/// Uniform Float32 values in `[low, high)` from `seed` (a thin wrapper that reads better in sweeps).
public func randomTensor(_ shape: [Int], _ low: Float = -1, _ high: Float = 1, seed: UInt64 = 1) -> Tensor {
    Tensor.uniform(shape, low: low, high: high, seed: seed)
}

/// Values in `±[low, high)` with random signs: never within `low` of zero
/// (for ops with a kink or a pole at 0).
public func awayFromZero(_ shape: [Int], _ low: Float = 0.2, _ high: Float = 2, seed: UInt64 = 1) -> Tensor {
    var g = SplitMix64(seed: seed)
    let v = (0..<shape.reduce(1, *)).map { _ -> Float in
        let m = low + (high - low) * g.nextUniform()
        return g.nextUniform() < 0.5 ? -m : m
    }
    return try! Tensor(v, shape: shape)
}

/// Values on the grid `offset + spacing·k` (k random in 0..<levels): two tensors
/// on interleaved grids never tie, and no two entries of one tensor are closer than
/// `spacing` unless equal — for ops with kinks (max, maximum).
public func gridTensor(_ shape: [Int], spacing: Float = 0.25, offset: Float = 0, levels: Int = 16, distinct: Bool = false, seed: UInt64 = 1) -> Tensor {
    var g = SplitMix64(seed: seed)
    let n = shape.reduce(1, *)
    var ks: [Int]
    if distinct {
        precondition(n <= levels, "\(n) distinct values need at least as many levels")
        ks = Array(0..<levels)
        for i in stride(from: levels - 1, to: 0, by: -1) { ks.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        ks = Array(ks.prefix(n))
    } else {
        ks = (0..<n).map { _ in Int(g.next() % UInt64(levels)) }
    }
    return try! Tensor(ks.map { offset + spacing * Float($0) - spacing * Float(levels) / 2 }, shape: shape)
}
