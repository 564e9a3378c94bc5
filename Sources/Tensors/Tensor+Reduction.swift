// Reductions over one axis or all elements, softmax and log-softmax.
//
// An axis reduction views the tensor as [outer, n, inner]; sums accumulate in
// Double so that long reductions stay accurate.

import Foundation

extension Tensor {
    /// The `[outer, n, inner]` factorisation around `axis`.
    func splitAround(_ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (elementCount(Array(shape[..<axis])), shape[axis], elementCount(Array(shape[(axis + 1)...])))
    }

    func reducedShape(_ axis: Int, keepDims: Bool) -> [Int] {
        var s = shape
        if keepDims { s[axis] = 1 } else { s.remove(at: axis) }
        return s
    }

    /// Applies `rowOp(values, n, stride, out)` along `axis` for each (outer, inner) pair.
    func reduceFloats(axis: Int, keepDims: Bool,
                      _ rowOp: (_ base: UnsafePointer<Float>, _ n: Int, _ stride: Int) -> Float) -> Tensor {
        let (outer, n, inner) = splitAround(axis)
        let x = float32Values()
        let p = UnsafePointer(x.floatPointer)
        return Tensor.makeFloat(reducedShape(axis, keepDims: keepDims)) { o in
            for a in 0..<outer {
                for c in 0..<inner { o[a * inner + c] = rowOp(p + a * n * inner + c, n, inner) }
            }
        }
    }

    // MARK: sum / mean

