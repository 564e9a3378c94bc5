// Cross-entropy from materialised logits, shared by MaskedCrossEntropy and
// ChunkedCrossEntropy: one autograd node that keeps only the caller's logits
// and the per-row logsumexp, and recomputes Float32 softmax in backward.

@_spi(Kernels) import Tensors

enum LogitsCrossEntropy {
    /// - Parameters:
    ///   - rowsPerBlock: rows converted and processed together (the Float32 working set is
    ///     `rowsPerBlock · V` floats per block).
    ///   - roundRowsTo: when non-nil (fp32Upcast off), each row's log-probability and the
    ///     reduced loss are rounded to this dtype's precision.
    static func loss(logits: Tensor, labels: Tensor, mask: Tensor?, ignoreIndex: Int, reduction: LossReduction,
                     numLabelTokens: Int?, rowsPerBlock: Int, roundRowsTo: DType?) throws -> Tensor {
        guard logits.rank >= 1, Array(logits.shape.dropLast()) == labels.shape else {
            throw LossError.shapeMismatch("logits shape \(logits.shape) does not match labels shape \(labels.shape) (expected labels.shape + [V])")
        }
        guard logits.dtype.isFloatingPoint else {
            throw LossError.invalidDType("logits must be floating point, got \(logits.dtype)")
        }
        let v = logits.shape.last ?? 0
        let n = labels.count
        let targets = try Targets(labels, vocab: v, ignoreIndex: ignoreIndex, mask: mask)
        let plan = try ReductionPlan(reduction, validCount: targets.validCount, numLabelTokens: numLabelTokens)
        let source = logits.detached()
        var rowLoss = [Float](repeating: 0, count: n)
        var rowMax = [Float](repeating: 0, count: n)
        var logSum = [Float](repeating: 0, count: n)
        if !plan.isZero && v > 0 {
            rowLoss.withUnsafeMutableBufferPointer { rl in
                rowMax.withUnsafeMutableBufferPointer { mx in logSum.withUnsafeMutableBufferPointer { ls in
                    // Blocks write disjoint rows.
                    let rl = UnsafeMutableBufferPointerBox(rl), ls = UnsafeMutableBufferPointerBox(ls)
                    let mx = UnsafeMutableBufferPointerBox(mx)
                    forEachRowBlock(source, rows: n, v: v, rowsPerBlock: rowsPerBlock) { lo, hi, z in
                        for r in lo..<hi where targets.classes[r] >= 0 {
                            let (l, m, s) = CrossEntropyKernel.row(z + (r - lo) * v, v, target: Int(targets.classes[r]), softcap: 0, gradWeight: nil)
                            rl.base[r] = l
                            mx.base[r] = m
                            ls.base[r] = s
                        }
                    }
                } }
            }
        }
        if let dt = roundRowsTo {
            rowLoss = rowLoss.map { -(Tensor(scalar: -$0).cast(to: dt).floats[0]) }
        }
        var out = plan.reduce(rowLoss)
        if let dt = roundRowsTo, out.rank == 0 { out = out.cast(to: dt).cast(to: .float32) }
        let shape = logits.shape
        let savedMax = rowMax, savedLogSum = logSum
        return out.recording([logits]) { g in
            let weights = plan.rowWeights(upstream: g, targets: targets)
            let grad = Tensor.makeFloat(shape) { gp in
                forEachRowBlock(source, rows: n, v: v, rowsPerBlock: rowsPerBlock) { lo, hi, z in
                    for r in lo..<hi {
                        let out = gp + r * v
                        if targets.classes[r] < 0 || weights[r] == 0 {
                            out.update(repeating: 0, count: v)
                        } else {
                            CrossEntropyKernel.gradientFromLSE(z + (r - lo) * v, out, v, target: Int(targets.classes[r]),
                                                               max: savedMax[r], logSum: savedLogSum[r], weight: weights[r])
                        }
                    }
                }
            }
            return [grad]
        }
    }

    /// Calls `body(lo, hi, rows)` for blocks of rows as Float32 (a converted copy for half
    /// dtypes, the caller's storage for Float32 — `body` must not write through it), in
    /// parallel across blocks.
    static func forEachRowBlock(_ logits: Tensor, rows n: Int, v: Int, rowsPerBlock: Int,
                                _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        // A block never holds more rows than there are: a huge chunk length (Int.max in a
        // case file) must neither overflow `n + per` nor size a scratch buffer of `per · V`.
        let per = Swift.max(1, Swift.min(rowsPerBlock, n))
        let blocks = (n + per - 1) / per
        if logits.dtype == .float32 {
            let base = logits.floatPointer
            Parallel.forEachBlock(count: blocks) { range in
                for b in range {
                    let lo = b * per, hi = Swift.min(n, lo + per)
                    body(lo, hi, base + lo * v)
                }
            }
            return
        }
        Parallel.forEachBlock(count: blocks) { range in
            let scratch = ScratchBuffer(count: per * v)
            for b in range {
                let lo = b * per, hi = Swift.min(n, lo + per)
                logits.convertRows(lo..<hi, rowLength: v, into: scratch.pointer)
                body(lo, hi, scratch.pointer)
            }
        }
    }
}

/// A buffer pointer that parallel blocks write at disjoint indices.
struct UnsafeMutableBufferPointerBox: @unchecked Sendable {
    let base: UnsafeMutableBufferPointer<Float>
    init(_ base: UnsafeMutableBufferPointer<Float>) { self.base = base }
}
