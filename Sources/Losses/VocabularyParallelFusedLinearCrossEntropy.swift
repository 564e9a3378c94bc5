// The fused linear cross-entropy on one vocabulary shard of the LM head.
//
// Letters: N rows, H hidden, V vocabulary, T ranks, V_r this rank's rows, R rows per chunk.
// Rank r holds W_r = W[V_r, :] and never sees the rest. Per chunk of rows:
//   Z_r[R, V_r] = h_c · W_rᵀ                                           (sgemm)
//   per row: softcap, (m_r, s_r, ẑ_r)  ─ all-gather, merge ─►  (M, log S, loss)   (VocabularyParallelMerge)
//   Z_r ← w · (exp((Z_r − M) − log S) − onehot) · softcap′             (CrossEntropyKernel)
//   dh_c,r = Z_r · W_r                                                 (sgemm, a partial sum)
//   dW_r  += Z_rᵀ · h_c                                                (sgemm, local: the shard's gradient)
// then dh = Σ_r dh_r by one all-reduce of [N, H] over the group. The weight gradient never
// leaves the rank. The merged (M, log S) of every row are kept (8 bytes a row), so a pullback
// or a SharedWeightGradient recompute is a local pass with no collective.
//
// Every rank must call the loss with the same labels, hidden states and options: the chunk
// size derives from ⌈V/T⌉ (not V_r), so every rank issues the same number of all-gathers.

@_spi(Kernels) import Tensors

/// ``FusedLinearCrossEntropy`` over a vocabulary-parallel LM head: each rank of `group`
/// passes its shard `[V_r, H]` of the head (``VocabularyShard``) and the full hidden states
/// and global labels; every rank gets the loss and the hidden-state gradient of one process,
/// and the gradient of its own shard.
///
/// Memory per rank: the shard and its gradient (`V_r·H` floats each), one chunk of
/// `[R, V_r]` logits, and 8 bytes a row of saved statistics.
/// Communication per call: one all-gather of 12 bytes a row per chunk, one all-reduce of
/// the `[N, H]` hidden-state gradient when one is wanted.
///
/// Edge cases: those of ``FusedLinearCrossEntropy``; a shard of the wrong size throws.
public struct VocabularyParallelFusedLinearCrossEntropy: FusedLinearLoss {
    /// The loss each rank computes its part of (ignore index, softcap, reduction, chunk budget).
    public var base: FusedLinearCrossEntropy
    /// The ranks holding the head's shards.
    public let group: any LossGroup
    /// This rank's rows of the vocabulary.
    public let shard: VocabularyShard

    public var ignoreIndex: Int { base.ignoreIndex }
    public var reduction: LossReduction { base.reduction }

    /// - Parameters:
    ///   - base: the single-process loss whose value and gradients this reproduces.
    ///   - vocabularySize: the whole vocabulary V.
    ///   - group: the ranks of the head, one shard each, in shard order.
    /// - Throws: ``LossError/invalidArgument(_:)`` when V cannot be split over the group.
    public init(_ base: FusedLinearCrossEntropy, vocabularySize: Int, group: any LossGroup) throws {
        self.base = base
        self.group = group
        shard = try VocabularyShard(vocabularySize: vocabularySize, group: group)
    }

