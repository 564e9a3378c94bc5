// FusedLinearCrossEntropy: cross-entropy of h·Wᵀ that never allocates [N, V].
//
// Letters: N rows, H hidden, V vocabulary, R rows per chunk.
// Forward (one pass over row chunks of the non-ignored rows):
//   Z[R, V]  = h_c · Wᵀ                       (sgemm)
//   per row:   softcap, logsumexp, loss; Z ← w·(softmax − onehot)·softcap′
//   dh_c     = Z · W                           (sgemm)
//   dW      += Zᵀ · h_c                        (sgemm, accumulated in place)
// When a gradient is wanted the two gradient GEMMs run in forward (3 GEMMs in all,
// the minimum); the pullback only scales by the upstream gradient. Ignored rows are
// dropped before the GEMMs (compaction).

import Foundation
@_spi(Kernels) import Tensors

/// Cross-entropy of `hiddenStates · lmWeightᵀ` against labels, chunked so that no
/// `[N, V]` logits buffer ever exists (NeMo AutoModel's `FusedLinearCrossEntropy`,
/// after Apple's cut-cross-entropy).
///
/// Memory: besides the gradients themselves (`[N, H]` and `[V, H]`), one chunk of
/// logits of at most ``chunkBudgetFloats`` floats (default 24 Mi floats = 96 MiB) — a
/// chunk has `max(1, chunkBudgetFloats / V)` rows.
///
/// Edge cases: as ``MaskedCrossEntropy``; softcapping `c > 0` replaces each logit `z`
/// by `c·tanh(z/c)`, `c == 0` means none.
public struct FusedLinearCrossEntropy: FusedLinearLoss {
    public var ignoreIndex: Int
    /// Softcap `c` (0 = none).
    public var logitSoftcapping: Float
    public var reduction: LossReduction

    /// The default bound on one chunk of logits: 24 Mi floats (96 MiB).
    public static let defaultChunkBudgetFloats = 24 << 20
    /// Floats in one chunk of logits: a chunk holds `max(1, chunkBudgetFloats / V)` rows.
    /// Larger chunks run the GEMMs closer to peak; smaller ones save memory.
    public var chunkBudgetFloats: Int

    /// - Parameters:
    ///   - ignoreIndex: label that contributes nothing (default −100).
    ///   - logitSoftcapping: `c` in `c·tanh(z/c)`; 0 (default) disables it.
    ///   - reduction: default `.sum`.
    ///   - chunkBudgetFloats: the bound on one chunk of logits (values below 1 count as 1).
    public init(ignoreIndex: Int = -100, logitSoftcapping: Float = 0, reduction: LossReduction = .sum,
                chunkBudgetFloats: Int = FusedLinearCrossEntropy.defaultChunkBudgetFloats) {
        self.ignoreIndex = ignoreIndex
        self.logitSoftcapping = logitSoftcapping
        self.reduction = reduction
        self.chunkBudgetFloats = Swift.max(1, chunkBudgetFloats)
    }

    /// The loss; gradients flow to `hiddenStates` and `lmWeight`.
    ///
    /// - Throws: ``LossError`` when `hiddenStates.shape.dropLast() != labels.shape`, the
    ///   weight is not `[V, H]`, a label is out of range, or `numLabelTokens` is used
    ///   with a reduction other than `.sum`.
    public func callAsFunction(hiddenStates: Tensor, labels: Tensor, lmWeight: Tensor, numLabelTokens: Int? = nil) throws -> Tensor {
        let hDim = try Self.checkInputs(hiddenStates: hiddenStates, labels: labels, lmWeight: lmWeight, softcap: logitSoftcapping)
        guard lmWeight.rank == 2, lmWeight.shape[1] == hDim else {
            throw LossError.shapeMismatch("lm_weight shape \(lmWeight.shape) is not [V, \(hDim)] for hidden_states \(hiddenStates.shape)")
        }
        let v = lmWeight.shape[0]
        let targets = try Targets(labels, vocab: v, ignoreIndex: ignoreIndex)
        let plan = try ReductionPlan(reduction, validCount: targets.validCount, numLabelTokens: numLabelTokens)
        let problem = FusedProblem(hidden: hiddenStates.float32Values(), weight: lmWeight.float32Values(),
                                   targets: targets, softcap: logitSoftcapping, chunkBudgetFloats: chunkBudgetFloats)
        let wantsGrad = GradMode.isEnabled && (hiddenStates.requiresGrad || lmWeight.requiresGrad)
        let shared = lmWeight.gradientAttachment as? SharedWeightGradient

        // Reduction `none` needs per-row upstream weights: compute the loss now and the
        // gradients in the pullback. Otherwise precompute them with unit upstream.
        guard wantsGrad, !plan.isZero, reduction != .none else {
            let rows = problem.run(rowWeights: nil, gradHidden: nil, gradWeight: nil)
            let out = plan.reduce(rows)
            guard wantsGrad else { return out }
            return out.recording([hiddenStates, lmWeight]) { g in
                let weights = plan.rowWeights(upstream: g, targets: targets)
                let gh = Tensor.zeros(hiddenStates.shape)
                let gw = shared == nil ? Tensor.zeros(lmWeight.shape) : nil
                if !plan.isZero {
                    _ = problem.run(rowWeights: weights, gradHidden: gh.floatPointer,
                                    gradWeight: gw?.floatPointer ?? shared?.exactBuffer(), gradWeightScale: 1)
                }
                return [gh, gw ?? Tensor.zeros(lmWeight.gradientShape)]
            }
        }

        let unit = [Float](repeating: plan.scale, count: targets.classes.count)
        // Only the gradients some input wants are formed (a frozen head skips dW, frozen
        // hidden states skip dh).
        let gradHidden = hiddenStates.requiresGrad ? Tensor.zeros(hiddenStates.shape) : nil
        if let shared {
            let hint = lmWeight.requiresGrad ? shared.scaleHint : 0
            let contribution = shared.add(hint: hint, recompute: { out, scale in
                _ = problem.run(rowWeights: unit, gradHidden: nil, gradWeight: out, gradWeightScale: scale)
            })
            let rows = problem.run(rowWeights: unit, gradHidden: gradHidden?.floatPointer,
                                   gradWeight: hint == 0 ? nil : shared.accumulator(), gradWeightScale: hint)
            return plan.reduce(rows).recording([hiddenStates, lmWeight]) { g in
                contribution.upstream = g.floats[0]
                return [try gradHidden.map { try scaled($0, by: g) }, Tensor.zeros([])]
            }
        }
        let gradWeight = lmWeight.requiresGrad ? Tensor.zeros(lmWeight.shape) : nil
        let rows = problem.run(rowWeights: unit, gradHidden: gradHidden?.floatPointer,
                               gradWeight: gradWeight?.floatPointer, gradWeightScale: 1)
        return plan.reduce(rows).recording([hiddenStates, lmWeight]) { g in
            [try gradHidden.map { try scaled($0, by: g) }, try gradWeight.map { try scaled($0, by: g) }]
        }
    }

