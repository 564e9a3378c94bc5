// Test helpers for the Losses tests: an independent Float64 cross-entropy
// (written from the formulas, sharing no code with Sources/Losses), input
// builders and assertions.
//
// Letters: N rows, V vocabulary, H hidden.

import Foundation
import Losses
import Tensors
import TestSupport
import XCTest

/// Float64 cross-entropy from the definition:
///   row_i = logsumexp(ĉ(z_i)) − ĉ(z_i)[t_i],   ĉ(z) = c·tanh(z/c) (identity when c = 0)
///   ∂row_i/∂z_ij = (softmax(ĉ(z_i))_j − [j = t_i]) · ĉ′(z_ij)
enum ReferenceCE {
    struct Result {
        /// `[loss]` for sum/mean, the per-row losses `[N]` for none.
        var value: [Double]
        /// Gradient of `Σ upstream · value` with respect to the (pre-softcap) logits, `[N·V]`.
        var dz: [Double]
    }

    /// - Parameter upstream: one value for sum/mean, N values for none (default all ones).
    static func logits(_ z: [Double], n: Int, v: Int, labels: [Int], ignoreIndex: Int = -100,
                       reduction: LossReduction = .sum, numLabelTokens: Int? = nil, softcap: Double = 0,
                       upstream: [Double]? = nil) -> Result {
        precondition(z.count == n * v && labels.count == n)
        var rows = [Double](repeating: 0, count: n)
        var dz = [Double](repeating: 0, count: n * v)
        var valid = 0
        for i in 0..<n where labels[i] != ignoreIndex {
            valid += 1
            let t = labels[i]
            let raw = Array(z[(i * v)..<((i + 1) * v)])
            let capped = softcap > 0 ? raw.map { softcap * Foundation.tanh($0 / softcap) } : raw
            let m = capped.contains(where: \.isNaN) ? Double.nan : capped.max()!
            let e = capped.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            rows[i] = m + Foundation.log(s) - capped[t]
            for j in 0..<v {
                let dcap = softcap > 0 ? 1 - (capped[j] / softcap) * (capped[j] / softcap) : 1
                dz[i * v + j] = (e[j] / s - (j == t ? 1 : 0)) * dcap
            }
        }
        // Per-row weight of the row gradients, and the reported value.
        var rowWeight = [Double](repeating: 0, count: n)
        let value: [Double]
        switch reduction {
        case .none:
            value = rows
            for i in 0..<n { rowWeight[i] = upstream?[i] ?? 1 }
        case .mean:
            let u = upstream?[0] ?? 1
            value = [valid == 0 ? 0 : rows.reduce(0, +) / Double(valid)]
            for i in 0..<n { rowWeight[i] = valid == 0 ? 0 : u / Double(valid) }
        case .sum:
            let u = upstream?[0] ?? 1
            let divisor = Double(numLabelTokens ?? 1)
            value = [numLabelTokens == 0 ? 0 : rows.reduce(0, +) / divisor]
            for i in 0..<n { rowWeight[i] = numLabelTokens == 0 ? 0 : u / divisor }
        }
        for i in 0..<n {
            let w = labels[i] == ignoreIndex ? 0 : rowWeight[i]
            for j in 0..<v { dz[i * v + j] = w == 0 ? 0 : dz[i * v + j] * w }
        }
        return Result(value: value, dz: dz)
    }

    struct FusedResult {
        var value: [Double]
        var dHidden: [Double]  // [N·H]
        var dWeight: [Double]  // [V·H]
    }

    /// The cross-entropy of `hidden · weightᵀ` and its gradients, all in Float64.
    static func fused(hidden: [Double], weight: [Double], n: Int, h: Int, v: Int, labels: [Int],
                      ignoreIndex: Int = -100, reduction: LossReduction = .sum, numLabelTokens: Int? = nil,
                      softcap: Double = 0, upstream: [Double]? = nil) -> FusedResult {
        var z = [Double](repeating: 0, count: n * v)
        for i in 0..<n { for j in 0..<v {
            var s = 0.0
            for k in 0..<h { s += hidden[i * h + k] * weight[j * h + k] }
            z[i * v + j] = s
        } }
        let r = logits(z, n: n, v: v, labels: labels, ignoreIndex: ignoreIndex, reduction: reduction,
                       numLabelTokens: numLabelTokens, softcap: softcap, upstream: upstream)
        var dh = [Double](repeating: 0, count: n * h), dw = [Double](repeating: 0, count: v * h)
        for i in 0..<n { for j in 0..<v {
            let g = r.dz[i * v + j]
            if g == 0 { continue }
            for k in 0..<h {
                dh[i * h + k] += g * weight[j * h + k]
                dw[j * h + k] += g * hidden[i * h + k]
            }
        } }
        return FusedResult(value: r.value, dHidden: dh, dWeight: dw)
    }
}

