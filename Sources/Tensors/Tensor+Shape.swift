// Shape ops: reshape (free: storage is contiguous), squeeze/unsqueeze,
// transpose/permute, concatenate/stack, and slicing along an axis.

extension Tensor {
    /// The same elements with a new shape; one extent may be −1 (inferred).
    ///
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when the element counts differ.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        let unknown = s.indices.filter { s[$0] == -1 }
        guard unknown.count <= 1, s.allSatisfy({ $0 >= -1 }) else {
            throw TensorError.shapeMismatch("invalid shape \(newShape) for reshape")
        }
        if let u = unknown.first {
            let known = s.enumerated().filter { $0.offset != u }.map(\.element).reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch("cannot reshape \(shape) to \(newShape)")
            }
            s[u] = count / known
        }
        guard elementCount(s) == count else {
            throw TensorError.shapeMismatch("cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        if s == shape { return self }
        let inShape = shape
        return Tensor(storage: storage, shape: s, dtype: dtype).recording([self]) { g in [try g.reshaped(inShape)] }
    }

    /// Removes `axis`, which must have extent 1.
    public func squeezed(axis: Int) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "squeezed")
        guard shape[ax] == 1 else {
            throw TensorError.shapeMismatch("squeezed(axis: \(axis)) on extent \(shape[ax]) of shape \(shape)")
        }
        var s = shape; s.remove(at: ax)
        return try reshaped(s)
    }

    /// Removes every axis of extent 1.
    public func squeezed() -> Tensor {
        (try? reshaped(shape.filter { $0 != 1 })) ?? self
    }

    /// Inserts an axis of extent 1 at `axis` (−1 appends).
    public func unsqueezed(axis: Int) throws -> Tensor {
        let ax = axis < 0 ? axis + rank + 1 : axis
        guard ax >= 0, ax <= rank else {
            throw TensorError.invalidArgument("unsqueezed: axis \(axis) out of range for rank \(rank)")
        }
        var s = shape; s.insert(1, at: ax)
        return try reshaped(s)
    }

    /// The axes reordered: result axis i is input axis `axes[i]`.
    ///
    /// - Throws: ``TensorError/invalidArgument(_:)`` when `axes` is not a permutation.
    public func permuted(_ axes: [Int]) throws -> Tensor {
        let ax = try axes.map { try normalizedAxis($0, rank: rank, op: "permuted") }
        guard ax.count == rank, Set(ax).count == rank else {
            throw TensorError.invalidArgument("permuted: \(axes) is not a permutation of \(rank) axes")
        }
        if ax == Array(0..<rank) { return self }
        let outShape = ax.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = ax.map { inStrides[$0] }
        let out = Tensor.uninitialized(outShape, dtype: dtype)
        let es = dtype.byteSize, src = storage.bytes, dst = out.storage.bytes
        forEachBroadcastRow(outShape, [strides]) { o, offs, n, rs in
            var off = offs[0]
            switch es {
            case 4:
                let s = src.assumingMemoryBound(to: UInt32.self), d = dst.assumingMemoryBound(to: UInt32.self)
                for j in 0..<n { d[o + j] = s[off]; off += rs[0] }
            default:
                for j in 0..<n { (dst + (o + j) * es).copyMemory(from: src + off * es, byteCount: es); off += rs[0] }
            }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in ax.enumerated() { inverse[a] = i }
        return out.recording([self]) { g in [try g.permuted(inverse)] }
    }

    /// Swaps two axes.
    public func transposed(_ a: Int, _ b: Int) throws -> Tensor {
        let x = try normalizedAxis(a, rank: rank, op: "transposed"), y = try normalizedAxis(b, rank: rank, op: "transposed")
        var p = Array(0..<rank); p.swapAt(x, y)
        return try permuted(p)
    }

    /// Swaps the last two axes (a matrix transpose for rank 2).
    public func transposed() throws -> Tensor {
        guard rank >= 2 else { throw TensorError.invalidArgument("transposed() needs rank >= 2, got shape \(shape)") }
        return try transposed(rank - 2, rank - 1)
    }

    /// Joins tensors along an existing axis; the other extents must agree.
    ///
    /// - Throws: ``TensorError`` for an empty list, mixed ranks or mismatched extents.
    public static func concatenated(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError.invalidArgument("concatenated: no tensors") }
        let ax = try normalizedAxis(axis, rank: first.rank, op: "concatenated")
        var dt = first.dtype
        for t in tensors.dropFirst() {
            dt = DType.promoted(dt, t.dtype)
            var a = t.shape, b = first.shape
            guard a.count == b.count else { throw TensorError.shapeMismatch("concatenated: shapes \(first.shape) and \(t.shape)") }
            a[ax] = 0; b[ax] = 0
            guard a == b else { throw TensorError.shapeMismatch("concatenated along \(axis): shapes \(first.shape) and \(t.shape)") }
        }
        var outShape = first.shape
        outShape[ax] = tensors.map { $0.shape[ax] }.reduce(0, +)
        let parts = tensors.map { $0.detached().cast(to: dt) }
        let out = Tensor.uninitialized(outShape, dtype: dt)
        let (outer, _, inner) = out.splitAround(ax)
        let es = dt.byteSize
        let rowBytes = outShape[ax] * inner * es
        var offset = 0
        for p in parts {
            let chunk = p.shape[ax] * inner * es
            for o in 0..<outer where chunk > 0 {
                (out.storage.bytes + o * rowBytes + offset).copyMemory(from: p.storage.bytes + o * chunk, byteCount: chunk)
            }
            offset += chunk
        }
        let extents = tensors.map { $0.shape[ax] }
        return out.recording(tensors) { g in
            var start = 0
            return try extents.map { e in
                defer { start += e }
                return try g.sliced(axis: ax, start..<(start + e))
            }
        }
    }

    /// Joins same-shaped tensors along a new axis.
    public static func stacked(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError.invalidArgument("stacked: no tensors") }
        for t in tensors where t.shape != first.shape {
            throw TensorError.shapeMismatch("stacked: shapes \(first.shape) and \(t.shape)")
        }
        return try concatenated(tensors.map { try $0.unsqueezed(axis: axis) }, axis: axis)
    }

    /// The elements with index in `range` along `axis`.
    ///
    /// - Throws: ``TensorError/invalidArgument(_:)`` when the range is outside the axis.
    public func sliced(axis: Int, _ range: Range<Int>) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "sliced")
        guard range.lowerBound >= 0, range.upperBound <= shape[ax] else {
            throw TensorError.invalidArgument("sliced: range \(range) outside 0..<\(shape[ax]) on axis \(axis) of \(shape)")
        }
        if range == 0..<shape[ax] { return self }
        var outShape = shape; outShape[ax] = range.count
        let out = Tensor.uninitialized(outShape, dtype: dtype)
        let (outer, n, inner) = splitAround(ax)
        let es = dtype.byteSize, chunk = range.count * inner * es
        for o in 0..<outer where chunk > 0 {
            (out.storage.bytes + o * chunk).copyMemory(from: storage.bytes + (o * n + range.lowerBound) * inner * es, byteCount: chunk)
        }
        let inShape = shape
        return out.recording([self]) { g in
            // Scatter the slice's gradient back into zeros of the input shape.
            let full = Tensor.zeros(inShape)
            let outerBytes = range.count * inner * 4
            for o in 0..<outer where outerBytes > 0 {
                (full.storage.bytes + (o * n + range.lowerBound) * inner * 4).copyMemory(from: g.storage.bytes + o * outerBytes, byteCount: outerBytes)
            }
            return [full]
        }
    }

    /// The sub-tensor at `index` along axis 0 (that axis removed).
    public subscript(index: Int) -> Tensor {
        get throws {
            guard rank > 0, index >= -shape[0], index < shape[0] else {
                throw TensorError.invalidArgument("index \(index) out of range for shape \(shape)")
            }
            let i = index < 0 ? index + shape[0] : index
            return try sliced(axis: 0, i..<(i + 1)).squeezed(axis: 0)
        }
    }
}