    public func loss(hiddenStates: Tensor, labels: Tensor, lmWeight: Tensor, numLabelTokens: Int?) throws -> Tensor {
        try self(hiddenStates: hiddenStates, labels: labels, lmWeight: lmWeight, numLabelTokens: numLabelTokens)
    }
}

extension FusedLinearCrossEntropy {
    /// The checks every fused loss makes of its inputs (the weight's shape is the caller's:
    /// whole or a vocabulary shard). Returns H.
    ///
    /// - Throws: ``LossError`` naming the shapes, dtypes or softcap that do not fit.
    static func checkInputs(hiddenStates: Tensor, labels: Tensor, lmWeight: Tensor, softcap: Float) throws -> Int {
        guard hiddenStates.rank >= 1, Array(hiddenStates.shape.dropLast()) == labels.shape else {
            throw LossError.shapeMismatch("hidden_states shape \(hiddenStates.shape) does not match labels shape \(labels.shape) (expected labels.shape + [H])")
        }
        guard hiddenStates.dtype.isFloatingPoint, lmWeight.dtype.isFloatingPoint else {
            throw LossError.invalidDType("hidden_states and lm_weight must be floating point, got \(hiddenStates.dtype) and \(lmWeight.dtype)")
        }
        guard softcap >= 0, softcap.isFinite else {
            throw LossError.invalidArgument("logit_softcapping must be a finite value >= 0, got \(softcap)")
        }
        return hiddenStates.shape.last ?? 0
    }
}

/// `gradient · g` for a scalar upstream `g`; the same tensor when g is 1, so backward
/// does not hold a second copy of a large gradient.
func scaled(_ gradient: Tensor, by g: Tensor) throws -> Tensor {
    if g.count == 1, g.floats[0] == 1 { return gradient }
    return try gradient * g
}

extension Tensor {
    /// The shape of the gradient this tensor's node receives (a proxy's differs from its shape).
    var gradientShape: [Int] { gradientAttachment is SharedWeightGradient ? [] : shape }
}

/// One fused problem: Float32 hidden rows, weight, targets and softcap.
struct FusedProblem: @unchecked Sendable {
    let hidden: Tensor  // [N, H] Float32 (any leading shape)
    let weight: Tensor  // [V, H] Float32
    let targets: Targets
    let softcap: Float
    let chunkBudgetFloats: Int

    var n: Int { targets.classes.count }
    var h: Int { weight.shape[1] }
    var v: Int { weight.shape[0] }

