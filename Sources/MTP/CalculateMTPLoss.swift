// calculateMTPLoss: the DeepSeek-V3 multi-token-prediction auxiliary loss (SPEC §3).
//
// Depth k (0-based) predicts the token k+1 places after the main target:
//   labels_k = roll(labels, −(k+1)) with the last min(k+1, S) positions and every
//   position whose source lies in another sub-sequence set to ignoreIndex
//   loss     = scalingFactor / D · Σ_k CE_k

import Losses
import Tensors

/// The MTP loss with the unscaled per-depth losses (all keep their autograd graph).
public struct MTPLossOutput {
    /// `scalingFactor / D · Σ perDepthLosses`.
    public let loss: Tensor
    /// Each depth's loss, not scaled.
    public let perDepthLosses: [Tensor]
}

/// The DeepSeek-V3 MTP auxiliary loss (the seed's `calculate_mtp_loss` with the default
/// `return_per_depth=False`).
///
/// - Parameters:
///   - lossFn: the same loss as the main path; a fused loss reads hidden states.
///   - perDepthHidden: per-depth hidden states `[B, S, H]` (or `[T, H]`, `[1, T, H]`); exactly
///     one of this and `perDepthLogits` is given.
///   - perDepthLogits: per-depth logits `[B, S, V]` (or `[T, V]`, `[1, T, V]`).
///   - perDepthTargets: explicit labels per depth, used verbatim (no rolling, no masking).
///   - labels: the main labels `[B, S]` or `[T]` (already shifted: labels[t] is t's target).
///   - model: supplies the LM head for the hidden path (fetched once for all depths).
///   - scalingFactor: coefficient of the summed depth losses (0.1).
///   - numLabelTokens: forwarded unchanged to every depth.
///   - ignoreIndex: the label written where a depth has no target.
///   - cuSeqlens: packing boundaries `[n+1]`, the legacy fallback when `seqIdx` is nil.
///   - seqIdx: the sub-sequence index; wins over `cuSeqlens`. Equality classes matter.
///   - lmWeight: a caller-materialised head weight shared by every depth.
/// - Returns: `scalingFactor / D · Σ_k CE_k`, with its autograd graph.
/// - Throws: ``MTPError`` for the conditions of SPEC §3 (both or neither outputs, targets
///   combined with packing, wrong target count/shape, a `seqIdx` that does not match the
///   labels, fused loss with logits), ``LossError`` from the losses.
public func calculateMTPLoss(_ lossFn: any TokenLoss, perDepthHidden: [Tensor]? = nil, perDepthLogits: [Tensor]? = nil,
                             perDepthTargets: [Tensor]? = nil, labels: Tensor, model: (any LMHeadProvider)? = nil,
                             scalingFactor: Float = 0.1, numLabelTokens: Int? = nil, ignoreIndex: Int = -100,
                             cuSeqlens: Tensor? = nil, seqIdx: Tensor? = nil, lmWeight: Tensor? = nil) throws -> Tensor {
    try calculateMTPLossPerDepth(lossFn, perDepthHidden: perDepthHidden, perDepthLogits: perDepthLogits,
                                 perDepthTargets: perDepthTargets, labels: labels, model: model,
                                 scalingFactor: scalingFactor, numLabelTokens: numLabelTokens, ignoreIndex: ignoreIndex,
                                 cuSeqlens: cuSeqlens, seqIdx: seqIdx, lmWeight: lmWeight).loss
}

