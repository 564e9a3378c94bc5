// Shared helpers of the NN tests: naive float64 references of every layer
// (written independently of the kernels: plain loops, HF formulas), tensor
// builders, and a gradient check over a layer's inputs and parameters.

import Foundation
import NN
import Tensors
import TestSupport
import XCTest

func doubles(_ t: Tensor) -> [Double] { t.floats.map { Double($0) } }

/// An int64 tensor of the given values and shape.
func intTensor(_ values: [Int], _ shape: [Int]) -> Tensor {
    try! Tensor(values.map { Int64($0) }, shape: shape)
}

/// Position ids 0..<S for every row.
func positionIDs(batch: Int, length: Int, offset: Int = 0) -> Tensor {
    intTensor((0..<(batch * length)).map { offset + $0 % length }, [batch, length])
}

func assertClose(_ actual: Tensor, _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
                 file: StaticString = #filePath, line: UInt = #line) {
    if let message = closeness(actual.floats, expected, rtol: rtol, atol: atol) {
        XCTFail(message, file: file, line: line)
    }
}

/// The largest |a − b| over two tensors of one shape.
func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    return zip(a.floats, b.floats).map { abs($0 - $1) }.max() ?? 0
}

/// The `[B, S, H]` rows `rows` of batch row `b` flattened, for comparing parts of outputs.
func tokens(_ t: Tensor, batch b: Int, _ rows: Range<Int>) -> [Float] {
    let (s, h) = (t.shape[1], t.shape[2])
    let all = t.floats
    return Array(all[(b * s + rows.lowerBound) * h..<(b * s + rows.upperBound) * h])
}

/// ``gradientCheck`` over `inputs` and the current values of `parameters`: the parameters
/// are set from the checked leaves for each evaluation and restored afterwards.
func layerGradientCheck(_ inputs: [Tensor], parameters: [Parameter], seed: UInt64 = 0x5EED, step: Double = 3e-3,
                        rtol: Double = 1e-2, atol: Double = 1e-3,
                        _ f: ([Tensor]) throws -> Tensor) throws -> String? {
    let saved = parameters.map(\.value)
    defer { for (p, v) in zip(parameters, saved) { p.value = v } }
    let n = inputs.count
    return try gradientCheck(inputs + saved.map { $0.detached() }, seed: seed, step: step, rtol: rtol, atol: atol) { xs in
        for (p, x) in zip(parameters, xs[n...]) { p.value = x }
        return try f(Array(xs[..<n]))
    }
}

/// Naive float64 implementations (row-major arrays, plain loops).
enum Naive {
    /// y = x·Wᵀ (+ b): x [rows, inF], w [outF, inF].
    static func linear(_ x: [Double], _ w: [Double], bias: [Double]? = nil, inF: Int, outF: Int) -> [Double] {
        let rows = x.count / inF
        var y = [Double](repeating: 0, count: rows * outF)
        for r in 0..<rows {
            for o in 0..<outF {
                var s = bias?[o] ?? 0
                for i in 0..<inF { s += x[r * inF + i] * w[o * inF + i] }
                y[r * outF + o] = s
            }
        }
        return y
    }

    static func rmsNorm(_ x: [Double], _ w: [Double], eps: Double) -> [Double] {
        let d = w.count, rows = x.count / d
        var y = x
        for r in 0..<rows {
            let ms = (0..<d).map { x[r * d + $0] * x[r * d + $0] }.reduce(0, +) / Double(d)
            let inv = 1 / (ms + eps).squareRoot()
            for j in 0..<d { y[r * d + j] = x[r * d + j] * inv * w[j] }
        }
        return y
    }

    /// HF apply_rotary_pos_emb on [B, n, S, d]: x·cos + rotate_half(x)·sin, cos = cat(c, c).
    static func rope(_ x: [Double], batch: Int, heads: Int, length: Int, dim: Int, positions: [Int], base: Double = 10_000) -> [Double] {
        let half = dim / 2
        let invFreq = (0..<half).map { 1 / pow(base, Double(2 * $0) / Double(dim)) }
        var y = x
        for b in 0..<batch {
            for h in 0..<heads {
                for t in 0..<length {
                    let pos = Double(positions[positions.count == length ? t : b * length + t])
                    let emb = (invFreq + invFreq).map { pos * $0 }
                    let o = ((b * heads + h) * length + t) * dim
                    let row = Array(x[o..<(o + dim)])
                    let rotated = row[half...].map { -$0 } + row[..<half]
                    for j in 0..<dim { y[o + j] = row[j] * cos(emb[j]) + rotated[j] * sin(emb[j]) }
                }
            }
        }
        return y
    }