    /// Runs the chunked loop. Returns the per-row losses (0 at ignored rows).
    ///
    /// - Parameters:
    ///   - rowWeights: when non-nil, the gradient weight of each row; gradients are formed.
    ///   - gradHidden: `[N, H]`, overwritten at non-ignored rows (others untouched).
    ///   - gradWeight: `[V, H]`, accumulated: `+= gradWeightScale · Σ`.
    func run(rowWeights: [Float]?, gradHidden: UnsafeMutablePointer<Float>?,
             gradWeight: UnsafeMutablePointer<Float>?, gradWeightScale: Float = 1) -> [Float] {
        let v = v, classes = targets.classes, softcap = softcap
        let wantGrad = rowWeights != nil
        return runChunks(chunkVocabulary: v, wantsGradient: wantGrad, gradHidden: gradHidden, gradWeight: gradWeight,
                         gradWeightScale: gradWeightScale) { rows, z, lossBox in
            Parallel.forEachBlock(count: rows.count, minimumPerBlock: Swift.max(1, 32768 / v)) { range in
                for i in range {
                    let row = rows[rows.startIndex + i]
                    let zr = z + i * v
                    if classes[row] < 0 {  // an ignored row kept in a dense chunk
                        if wantGrad { zr.update(repeating: 0, count: v) }
                        continue
                    }
                    if softcap > 0 { CrossEntropyKernel.softcap(zr, v, softcap) }
                    let (l, _, _) = CrossEntropyKernel.row(zr, v, target: Int(classes[row]), softcap: softcap,
                                                        gradWeight: wantGrad ? rowWeights![row] : nil)
                    lossBox.base[row] = l
                }
            }
        }
    }

    /// The chunk loop shared by the single-process and vocabulary-parallel losses: compaction,
    /// the logits GEMM of each chunk, `rows` (which turns the chunk's logits into per-row
    /// losses and, when `wantsGradient`, into logit gradients in place), then the two gradient
    /// GEMMs. Returns the per-row losses `rows` wrote (0 elsewhere).
    ///
    /// - Parameters:
    ///   - chunkVocabulary: the V that sizes a chunk (`chunkBudgetFloats / V` rows); ranks that
    ///     issue a collective per chunk pass the same value so their chunk counts agree.
    ///   - rows: called once per chunk with the chunk's row ids, its `[r, V]` logits and the loss output.
    func runChunks(chunkVocabulary: Int, wantsGradient wantGrad: Bool, gradHidden: UnsafeMutablePointer<Float>?,
                   gradWeight: UnsafeMutablePointer<Float>?, gradWeightScale: Float,
                   rows body: (ArraySlice<Int>, UnsafeMutablePointer<Float>, UnsafeMutableBufferPointerBox) throws -> Void) rethrows -> [Float] {
        let n = n, h = h, v = v
        var rowLoss = [Float](repeating: 0, count: n)
        let validRows = targets.classes.indices.filter { targets.classes[$0] >= 0 }
        guard !validRows.isEmpty, v > 0 else { return rowLoss }
        // Compaction pays when many rows are ignored; a few (an MTP depth's last k+1,
        // packing boundaries) cost less as zero-weight rows than as two [N, H] copies.
        let compact = Double(validRows.count) < 0.9 * Double(n)
        let valid = compact ? validRows : Array(0..<n)
        let nv = valid.count
        // Compaction: gather the non-ignored rows so the GEMMs skip ignored ones.
        let packed: ScratchBuffer? = compact ? ScratchBuffer(count: nv * h) : nil
        let src = hidden.floatPointer, w = UnsafePointer(weight.floatPointer)
        if let packed {
            for (i, r) in valid.enumerated() { (packed.pointer + i * h).update(from: src + r * h, count: h) }
        }
        let hc = UnsafePointer(packed?.pointer ?? src)
        let packedGrad: ScratchBuffer? = compact && gradHidden != nil ? ScratchBuffer(count: nv * h) : nil
        let gh = packedGrad?.pointer ?? gradHidden
        let chunkRows = Swift.max(1, Swift.min(nv, chunkBudgetFloats / Swift.max(1, chunkVocabulary)))
        let logits = ScratchBuffer(count: chunkRows * v)
        let z = logits.pointer
        try rowLoss.withUnsafeMutableBufferPointer { lossOut in
            let lossBox = UnsafeMutableBufferPointerBox(lossOut)
            var start = 0
            while start < nv {
                let r = Swift.min(chunkRows, nv - start)
                BLAS.sgemm(transA: false, transB: true, m: r, n: v, k: h, alpha: 1, a: hc + start * h, lda: h,
                           b: w, ldb: h, beta: 0, c: z, ldc: v)
                try body(valid[start ..< start + r], z, lossBox)
                if wantGrad {
                    if let gh {
                        BLAS.sgemm(transA: false, transB: false, m: r, n: h, k: v, alpha: 1, a: z, lda: v,
                                   b: w, ldb: h, beta: 0, c: gh + start * h, ldc: h)
                    }
                    if let gradWeight {
                        BLAS.sgemm(transA: true, transB: false, m: v, n: h, k: r, alpha: gradWeightScale, a: z, lda: v,
                                   b: hc + start * h, ldb: h, beta: 1, c: gradWeight, ldc: h)
                    }
                }
                start += r
            }
        }
        if let packedGrad, let gradHidden {
            for (i, r) in valid.enumerated() { (gradHidden + r * h).update(from: packedGrad.pointer + i * h, count: h) }
        }
        return rowLoss
    }
}