/// The MTP auxiliary loss together with each depth's unscaled loss (the seed's
/// `calculate_mtp_loss(..., return_per_depth=True)`).
///
/// Takes the same arguments as
/// ``calculateMTPLoss(_:perDepthHidden:perDepthLogits:perDepthTargets:labels:model:scalingFactor:numLabelTokens:ignoreIndex:cuSeqlens:seqIdx:lmWeight:)``.
///
/// - Returns: the scaled loss and the per-depth losses, all with their autograd graph.
/// - Throws: as ``calculateMTPLoss(_:perDepthHidden:perDepthLogits:perDepthTargets:labels:model:scalingFactor:numLabelTokens:ignoreIndex:cuSeqlens:seqIdx:lmWeight:)``.
public func calculateMTPLossPerDepth(_ lossFn: any TokenLoss, perDepthHidden: [Tensor]? = nil,
                                     perDepthLogits: [Tensor]? = nil, perDepthTargets: [Tensor]? = nil,
                                     labels: Tensor, model: (any LMHeadProvider)? = nil, scalingFactor: Float = 0.1,
                                     numLabelTokens: Int? = nil, ignoreIndex: Int = -100, cuSeqlens: Tensor? = nil,
                                     seqIdx: Tensor? = nil, lmWeight: Tensor? = nil) throws -> MTPLossOutput {
    guard (perDepthHidden == nil) != (perDepthLogits == nil) else {
        throw MTPError.invalidArgument("Provide exactly one of mtp_per_depth_h or mtp_per_depth_logits")
    }
    var outputs = perDepthHidden ?? perDepthLogits ?? []
    let usesLogits = perDepthLogits != nil
    let depths = outputs.count
    guard depths > 0 else { throw MTPError.invalidArgument("Provide exactly one of mtp_per_depth_h or mtp_per_depth_logits (the list is empty)") }
    guard labels.dtype.isInteger else { throw MTPError.invalidDType("labels must be int64 or int32, got \(labels.dtype)") }
    guard labels.rank >= 1 else { throw MTPError.shapeMismatch("labels must have rank 1 (THD) or 2 (BSHD), got shape \(labels.shape)") }

    // 1. THD: [1, T, X] per-depth outputs become [T, X].
    if labels.rank == 1 {
        outputs = try outputs.map { $0.rank == 3 && $0.shape[0] == 1 ? try $0.squeezed(axis: 0) : $0 }
    }
    let fused = lossFn as? any FusedLinearLoss
    if usesLogits && fused != nil {
        throw MTPError.invalidArgument("MTP logits are incompatible with FusedLinearCrossEntropy; pass per-depth hidden states")
    }

    // 2. Explicit targets.
    if let targets = perDepthTargets {
        guard cuSeqlens == nil, seqIdx == nil else {
            throw MTPError.invalidArgument("per_depth_targets cannot be combined with cu_seqlens or seq_idx (targets are used verbatim)")
        }
        guard targets.count == depths else {
            throw MTPError.depthCountMismatch("Expected \(depths) per_depth_targets (one per MTP depth), got \(targets.count)")
        }
        for (k, t) in targets.enumerated() where t.shape != labels.shape {
            throw MTPError.shapeMismatch("per_depth_targets[\(k)] shape \(t.shape) does not match labels shape \(labels.shape)")
        }
    }

    // 3. Sequence index.
    let sequence = try resolvedSequenceIndex(labels: labels, seqIdx: seqIdx, cuSeqlens: cuSeqlens)

    // 4. One head weight for every depth (its gradient accumulates over depths).
    var weight: Tensor? = nil
    if fused != nil {
        guard let w = try lmWeight ?? model?.requireLMHeadWeight() else { throw LossError.missingTensor("lm_head module not found in model") }
        weight = FusedLinearCrossEntropy.sharingWeightGradient(w)
    } else if !usesLogits {
        guard let model else { throw LossError.missingTensor("lm_head module not found in model") }
        weight = try model.requireLMHeadWeight()
    }

    // Each depth's output, checked up front so that an error names it: one row per label
    // (the losses flatten rows, as PyTorch's `view(-1, V)` does), on the hidden path the
    // head's hidden size, and a floating dtype.
    let outputName = usesLogits ? "mtp_per_depth_logits" : "mtp_per_depth_h"
    for (k, out) in outputs.enumerated() {
        let rows = out.shape.dropLast().reduce(1, *)
        guard out.rank >= 1, rows == labels.count else {
            throw MTPError.shapeMismatch("\(outputName).\(k) shape \(out.shape) holds \(out.rank >= 1 ? rows : 0) rows, "
                + "but labels shape \(labels.shape) holds \(labels.count)")
        }
        if !usesLogits, let weight, weight.rank == 2, out.shape[out.rank - 1] != weight.shape[1] {
            throw MTPError.shapeMismatch("\(outputName).\(k) shape \(out.shape) has hidden size \(out.shape[out.rank - 1]), "
                + "but the LM head weight is \(weight.shape) (hidden size \(weight.shape[1]))")
        }
        // After the shapes: a stray integer tensor in a pipeline tuple fails on shapes (SPEC §4).
        guard out.dtype.isFloatingPoint else {
            throw MTPError.invalidDType("\(outputName).\(k) must be floating point, got \(out.dtype) \(out.shape)")
        }
    }

    // 5–6. Depth losses.
    var current = labels
    var depthLosses: [Tensor] = []
    let seqLen = labels.shape[labels.rank - 1]
    for k in 0..<depths {
        let depthLabels: Tensor
        if let targets = perDepthTargets {
            depthLabels = targets[k]
        } else {
            current = try rollTensor(current, shifts: -1, dim: -1)
            depthLabels = try maskedDepthLabels(current, depth: k, seqLen: seqLen, sequence: sequence, ignoreIndex: ignoreIndex)
        }
        let out = outputs[k]
        let depthLoss: Tensor
        if usesLogits {
            depthLoss = try calculateLoss(lossFn, logits: out, labels: depthLabels, numLabelTokens: numLabelTokens)
        } else if let weight, fused != nil {
            depthLoss = try FusedLinearCrossEntropy.expectingUpstream(scalingFactor / Float(depths), on: weight) {
                try calculateLoss(lossFn, hiddenStates: out, labels: depthLabels, lmWeight: weight, numLabelTokens: numLabelTokens)
            }
        } else {
            let logits = try Tensor.matmul(out, weight!, transposeB: true)
            depthLoss = try calculateLoss(lossFn, logits: logits, labels: depthLabels, numLabelTokens: numLabelTokens)
        }
        depthLosses.append(depthLoss)
    }

    // 7. Scale the sum.
    var total = depthLosses[0]
    for l in depthLosses.dropFirst() { total = try total + l }
    return MTPLossOutput(loss: total * Double(scalingFactor) / Double(depths), perDepthLosses: depthLosses)
}