// MARK: - Inputs

/// The stored values of a tensor, widened exactly to Double.
func doubles(_ t: Tensor) -> [Double] { t.floats.map { Double($0) } }

/// Labels in `[0, v)` with every `ignoreEvery`-th one (from `ignoreOffset`) set to `ignoreIndex`.
func makeLabels(_ shape: [Int], v: Int, ignoreEvery: Int = 0, ignoreOffset: Int = 0, ignoreIndex: Int = -100,
                seed: UInt64 = 7) -> [Int] {
    var g = SplitMix64(seed: seed)
    let n = shape.reduce(1, *)
    return (0..<n).map { i in
        if ignoreEvery > 0 && i % ignoreEvery == ignoreOffset { return ignoreIndex }
        return Int(g.next() % UInt64(v))
    }
}

/// An Int64 (or Int32) labels tensor.
func labelTensor(_ labels: [Int], _ shape: [Int], dtype: DType = .int64) -> Tensor {
    try! Tensor(labels.map { Int64($0) }, shape: shape, dtype: dtype)
}

/// A tensor of `dtype` holding `values` (rounded to `dtype`).
func tensor(_ values: [Float], _ shape: [Int], dtype: DType = .float32) -> Tensor {
    try! Tensor(values, shape: shape, dtype: dtype)
}

/// The raw bytes of a tensor's storage.
func storageBytes(_ t: Tensor) -> [UInt8] { t.withUnsafeBytes { Array($0) } }

/// A test model exposing an LM head (or none).
struct HeadModel: LMHeadProvider {
    var lmHeadWeight: Tensor?
}

// MARK: - Assertions

/// Fails unless `actual` matches `expected` within `atol + rtol·|expected|` elementwise
/// (NaN matches NaN, infinities must be equal); prints the largest difference.
func assertClose(_ actual: [Float], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
                 _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    if let failure = closeness(actual, expected, rtol: rtol, atol: atol) {
        XCTFail("\(message()): \(failure); max relative error \(maxRelativeError(actual, expected))", file: file, line: line)
    }
}

/// `assertClose` on a tensor's values.
func assertClose(_ actual: Tensor?, _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
                 _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard let actual else { return XCTFail("\(message()): no tensor", file: file, line: line) }
    assertClose(actual.floats, expected, rtol: rtol, atol: atol, message(), file: file, line: line)
}

/// Fails unless `body` throws a ``LossError`` whose message contains every string of `fragments`.
func assertLossError<T>(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                        _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected a LossError containing \(fragments)", file: file, line: line)
    } catch let error as LossError {
        for f in fragments where !error.message.contains(f) {
            XCTFail("LossError message \"\(error.message)\" does not contain \"\(f)\"", file: file, line: line)
        }
    } catch {
        XCTFail("expected a LossError, got \(type(of: error)): \(error)", file: file, line: line)
    }
}

// MARK: - Losses under test

/// A logits loss as a plain function of (logits, labels, mask, numLabelTokens).
typealias LogitsLossFunction = (Tensor, Tensor, Tensor?, Int?) throws -> Tensor

/// MaskedCrossEntropy and ChunkedCrossEntropy at several chunk lengths (1, 3: N is never a
/// multiple; 32: the default), configured alike.
func logitsLosses(_ reduction: LossReduction, ignoreIndex: Int = -100) -> [(name: String, run: LogitsLossFunction)] {
    let masked = MaskedCrossEntropy(ignoreIndex: ignoreIndex, reduction: reduction)
    var out: [(name: String, run: LogitsLossFunction)] = [
        ("masked", { try masked(logits: $0, labels: $1, mask: $2, numLabelTokens: $3) }),
    ]
    for len in [1, 3, 32] {
        let chunked = try! ChunkedCrossEntropy(chunkLen: len, ignoreIndex: ignoreIndex, reduction: reduction)
        out.append(("chunked(\(len))", { try chunked(logits: $0, labels: $1, mask: $2, numLabelTokens: $3) }))
    }
    return out
}

/// Gradient of Σ upstream·loss with respect to `x`: `loss.backward()` for a scalar, `backward(upstream)` else.
func backpropagate(_ loss: Tensor, upstream: [Double]? = nil) throws {
    if loss.rank == 0 {
        try loss.backward(upstream.map { Tensor(scalar: Float($0[0])) })
    } else {
        try loss.backward(Tensor((upstream ?? Array(repeating: 1, count: loss.count)).map { Float($0) }))
    }
}

/// Deterministic upstream gradients: one for a scalar loss, N for `.none`.
func upstreamValues(_ reduction: LossReduction, n: Int, seed: UInt64 = 11) -> [Double] {
    var g = SplitMix64(seed: seed)
    return (0..<(reduction == .none ? n : 1)).map { _ in Double(0.5 + g.nextUniform()) }
}
