// Cross-entropy from vocabulary-parallel logits: each rank holds the logits of its
// vocabulary shard, z[..., V_r] (the output of a vocabulary-parallel head, h · W_rᵀ).
//
// Forward: per row the shard's partials (m_r, s_r, ẑ_r), one all-gather of all rows, the
// merge of VocabularyParallelMerge (every rank gets the loss of one process). Backward is
// local: ∂loss/∂z_j = w · (exp((z_j − M) − log S) − [j = t]) on the shard's columns, as
// LogitsCrossEntropy computes it, with (M, log S) saved from forward. The gradient of the
// hidden states feeding the logits is a partial sum per rank: pass them through
// `Tensor.summingGradient(over:)` before the head.

@_spi(Kernels) import Tensors

/// ``MaskedCrossEntropy`` or ``ChunkedCrossEntropy`` on vocabulary-parallel logits.
///
/// Every rank passes its logits shard `[..., V_r]` (``VocabularyShard``) and the same global
/// labels (and mask); every rank gets the single-process loss and the gradient of its shard.
/// Communication: one all-gather of 12 bytes a row per call.
///
/// Edge cases: those of the base loss (mean over zero rows is 0, `numLabelTokens` 0 gives
/// exact zeros, NaN propagates, half-precision rounding without `fp32Upcast`).
public struct VocabularyParallelLogitsCrossEntropy: LogitsLoss {
    /// The ranks holding the logits' shards.
    public let group: any LossGroup
    /// This rank's columns of the vocabulary.
    public let shard: VocabularyShard
    public let ignoreIndex: Int
    public var reduction: LossReduction
    /// The base loss's block of rows processed together.
    let rowsPerBlock: Int?
    /// Whether the base loss keeps half-precision rounding (``MaskedCrossEntropy/fp32Upcast`` false).
    let roundsToInputPrecision: Bool

    /// - Parameters:
    ///   - base: a ``MaskedCrossEntropy`` or ``ChunkedCrossEntropy`` whose options this takes.
    ///   - vocabularySize: the whole vocabulary V.
    ///   - group: the ranks of the logits' shards, in shard order.
    /// - Throws: ``LossError/invalidArgument(_:)`` for another loss type or a V that cannot
    ///   be split over the group.
    public init(_ base: any LogitsLoss, vocabularySize: Int, group: any LossGroup) throws {
        switch base {
        case let m as MaskedCrossEntropy:
            rowsPerBlock = nil
            roundsToInputPrecision = !m.fp32Upcast
        case let c as ChunkedCrossEntropy:
            rowsPerBlock = c.chunkLen
            roundsToInputPrecision = false
        default:
            throw LossError.invalidArgument("vocabulary parallelism supports MaskedCrossEntropy and ChunkedCrossEntropy, not \(type(of: base))")
        }
        ignoreIndex = base.ignoreIndex
        reduction = base.reduction
        self.group = group
        shard = try VocabularyShard(vocabularySize: vocabularySize, group: group)
    }

    /// The loss of this rank's `logits` shard against the global `labels`; `mask` (labels'
    /// shape) marks with 0 the labels to ignore.
    ///
    /// - Throws: ``LossError`` as the base loss, and when the logits' last dimension is not
    ///   V_r; communication errors of the group.
    public func callAsFunction(logits: Tensor, labels: Tensor, mask: Tensor? = nil, numLabelTokens: Int? = nil) throws -> Tensor {
        guard logits.rank >= 1, Array(logits.shape.dropLast()) == labels.shape else {
            throw LossError.shapeMismatch("logits shape \(logits.shape) does not match labels shape \(labels.shape) (expected labels.shape + [V])")
        }
        guard logits.dtype.isFloatingPoint else { throw LossError.invalidDType("logits must be floating point, got \(logits.dtype)") }
        let v = logits.shape.last ?? 0
        guard v == shard.count else {
            throw LossError.shapeMismatch("logits shard has \(v) columns, expected \(shard.count) (rows \(shard.range) of V = \(shard.vocabularySize) on rank \(shard.rank) of \(shard.parts))")
        }
        let n = labels.count
        let targets = try Targets(labels, vocab: shard.vocabularySize, ignoreIndex: ignoreIndex, mask: mask)
        let plan = try ReductionPlan(reduction, validCount: targets.validCount, numLabelTokens: numLabelTokens)
        let per = rowsPerBlock ?? Swift.max(1, (n + Parallel.width - 1) / Parallel.width)
        let roundTo: DType? = roundsToInputPrecision && logits.dtype != .float32 ? logits.dtype : nil
        let source = logits.detached()
        let shard = shard
        // Every rank reaches the same decision (labels and options agree), so all or none gather.
        var merged = VocabularyParallelMerge.Rows(max: [], logSum: [], loss: [Float](repeating: 0, count: n))
        if !plan.isZero {
            var partials = [Float](repeating: 0, count: 3 * n)
            partials.withUnsafeMutableBufferPointer { pb in
                let out = UnsafeMutableBufferPointerBox(pb)
                LogitsCrossEntropy.forEachRowBlock(source, rows: n, v: v, rowsPerBlock: per) { lo, hi, z in
                    for r in lo..<hi where targets.classes[r] >= 0 {
                        VocabularyParallelMerge.partials(z + (r - lo) * v, v, localTarget: shard.localIndex(of: Int(targets.classes[r])),
                                                         into: out.base.baseAddress! + 3 * r)
                    }
                }
            }
            merged = try VocabularyParallelMerge.merge(partials, targets: targets.classes, shard: shard, group: group)
        }
        var rowLoss = merged.loss
        if let dt = roundTo {
            rowLoss = rowLoss.map { -(Tensor(scalar: -$0).cast(to: dt).floats[0]) }
        }
        var out = plan.reduce(rowLoss)
        if let dt = roundTo, out.rank == 0 { out = out.cast(to: dt).cast(to: .float32) }
        let shape = logits.shape
        let savedMax = merged.max, savedLogSum = merged.logSum
        return out.recording([logits]) { g in
            let weights = plan.rowWeights(upstream: g, targets: targets)
            let grad = Tensor.makeFloat(shape) { gp in
                LogitsCrossEntropy.forEachRowBlock(source, rows: n, v: v, rowsPerBlock: per) { lo, hi, z in
                    for r in lo..<hi {
                        let out = gp + r * v
                        if targets.classes[r] < 0 || weights[r] == 0 {
                            out.update(repeating: 0, count: v)
                        } else {
                            CrossEntropyKernel.gradientFromLSE(z + (r - lo) * v, out, v, target: shard.localIndex(of: Int(targets.classes[r])),
                                                               max: savedMax[r], logSum: savedLogSum[r], weight: weights[r])
                        }
                    }
                }
            }
            return [grad]
        }
    }

    public func loss(logits: Tensor, labels: Tensor, numLabelTokens: Int?) throws -> Tensor {
        try self(logits: logits, labels: labels, numLabelTokens: numLabelTokens)
    }
}
