// Helpers shared by the MTP tests: tensor builders, a float64 cross-entropy
// written from the definition (sharing no code with Sources/Losses), and an
// error-message assertion.
//
// Letters: N rows, V vocabulary, H hidden.

import Foundation
import Losses
import MTP
import Tensors
import XCTest

/// An Int64 tensor of `values` with `shape`.
func int64Tensor(_ values: [Int64], _ shape: [Int]) -> Tensor {
    try! Tensor(values, shape: shape)
}

/// An Int32 tensor of `values` with `shape`.
func int32Tensor(_ values: [Int32], _ shape: [Int]) -> Tensor {
    try! Tensor(values, shape: shape)
}

/// A Float32 tensor of `values` with `shape`.
func floatTensor(_ values: [Float], _ shape: [Int]) -> Tensor {
    try! Tensor(values, shape: shape)
}

/// Per-row float64 cross-entropy `logsumexp(z_i) − z_i[t_i]`, 0 where `t_i == ignoreIndex`.
func referenceRows(_ logits: [Float], vocab v: Int, labels: [Int64], ignoreIndex: Int64 = -100) -> [Double] {
    precondition(logits.count == labels.count * v)
    return labels.enumerated().map { i, t in
        guard t != ignoreIndex else { return 0 }
        let z = logits[(i * v)..<((i + 1) * v)].map { Double($0) }
        let m = z.max()!
        return m + Foundation.log(z.reduce(0) { $0 + Foundation.exp($1 - m) }) - z[Int(t)]
    }
}

/// Float64 logits `h · Wᵀ` of row-major `h [N, H]` and `w [V, H]`.
func referenceLogits(_ h: [Float], _ w: [Float], hidden: Int) -> [Float] {
    let n = h.count / hidden, v = w.count / hidden
    var out = [Float](repeating: 0, count: n * v)
    for i in 0..<n {
        for j in 0..<v {
            var s = 0.0
            for c in 0..<hidden { s += Double(h[i * hidden + c]) * Double(w[j * hidden + c]) }
            out[i * v + j] = Float(s)
        }
    }
    return out
}

/// Asserts that `body` throws an error whose description contains `substring`.
func assertThrows<T>(_ body: @autoclosure () throws -> T, containing substring: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \"\(substring)\", got none", file: file, line: line)
    } catch {
        XCTAssert("\(error)".contains(substring), "error \"\(error)\" does not contain \"\(substring)\"", file: file, line: line)
    }
}

/// Asserts elementwise `|a − b| <= atol + rtol·|b|`.
func assertClose(_ a: [Float], _ b: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard a.count == b.count else {
        return XCTFail("\(message): count \(a.count) != \(b.count)", file: file, line: line)
    }
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(Double(x) - y) <= atol + rtol * abs(y)) {
        return XCTFail("\(message): index \(i): \(x) vs \(y)", file: file, line: line)
    }
}

/// A scalar loss's value in Double.
func value(_ t: Tensor) -> Double { Double(t.floats[0]) }
