// Label validation and the per-row gradient weights a reduction implies.

import Tensors

/// Flattened, validated labels: the class of each row, or −1 for an ignored row.
struct Targets {
    let classes: [Int32]
    let validCount: Int

    /// Validates `labels` (Int32 or Int64) against a vocabulary of `vocab` classes.
    ///
    /// - Throws: ``LossError`` for a non-integer dtype or a label outside `[0, vocab)`
    ///   that is not `ignoreIndex` (naming the value and its flat position).
    init(_ labels: Tensor, vocab: Int, ignoreIndex: Int, mask: Tensor? = nil) throws {
        guard labels.dtype == .int64 || labels.dtype == .int32 else {
            throw LossError.invalidDType("labels must be int64 or int32, got \(labels.dtype)")
        }
        var keep: [Bool]? = nil
        if let mask {
            guard mask.shape == labels.shape else {
                throw LossError.shapeMismatch("mask shape \(mask.shape) does not match labels shape \(labels.shape)")
            }
            // Only an exact 0 drops a label (`mask == 0`): a fractional or NaN entry keeps it.
            keep = mask.dtype.isFloatingPoint ? mask.floats.map { $0 != 0 } : mask.int64s.map { $0 != 0 }
        }
        let values = labels.int64s
        var classes = [Int32](repeating: -1, count: values.count)
        var valid = 0
        for (i, v) in values.enumerated() {
            if v == Int64(ignoreIndex) || keep?[i] == false { continue }
            guard v >= 0, v < Int64(vocab) else {
                throw LossError.labelOutOfRange("label \(v) at flat position \(i) is outside [0, \(vocab)) and is not ignore_index \(ignoreIndex)")
            }
            classes[i] = Int32(v)
            valid += 1
        }
        self.classes = classes
        validCount = valid
    }
}

/// The gradient weight of every non-ignored row for a reduction, and the scale of the summed loss.
struct ReductionPlan {
    /// Multiplies Σ row losses into the reported loss (and each valid row's gradient).
    let scale: Float
    /// The loss is exactly zero with zero gradients (`numLabelTokens == 0`).
    let isZero: Bool
    let reduction: LossReduction

    /// - Throws: ``LossError`` when `numLabelTokens` is combined with a reduction other than sum.
    init(_ reduction: LossReduction, validCount: Int, numLabelTokens: Int?) throws {
        self.reduction = reduction
        if let n = numLabelTokens {
            guard reduction == .sum else {
                throw LossError.invalidArgument("num_label_tokens is only supported with reduction sum, not \(reduction.rawValue)")
            }
            isZero = n == 0
            scale = n == 0 ? 0 : 1 / Float(n)
            return
        }
        isZero = false
        switch reduction {
        case .sum, .none: scale = 1
        case .mean: scale = validCount == 0 ? 0 : 1 / Float(validCount)
        }
    }

    /// The reported loss from per-row losses (Double accumulation, rows in order).
    func reduce(_ rows: [Float]) -> Tensor {
        if reduction == .none { return Tensor(rows.map { $0 * scale }) }
        if isZero { return Tensor(scalar: Float(0)) }
        var s = 0.0
        for r in rows { s += Double(r) }
        return Tensor(scalar: Float(s * Double(scale)))
    }

    /// Per-row gradient weights for an upstream gradient `g` of the reported loss.
    func rowWeights(upstream g: Tensor, targets: Targets) -> [Float] {
        let gv = g.floats
        return targets.classes.indices.map { i in
            guard targets.classes[i] >= 0, !isZero else { return 0 }
            return scale * (reduction == .none ? gv[i] : gv[0])
        }
    }
}