    /// The loss of `hiddenStates · Wᵀ` where `lmWeight` is this rank's shard of W.
    ///
    /// - Throws: ``LossError`` as ``FusedLinearCrossEntropy``, and when `lmWeight` is not
    ///   `[V_r, H]`; communication errors of the group.
    public func callAsFunction(hiddenStates: Tensor, labels: Tensor, lmWeight: Tensor, numLabelTokens: Int? = nil) throws -> Tensor {
        let softcap = base.logitSoftcapping
        let hDim = try FusedLinearCrossEntropy.checkInputs(hiddenStates: hiddenStates, labels: labels, lmWeight: lmWeight,
                                                           softcap: softcap)
        guard lmWeight.rank == 2, lmWeight.shape == [shard.count, hDim] else {
            throw LossError.shapeMismatch("lm_weight shard shape \(lmWeight.shape) is not [\(shard.count), \(hDim)] (rows \(shard.range) of V = \(shard.vocabularySize) on rank \(shard.rank) of \(shard.parts))")
        }
        let targets = try Targets(labels, vocab: shard.vocabularySize, ignoreIndex: ignoreIndex)
        let plan = try ReductionPlan(reduction, validCount: targets.validCount, numLabelTokens: numLabelTokens)
        let problem = ShardedFusedProblem(
            local: FusedProblem(hidden: hiddenStates.float32Values(), weight: lmWeight.float32Values(), targets: targets,
                                softcap: softcap, chunkBudgetFloats: base.chunkBudgetFloats),
            shard: shard, group: group)
        let wantsGrad = GradMode.isEnabled && (hiddenStates.requiresGrad || lmWeight.requiresGrad)
        let shared = lmWeight.gradientAttachment as? SharedWeightGradient
        let group = group

        guard wantsGrad, !plan.isZero, reduction != .none else {
            let out = plan.reduce(try problem.forward(rowWeights: nil, gradHidden: nil, gradWeight: nil))
            guard wantsGrad else { return out }
            return out.recording([hiddenStates, lmWeight]) { g in
                let weights = plan.rowWeights(upstream: g, targets: targets)
                let gh = Tensor.zeros(hiddenStates.shape)
                let gw = shared == nil ? Tensor.zeros(lmWeight.shape) : nil
                if !plan.isZero {
                    problem.gradients(rowWeights: weights, gradHidden: gh.floatPointer,
                                      gradWeight: gw?.floatPointer ?? shared?.exactBuffer(), gradWeightScale: 1)
                    if hiddenStates.requiresGrad { try sumOverGroup(gh, group) }
                }
                return [gh, gw ?? Tensor.zeros(lmWeight.gradientShape)]
            }
        }

        let unit = [Float](repeating: plan.scale, count: targets.classes.count)
        let gradHidden = hiddenStates.requiresGrad ? Tensor.zeros(hiddenStates.shape) : nil
        if let shared {
            let hint = lmWeight.requiresGrad ? shared.scaleHint : 0
            let contribution = shared.add(hint: hint, recompute: { out, scale in
                problem.gradients(rowWeights: unit, gradHidden: nil, gradWeight: out, gradWeightScale: scale)
            })
            let rows = try problem.forward(rowWeights: unit, gradHidden: gradHidden?.floatPointer,
                                           gradWeight: hint == 0 ? nil : shared.accumulator(), gradWeightScale: hint)
            if let gradHidden { try sumOverGroup(gradHidden, group) }
            return plan.reduce(rows).recording([hiddenStates, lmWeight]) { g in
                contribution.upstream = g.floats[0]
                return [try gradHidden.map { try scaled($0, by: g) }, Tensor.zeros([])]
            }
        }
        let gradWeight = lmWeight.requiresGrad ? Tensor.zeros(lmWeight.shape) : nil
        let rows = try problem.forward(rowWeights: unit, gradHidden: gradHidden?.floatPointer,
                                       gradWeight: gradWeight?.floatPointer, gradWeightScale: 1)
        if let gradHidden { try sumOverGroup(gradHidden, group) }
        return plan.reduce(rows).recording([hiddenStates, lmWeight]) { g in
            [try gradHidden.map { try scaled($0, by: g) }, try gradWeight.map { try scaled($0, by: g) }]
        }
    }

    public func loss(hiddenStates: Tensor, labels: Tensor, lmWeight: Tensor, numLabelTokens: Int?) throws -> Tensor {
        try self(hiddenStates: hiddenStates, labels: labels, lmWeight: lmWeight, numLabelTokens: numLabelTokens)
    }
}

/// Sums a Float32 tensor over the group in place (the partial hidden-state gradients).
func sumOverGroup(_ t: Tensor, _ group: any LossGroup) throws {
    guard group.size > 1 else { return }
    try group.allReduceSum(UnsafeMutableBufferPointer(start: t.floatPointer, count: t.count))
}

/// A fused problem on one vocabulary shard, with the merged statistics its forward pass saves.
final class ShardedFusedProblem: @unchecked Sendable {
    let local: FusedProblem
    let shard: VocabularyShard
    let group: any LossGroup
    /// M and log S per row, from the forward pass (used by every later, local pass).
    private var maxes: [Float]
    private var logSums: [Float]

    init(local: FusedProblem, shard: VocabularyShard, group: any LossGroup) {
        self.local = local
        self.shard = shard
        self.group = group
        maxes = [Float](repeating: 0, count: local.n)
        logSums = maxes
    }