/// The labels MTP depth `depth` (0-based) trains on: `labels` rolled left `depth + 1`
/// times, with the last `min(depth + 1, S)` positions and every position whose target
/// lies in another sub-sequence (per `seqIdx`, shaped like `labels`) set to `ignoreIndex`.
/// Exactly what ``calculateMTPLoss(_:perDepthHidden:perDepthLogits:perDepthTargets:labels:model:scalingFactor:numLabelTokens:ignoreIndex:cuSeqlens:seqIdx:lmWeight:)`` uses.
public func mtpDepthLabels(_ labels: Tensor, depth: Int, seqIdx: Tensor? = nil, ignoreIndex: Int = -100) throws -> Tensor {
    guard depth >= 0 else { throw MTPError.invalidArgument("depth must be >= 0, got \(depth)") }
    let sequence = try resolvedSequenceIndex(labels: labels, seqIdx: seqIdx, cuSeqlens: nil)
    var rolled = labels
    for _ in 0...depth { rolled = try rollTensor(rolled, shifts: -1, dim: -1) }
    return try maskedDepthLabels(rolled, depth: depth, seqLen: labels.shape[labels.rank - 1], sequence: sequence, ignoreIndex: ignoreIndex)
}

/// Depth-k labels: the last min(k+1, S) positions and cross-sequence rolls ignored.
func maskedDepthLabels(_ rolled: Tensor, depth k: Int, seqLen: Int, sequence: Tensor?, ignoreIndex: Int) throws -> Tensor {
    let tail = Swift.min(k + 1, seqLen)
    var labels = try rolled.indexFilled(axis: -1, index: Tensor(((seqLen - tail)..<seqLen).map { Int64($0) }),
                                        value: Double(ignoreIndex))
    if let sequence {
        let crosses = try rollTensor(sequence, shifts: -(k + 1), dim: -1) .!= sequence
        labels = try labels.maskFilled(where: crosses, value: Double(ignoreIndex))
    }
    return labels
}

/// The sequence index in labels' shape (SPEC §3 step 3), or nil without packing.
func resolvedSequenceIndex(labels: Tensor, seqIdx: Tensor?, cuSeqlens: Tensor?) throws -> Tensor? {
    if var s = seqIdx {
        guard s.dtype.isInteger || s.dtype == .bool else { throw MTPError.invalidDType("seq_idx must be an integer tensor, got \(s.dtype)") }
        if labels.rank == 2 && s.rank == 1 && s.shape[0] == labels.shape[1] {
            s = try s.expanded(to: labels.shape)
        } else if labels.rank == 1 && s.rank == 2 && s.shape[0] == 1 {
            s = try s.squeezed(axis: 0)
        }
        guard s.shape == labels.shape else {
            throw MTPError.shapeMismatch("seq_idx shape \(seqIdx!.shape) does not match labels shape \(labels.shape); "
                + "under pipeline parallelism chunk seq_idx per microbatch")
        }
        return s.cast(to: .int64)
    }
    if let cu = cuSeqlens {
        let s = try MTP.seqIdx(fromCuSeqlens: cu, length: labels.shape[labels.rank - 1])
        return labels.rank == 2 ? try s.expanded(to: labels.shape) : s
    }
    return nil
}
