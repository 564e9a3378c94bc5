// Broadcasting as PyTorch does it: align shapes on the right; an extent of 1
// stretches to the other's extent.

/// The broadcast shape of `a` and `b`.
///
/// - Throws: ``TensorError/shapeMismatch(_:)`` naming both shapes when they cannot broadcast.
public func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        guard da == db || da == 1 || db == 1 else {
            throw TensorError.shapeMismatch("shapes \(a) and \(b) do not broadcast")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Element strides of `shape` read as `outShape` (0 along broadcast axes).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let r = outShape.count
    var strides = [Int](repeating: 0, count: r)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let o = i + (r - shape.count)
        strides[o] = shape[i] == 1 && outShape[o] != 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// Visits every element of `outShape` row by row (the last axis is the row),
/// giving the starting offsets in each operand and their strides along the row.
func forEachBroadcastRow(_ outShape: [Int], _ strides: [[Int]],
                         _ body: (_ outOffset: Int, _ offsets: [Int], _ rowLength: Int, _ rowStrides: [Int]) -> Void) {
    let total = elementCount(outShape)
    if total == 0 { return }
    let r = outShape.count
    if r == 0 { body(0, strides.map { _ in 0 }, 1, strides.map { _ in 0 }); return }
    let rowLength = outShape[r - 1]
    let rowStrides = strides.map { $0[r - 1] }
    var index = [Int](repeating: 0, count: r - 1)
    var offsets = [Int](repeating: 0, count: strides.count)
    var out = 0
    while out < total {
        body(out, offsets, rowLength, rowStrides)
        out += rowLength
        // Advance the odometer over the outer axes.
        var axis = r - 2
        while axis >= 0 {
            index[axis] += 1
            for k in 0..<strides.count { offsets[k] += strides[k][axis] }
            if index[axis] < outShape[axis] { break }
            for k in 0..<strides.count { offsets[k] -= strides[k][axis] * outShape[axis] }
            index[axis] = 0
            axis -= 1
        }
    }
}

extension Tensor {
    /// The sum of this tensor over the axes along which it was broadcast from `target`.
    ///
    /// Used by pullbacks: the gradient of a broadcast input is the output gradient
    /// summed back to the input's shape.
    func summed(toShape target: [Int]) throws -> Tensor {
        if shape == target { return self }
        var t = self
        let lead = rank - target.count
        for _ in 0..<lead { t = try t.sum(axis: 0) }
        for (i, d) in target.enumerated() where d == 1 && t.shape[i] != 1 {
            t = try t.sum(axis: i, keepDims: true)
        }
        return try t.reshaped(target)
    }

    /// This tensor broadcast to `shape` (a materialised copy).
    ///
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when the shapes do not broadcast to `shape`.
    public func expanded(to shape: [Int]) throws -> Tensor {
        guard shape.allSatisfy({ $0 >= 0 }), try broadcastShape(self.shape, shape) == shape else {
            throw TensorError.shapeMismatch("cannot expand \(self.shape) to \(shape)")
        }
        if shape == self.shape { return self }
        var out = Tensor.uninitialized(shape, dtype: dtype)
        let es = dtype.byteSize, src = storage.bytes, dst = out.storage.bytes
        forEachBroadcastRow(shape, [broadcastStrides(self.shape, to: shape)]) { o, offs, n, st in
            for j in 0..<n {
                (dst + (o + j) * es).copyMemory(from: src + (offs[0] + j * st[0]) * es, byteCount: es)
            }
        }
        let inShape = self.shape
        out = out.recording([self]) { g in [try g.summed(toShape: inShape)] }
        return out
    }
}