    /// The forward pass: per chunk the logits GEMM, the partials, one all-gather and the merge;
    /// with `rowWeights`, the shard's logit gradients and the two gradient GEMMs. Returns the
    /// per-row losses. `gradHidden` receives this rank's partial sum (the caller all-reduces).
    func forward(rowWeights: [Float]?, gradHidden: UnsafeMutablePointer<Float>?,
                 gradWeight: UnsafeMutablePointer<Float>?, gradWeightScale: Float = 1) throws -> [Float] {
        let v = local.v, classes = local.targets.classes, softcap = local.softcap, shard = shard, group = group
        let wantGrad = rowWeights != nil
        return try local.runChunks(chunkVocabulary: shard.maxCount, wantsGradient: wantGrad, gradHidden: gradHidden,
                                   gradWeight: gradWeight, gradWeightScale: gradWeightScale) { rows, z, lossBox in
            let r = rows.count
            let chunkTargets = rows.map { classes[$0] }
            var partials = [Float](repeating: 0, count: 3 * r)
            partials.withUnsafeMutableBufferPointer { pb in
                let out = UnsafeMutableBufferPointerBox(pb)
                Parallel.forEachBlock(count: r, minimumPerBlock: Swift.max(1, 32768 / v)) { range in
                    for i in range where chunkTargets[i] >= 0 {
                        let zr = z + i * v
                        if softcap > 0 { CrossEntropyKernel.softcap(zr, v, softcap) }
                        VocabularyParallelMerge.partials(zr, v, localTarget: shard.localIndex(of: Int(chunkTargets[i])),
                                                         into: out.base.baseAddress! + 3 * i)
                    }
                }
            }
            let merged = try VocabularyParallelMerge.merge(partials, targets: chunkTargets, shard: shard, group: group)
            for (i, row) in rows.enumerated() where chunkTargets[i] >= 0 {
                maxes[row] = merged.max[i]
                logSums[row] = merged.logSum[i]
                lossBox.base[row] = merged.loss[i]
            }
            if let rowWeights { shardGradients(rows, z, rowWeights: rowWeights, capped: true) }
        }
    }

    /// A local pass from the saved statistics: the shard's logit gradients for `rowWeights`,
    /// then `gradHidden` (this rank's partial sum) and `gradWeight += gradWeightScale · …`.
    func gradients(rowWeights: [Float], gradHidden: UnsafeMutablePointer<Float>?,
                   gradWeight: UnsafeMutablePointer<Float>?, gradWeightScale: Float) {
        _ = local.runChunks(chunkVocabulary: local.v, wantsGradient: true, gradHidden: gradHidden,
                            gradWeight: gradWeight, gradWeightScale: gradWeightScale) { rows, z, _ in
            shardGradients(rows, z, rowWeights: rowWeights, capped: false)
        }
    }

    /// Overwrites a chunk's logits with their gradients (zero at ignored rows).
    /// `capped`: the logits are already softcapped (the forward pass capped them for the partials).
    private func shardGradients(_ rows: ArraySlice<Int>, _ z: UnsafeMutablePointer<Float>, rowWeights: [Float], capped: Bool) {
        let v = local.v, classes = local.targets.classes, softcap = local.softcap, shard = shard
        let maxes = maxes, logSums = logSums
        Parallel.forEachBlock(count: rows.count, minimumPerBlock: Swift.max(1, 32768 / v)) { range in
            for i in range {
                let row = rows[rows.startIndex + i], zr = z + i * v
                guard classes[row] >= 0 else {
                    zr.update(repeating: 0, count: v)
                    continue
                }
                let t = shard.localIndex(of: Int(classes[row]))
                if softcap > 0 {
                    if !capped { CrossEntropyKernel.softcap(zr, v, softcap) }
                    CrossEntropyKernel.softcappedGradientFromLSE(zr, v, target: t, max: maxes[row], logSum: logSums[row],
                                                                 weight: rowWeights[row], softcap: softcap)
                } else {
                    CrossEntropyKernel.gradientFromLSE(zr, zr, v, target: t, max: maxes[row], logSum: logSums[row],
                                                       weight: rowWeights[row])
                }
            }
        }
    }
}

extension VocabularyShard {
    /// `id − offset` when this shard holds `id`, else −1.
    func localIndex(of id: Int) -> Int { range.contains(id) ? id - offset : -1 }
}
