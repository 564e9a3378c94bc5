// Index-driven ops: gather / scatter-add along an axis, index and mask fills,
// roll, searchsorted and embedding lookup. Indices are integer tensors; an
// index outside its axis throws with its value and flat position.

extension Tensor {
    /// Int64 indices validated against `[-extent, extent)` (negative wrap, like PyTorch).
    func validatedIndices(extent: Int, op: String) throws -> [Int] {
        guard !dtype.isFloatingPoint, dtype != .bool else {
            throw TensorError.unsupportedDType("\(op): indices must be int32 or int64, got \(dtype)")
        }
        let v = int64s
        var out = [Int](repeating: 0, count: v.count)
        for (i, x) in v.enumerated() {
            guard x >= -Int64(extent), x < Int64(extent) else {
                throw TensorError.invalidArgument("\(op): index \(x) at flat position \(i) is out of range for extent \(extent)")
            }
            out[i] = Int(x < 0 ? x + Int64(extent) : x)
        }
        return out
    }

    /// `out[…, i, …] = self[…, index[…, i, …], …]` along `axis` (torch.gather).
    ///
    /// - Throws: ``TensorError`` when ranks differ, an extent of `index` exceeds this
    ///   tensor's off the axis, or an index is out of range.
    public func gathered(axis: Int, index: Tensor) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "gathered")
        guard index.rank == rank, zip(index.shape, shape).enumerated().allSatisfy({ $0.offset == ax || $0.element.0 <= $0.element.1 }) else {
            throw TensorError.shapeMismatch("gathered: index shape \(index.shape) does not fit input shape \(shape) along axis \(axis)")
        }
        let idx = try index.validatedIndices(extent: shape[ax], op: "gathered")
        let out = Tensor.uninitialized(index.shape, dtype: dtype)
        let es = dtype.byteSize
        let inStrides = contiguousStrides(shape)
        forEachIndex(index.shape) { flat, coords in
            var off = 0
            for d in 0..<rank { off += (d == ax ? idx[flat] : coords[d]) * inStrides[d] }
            (out.storage.bytes + flat * es).copyMemory(from: storage.bytes + off * es, byteCount: es)
        }
        let inShape = shape
        return out.recording([self]) { g in
            [try Tensor.zeros(inShape).scatterAdded(axis: ax, index: index, source: g)]
        }
    }

    /// A copy with `source` added at `index` along `axis` (torch.scatter_add).
    public func scatterAdded(axis: Int, index: Tensor, source: Tensor) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "scatterAdded")
        guard index.rank == rank, source.rank == rank,
              zip(index.shape, source.shape).allSatisfy({ $0 <= $1 }),
              zip(index.shape, shape).enumerated().allSatisfy({ $0.offset == ax || $0.element.0 <= $0.element.1 }) else {
            throw TensorError.shapeMismatch("scatterAdded: index \(index.shape), source \(source.shape), input \(shape) along axis \(axis)")
        }
        let idx = try index.validatedIndices(extent: shape[ax], op: "scatterAdded")
        let inStrides = contiguousStrides(shape), srcStrides = contiguousStrides(source.shape)
        if !dtype.isFloatingPoint {
            // Integers accumulate in Int64 so that values beyond 2²⁴ stay exact.
            let acc = cast(to: .int64).copiedStorage(), src = source.cast(to: .int64)
            forEachIndex(index.shape) { flat, coords in
                var off = 0, soff = 0
                for d in 0..<rank { off += (d == ax ? idx[flat] : coords[d]) * inStrides[d]; soff += coords[d] * srcStrides[d] }
                acc.int64Pointer[off] &+= src.int64Pointer[soff]
            }
            return acc.cast(to: dtype)
        }
        let acc = float32Values().copiedStorage()
        let src = source.float32Values()
        forEachIndex(index.shape) { flat, coords in
            var off = 0, soff = 0
            for d in 0..<rank { off += (d == ax ? idx[flat] : coords[d]) * inStrides[d]; soff += coords[d] * srcStrides[d] }
            acc.floatPointer[off] += src.floatPointer[soff]
        }
        let result = acc.rounded(to: dtype)
        let srcShape = source.shape
        return result.recording([self, source]) { g in
            let gs = try g.gathered(axis: ax, index: index)
            // Pad the gathered gradient up to the source's shape (zeros beyond index's extents).
            if gs.shape == srcShape { return [g, gs] }
            let full = Tensor.zeros(srcShape)
            let fs = contiguousStrides(srcShape)
            forEachIndex(gs.shape) { flat, coords in
                var off = 0
                for d in 0..<coords.count { off += coords[d] * fs[d] }
                full.floatPointer[off] = gs.floatPointer[flat]
            }
            return [g, full]
        }
    }

    /// A copy with every slice at `index` (1-D) along `axis` set to `value` (torch.index_fill).
    public func indexFilled(axis: Int, index: Tensor, value: Double) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "indexFilled")
        guard index.rank <= 1 else { throw TensorError.shapeMismatch("indexFilled: index must be 1-D, got \(index.shape)") }
        let idx = try index.validatedIndices(extent: shape[ax], op: "indexFilled")
        var maskShape = [Int](repeating: 1, count: rank); maskShape[ax] = shape[ax]
        var flags = [Bool](repeating: false, count: shape[ax])
        for i in idx { flags[i] = true }
        let mask = try Tensor(flags, shape: maskShape)
        return try maskFilled(where: mask, value: value)
    }

    /// A copy with `value` wherever `mask` (broadcast to this shape) is true.
    public func maskFilled(where mask: Tensor, value: Double) throws -> Tensor {
        let m = try mask.cast(to: .bool).expanded(to: shape)
        let fill = Tensor.scalarOperand(value, like: self)
        let out = try Tensor.where(m, fill.cast(to: dtype), detached())
        guard dtype.isFloatingPoint else { return out.cast(to: dtype) }
        let keep = m.cast(to: .float32)
        return out.detached().recording([self]) { g in [try g * (1 - keep)] }
    }

    /// Elements shifted by `shifts` along `axis`, wrapping around (torch.roll);
    /// a negative shift moves elements toward index 0.
    public func rolled(shifts: Int, axis: Int) throws -> Tensor {
        let ax = try normalizedAxis(axis, rank: rank, op: "rolled")
        let n = shape[ax]
        if n == 0 { return self }
        let s = ((shifts % n) + n) % n
        if s == 0 { return self }
        let rolledValue = try Tensor.concatenated(
            [detached().sliced(axis: ax, (n - s)..<n), detached().sliced(axis: ax, 0..<(n - s))], axis: ax)
        // n − s, not −shifts: negating Int.min would trap.
        return rolledValue.recording([self]) { g in [try g.rolled(shifts: n - s, axis: ax)] }
    }

    /// For each of `values`, the insertion index into this sorted 1-D sequence
    /// (torch.searchsorted): with `right`, the index after equal entries.
    ///
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when this tensor is not 1-D.
    public func searchsorted(_ values: Tensor, right: Bool = false) throws -> Tensor {
        guard rank == 1 else { throw TensorError.shapeMismatch("searchsorted: sorted sequence must be 1-D, got \(shape)") }
        let useInts = !dtype.isFloatingPoint && !values.dtype.isFloatingPoint
        let seqF = floats, seqI = int64s
        let vF = values.floats, vI = values.int64s
        var out = [Int64](repeating: 0, count: values.count)
        for i in 0..<values.count {
            var lo = 0, hi = count
            while lo < hi {
                let mid = (lo + hi) / 2
                let goRight = useInts ? (right ? seqI[mid] <= vI[i] : seqI[mid] < vI[i])
                                      : (right ? seqF[mid] <= vF[i] : seqF[mid] < vF[i])
                if goRight { lo = mid + 1 } else { hi = mid }
            }
            out[i] = Int64(lo)
        }
        return try Tensor(out, shape: values.shape)
    }

    /// Rows of `weight` (`[V, H]`) picked by integer `indices`, shape `indices.shape + [H]`.
    /// The weight's gradient scatter-adds into the picked rows.
    ///
    /// - Throws: ``TensorError`` when `weight` is not 2-D or an index is outside `[0, V)`.
    public static func embedding(_ indices: Tensor, weight: Tensor) throws -> Tensor {
        guard weight.rank == 2 else { throw TensorError.shapeMismatch("embedding: weight must be [V, H], got \(weight.shape)") }
        let v = weight.shape[0], h = weight.shape[1]
        let ids = try indices.validatedIndices(extent: v, op: "embedding")
        guard ids.allSatisfy({ $0 >= 0 }) && indices.int64s.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument("embedding: negative index in \(indices.shape)")
        }
        let out = Tensor.uninitialized(indices.shape + [h], dtype: weight.dtype)
        let es = weight.dtype.byteSize
        for (r, id) in ids.enumerated() where h > 0 {
            (out.storage.bytes + r * h * es).copyMemory(from: weight.storage.bytes + id * h * es, byteCount: h * es)
        }
        return out.recording([weight]) { g in
            let gw = Tensor.zeros([v, h])
            let gp = g.floatPointer, wp = gw.floatPointer
            for (r, id) in ids.enumerated() {
                for j in 0..<h { wp[id * h + j] += gp[r * h + j] }
            }
            return [gw]
        }
    }

    /// A private copy of the storage (for kernels that write into the result).
    func copiedStorage() -> Tensor {
        Tensor(storage: storage.copy(), shape: shape, dtype: dtype)
    }
}

/// Row-major element strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    for i in stride(from: shape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * shape[i + 1] }
    return s
}

/// Visits every coordinate of `shape` in row-major order with its flat index.
func forEachIndex(_ shape: [Int], _ body: (Int, [Int]) -> Void) {
    let n = elementCount(shape)
    if n == 0 { return }
    var coords = [Int](repeating: 0, count: shape.count)
    for flat in 0..<n {
        body(flat, coords)
        var d = shape.count - 1
        while d >= 0 {
            coords[d] += 1
            if coords[d] < shape[d] { break }
            coords[d] = 0
            d -= 1
        }
    }
}