    /// Sum over `axis` (integers sum to Int64; half types keep their dtype).
    ///
    /// - Throws: ``TensorError/invalidArgument(_:)`` for an axis out of range.
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "sum", scalarAllowed: true)
        if rank == 0 { return self }
        let inShape = shape
        if !dtype.isFloatingPoint {
            let (outer, n, inner) = splitAround(ax)
            let x = cast(to: .int64)
            let out = Tensor.uninitialized(reducedShape(ax, keepDims: keepDims), dtype: .int64)
            for a in 0..<outer {
                for c in 0..<inner {
                    var s: Int64 = 0
                    for k in 0..<n { s &+= x.int64Pointer[(a * n + k) * inner + c] }
                    out.int64Pointer[a * inner + c] = s
                }
            }
            return out
        }
        let y = reduceFloats(axis: ax, keepDims: keepDims) { p, n, st in
            var s = 0.0
            for k in 0..<n { s += Double(p[k * st]) }
            return Float(s)
        }.rounded(to: dtype)
        return y.recording([self]) { g in
            [try g.reshaped(self.reducedShape(ax, keepDims: true)).expanded(to: inShape)]
        }
    }

    /// Sum of all elements, as a rank-0 tensor.
    public func sum() -> Tensor {
        // Reshaping to [count] and summing axis 0 cannot fail.
        (try? reshaped([count]).sum(axis: 0)) ?? self
    }

    /// Mean over `axis` (integers are averaged as Float32).
    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "mean", scalarAllowed: true)
        let n = rank == 0 ? 1 : shape[ax]
        let s = try (dtype.isFloatingPoint ? self : cast(to: .float32)).sum(axis: ax, keepDims: keepDims)
        return s / Double(n)
    }

    /// Mean of all elements (NaN for an empty tensor, like PyTorch).
    public func mean() -> Tensor {
        (dtype.isFloatingPoint ? self : cast(to: .float32)).sum() / Double(count)
    }

    // MARK: max / argmax

    /// The largest element along `axis`; NaN wins, like PyTorch. The gradient goes to
    /// the first position that holds the maximum.
    ///
    /// - Throws: ``TensorError/invalidArgument(_:)`` for a bad axis or an empty axis.
    public func max(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "max", scalarAllowed: true)
        if rank == 0 { return self }
        let idx = try argmax(axis: ax, keepDims: true)
        return try gathered(axis: ax, index: idx).reshaped(reducedShape(ax, keepDims: keepDims))
    }

    /// The largest element (NaN if any element is NaN).
    public func max() throws -> Tensor {
        try reshaped([count]).max(axis: 0)
    }

    /// The index of the first maximum along `axis` (NaN counts as the maximum), as Int64.
    ///
    /// - Throws: ``TensorError/invalidArgument(_:)`` for a bad axis or an empty axis.
    public func argmax(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "argmax", scalarAllowed: true)
        if rank == 0 { return Tensor.zeros([], dtype: .int64) }
        guard shape[ax] > 0 else { throw TensorError.invalidArgument("argmax over an empty axis \(axis) of shape \(shape)") }
        let (outer, n, inner) = splitAround(ax)
        let x = dtype.isFloatingPoint ? float32Values() : cast(to: .float32)
        let out = Tensor.uninitialized(reducedShape(ax, keepDims: keepDims), dtype: .int64)
        if !dtype.isFloatingPoint {
            let xi = cast(to: .int64)
            for a in 0..<outer {
                for c in 0..<inner {
                    var best = 0
                    for k in 1..<n where xi.int64Pointer[(a * n + k) * inner + c] > xi.int64Pointer[(a * n + best) * inner + c] { best = k }
                    out.int64Pointer[a * inner + c] = Int64(best)
                }
            }
            return out
        }
        for a in 0..<outer {
            for c in 0..<inner {
                let p = x.floatPointer + a * n * inner + c
                var best = 0
                var bv = p[0]
                if !bv.isNaN {
                    for k in 1..<n {
                        let v = p[k * inner]
                        if v.isNaN { best = k; break }
                        if v > bv { bv = v; best = k }
                    }
                }
                out.int64Pointer[a * inner + c] = Int64(best)
            }
        }
        return out
    }

    // MARK: logsumexp / softmax

    /// log Σ exp(x) along `axis`, stable at ±inf and large magnitudes
    /// (an all −inf row gives −inf; a +inf entry gives +inf).
    public func logsumexp(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "logsumexp", scalarAllowed: true)
        if rank == 0 { return try reshaped([1]).logsumexp(axis: 0) }
        let y = reduceFloats(axis: ax, keepDims: keepDims) { p, n, st in
            // Swift.max skips a NaN, so look for one explicitly: a NaN anywhere gives NaN,
            // even beside ±inf (torch's rule).
            var m = -Float.infinity, sawNaN = false
            for k in 0..<n { let v = p[k * st]; sawNaN = sawNaN || v.isNaN; m = Swift.max(m, v) }
            if sawNaN { return .nan }
            if m.isInfinite { return m }
            var s: Float = 0
            for k in 0..<n { s += VectorMath.exp(p[k * st] - m) }
            return m + VectorMath.log(s)
        }.rounded(to: floatResultDType)
        let x = self
        let yk = try y.float32Values().reshaped(reducedShape(ax, keepDims: true))
        return y.recording([self]) { g in
            let sm = try (x.float32Values() - yk).exp()
            return [try g.reshaped(yk.shape) * sm]
        }
    }

    /// softmax along `axis`: exp(x − logsumexp(x)).
    public func softmax(axis: Int) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "softmax", scalarAllowed: true)
        if rank == 0 { return try reshaped([1]).softmax(axis: 0).reshaped([]) }
        let ls = try logSoftmax(axis: ax).detached().float32Values()
        let y = ls.exp().rounded(to: floatResultDType)
        let yf = y.float32Values()
        return y.recording([self]) { g in
            // dx = y ⊙ (g − Σ g·y)
            [try yf * (g - (g * yf).sum(axis: ax, keepDims: true))]
        }
    }

    /// log-softmax along `axis`: x − logsumexp(x).
    public func logSoftmax(axis: Int) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "logSoftmax", scalarAllowed: true)
        if rank == 0 { return try reshaped([1]).logSoftmax(axis: 0).reshaped([]) }
        let x = float32Values()
        let lse = try x.logsumexp(axis: ax, keepDims: true)
        let y = try (x - lse).rounded(to: floatResultDType)
        let yf = y.float32Values()
        return y.recording([self]) { g in
            // dx = g − softmax · Σ g
            [try g - yf.exp() * g.sum(axis: ax, keepDims: true)]
        }
    }
}

extension Tensor {
    /// The first element that is NaN or infinite, with its flat index; nil when all are finite
    /// (and for integer and Boolean tensors). A float32 tensor is read in place, others
    /// through a float32 copy.
    public func firstNonFiniteFloat() -> (index: Int, value: Float)? {
        guard dtype.isFloatingPoint else { return nil }
        guard dtype == .float32 else { return cast(to: .float32).firstNonFiniteFloat() }
        return withUnsafeBytes { raw in
            let floats = raw.bindMemory(to: Float.self)
            guard let i = floats.prefix(count).firstIndex(where: { !$0.isFinite }) else { return nil }
            return (i, floats[i])
        }
    }
}