    /// Causal, document-masked softmax attention on [B, n, S, d].
    static func attention(_ q: [Double], _ k: [Double], _ v: [Double], batch: Int, heads: Int, length: Int, dim: Int,
                          seqIdx: [Int]?) -> [Double] {
        var out = [Double](repeating: 0, count: q.count)
        let c = 1 / Double(dim).squareRoot()
        for b in 0..<batch {
            for h in 0..<heads {
                let base = (b * heads + h) * length * dim
                for i in 0..<length {
                    var scores = [Double](repeating: -.infinity, count: length)
                    for j in 0...i where seqIdx == nil || seqIdx![b * length + j] == seqIdx![b * length + i] {
                        var s = 0.0
                        for e in 0..<dim { s += q[base + i * dim + e] * k[base + j * dim + e] }
                        scores[j] = s * c
                    }
                    let m = scores.max()!
                    let ex = scores.map { exp($0 - m) }
                    let z = ex.reduce(0, +)
                    for e in 0..<dim {
                        var s = 0.0
                        for j in 0..<length { s += ex[j] / z * v[base + j * dim + e] }
                        out[base + i * dim + e] = s
                    }
                }
            }
        }
        return out
    }

    /// [B, S, n·d] → [B, n, S, d] and back (`inverse`).
    static func splitHeads(_ x: [Double], batch: Int, length: Int, heads: Int, dim: Int, inverse: Bool = false) -> [Double] {
        var y = x
        for b in 0..<batch {
            for t in 0..<length {
                for h in 0..<heads {
                    for e in 0..<dim {
                        let bshd = ((b * length + t) * heads + h) * dim + e
                        let bhsd = ((b * heads + h) * length + t) * dim + e
                        if inverse { y[bshd] = x[bhsd] } else { y[bhsd] = x[bshd] }
                    }
                }
            }
        }
        return y
    }

    /// The Attention layer on x [B, S, H].
    static func attentionLayer(_ x: [Double], _ layer: Attention, batch: Int, length: Int, positions: [Int], seqIdx: [Int]?) -> [Double] {
        let hs = layer.hiddenSize, n = layer.heads, d = layer.headDimension
        func heads(_ p: Linear) -> [Double] {
            splitHeads(linear(x, doubles(p.weight.value), inF: hs, outF: hs), batch: batch, length: length, heads: n, dim: d)
        }
        let q = rope(heads(layer.qProj), batch: batch, heads: n, length: length, dim: d, positions: positions, base: layer.rotary.base)
        let k = rope(heads(layer.kProj), batch: batch, heads: n, length: length, dim: d, positions: positions, base: layer.rotary.base)
        let o = attention(q, k, heads(layer.vProj), batch: batch, heads: n, length: length, dim: d, seqIdx: seqIdx)
        let merged = splitHeads(o, batch: batch, length: length, heads: n, dim: d, inverse: true)
        return linear(merged, doubles(layer.oProj.weight.value), inF: hs, outF: hs)
    }

    static func mlp(_ x: [Double], _ layer: MLP) -> [Double] {
        let h = layer.gateProj.inFeatures, i = layer.gateProj.outFeatures
        let g = linear(x, doubles(layer.gateProj.weight.value), inF: h, outF: i)
        let u = linear(x, doubles(layer.upProj.weight.value), inF: h, outF: i)
        let a = zip(g, u).map { $0 / (1 + exp(-$0)) * $1 }
        return linear(a, doubles(layer.downProj.weight.value), inF: i, outF: h)
    }

    static func decoderBlock(_ x: [Double], _ block: DecoderBlock, batch: Int, length: Int, positions: [Int], seqIdx: [Int]?) -> [Double] {
        let n1 = rmsNorm(x, doubles(block.inputLayernorm.weight.value), eps: Double(block.inputLayernorm.epsilon))
        let a = attentionLayer(n1, block.selfAttn, batch: batch, length: length, positions: positions, seqIdx: seqIdx)
        let h = zip(x, a).map(+)
        let n2 = rmsNorm(h, doubles(block.postAttentionLayernorm.weight.value), eps: Double(block.postAttentionLayernorm.epsilon))
        return zip(h, mlp(n2, block.mlp)).map(+)
    }
}
