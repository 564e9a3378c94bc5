// MaskedCrossEntropy and ChunkedCrossEntropy: cross-entropy from logits.

import Tensors

/// Cross-entropy of logits `[..., V]` against labels `[...]`, with an optional mask
/// (NeMo AutoModel's `MaskedCrossEntropy`).
///
/// Edge cases: `.mean` over zero valid rows is 0 (PyTorch gives NaN); `numLabelTokens`
/// 0 gives exactly 0 with zero gradients; NaN/Inf logits propagate. The caller's
/// labels are never modified (NeMo fills them in place when a mask is given).
public struct MaskedCrossEntropy: LogitsLoss {
    /// Compute in Float32 for half-precision logits (else in the input's precision).
    public var fp32Upcast: Bool
    public var ignoreIndex: Int
    public var reduction: LossReduction

    /// - Parameters:
    ///   - fp32Upcast: widen Float16/BFloat16 logits to Float32 (default true). When
    ///     false, each row's log-probability and the reduced loss are rounded to the
    ///     input's precision, as PyTorch's half-precision kernels round them.
    ///   - ignoreIndex: label that contributes nothing (default −100).
    ///   - reduction: default `.sum`.
    public init(fp32Upcast: Bool = true, ignoreIndex: Int = -100, reduction: LossReduction = .sum) {
        self.fp32Upcast = fp32Upcast
        self.ignoreIndex = ignoreIndex
        self.reduction = reduction
    }

    /// The loss; `mask` (labels' shape) marks with 0 the labels to ignore.
    ///
    /// - Throws: ``LossError`` for mismatched shapes, a label out of range (value and flat
    ///   position named), or `numLabelTokens` with a reduction other than `.sum`.
    public func callAsFunction(logits: Tensor, labels: Tensor, mask: Tensor? = nil, numLabelTokens: Int? = nil) throws -> Tensor {
        let rows = labels.count
        return try LogitsCrossEntropy.loss(
            logits: logits, labels: labels, mask: mask, ignoreIndex: ignoreIndex, reduction: reduction,
            numLabelTokens: numLabelTokens, rowsPerBlock: Swift.max(1, (rows + Parallel.width - 1) / Parallel.width),
            roundRowsTo: fp32Upcast || logits.dtype == .float32 ? nil : logits.dtype)
    }

    public func loss(logits: Tensor, labels: Tensor, numLabelTokens: Int?) throws -> Tensor {
        try self(logits: logits, labels: labels, numLabelTokens: numLabelTokens)
    }
}

/// Cross-entropy that keeps only the original-dtype logits for backward and
/// recomputes Float32 softmax one chunk of `chunkLen` rows at a time
/// (NeMo AutoModel's `ChunkedCrossEntropy`). Values equal ``MaskedCrossEntropy``'s.
public struct ChunkedCrossEntropy: LogitsLoss {
    /// Rows per chunk (> 0).
    public let chunkLen: Int
    public var ignoreIndex: Int
    public var reduction: LossReduction

    /// The chunk length of NeMo AutoModel's default (32 rows).
    public static let defaultChunkLen = 32

    /// - Throws: ``LossError`` when `chunkLen <= 0`.
    public init(chunkLen: Int = ChunkedCrossEntropy.defaultChunkLen, ignoreIndex: Int = -100, reduction: LossReduction = .sum) throws {
        guard chunkLen > 0 else { throw LossError.invalidArgument("chunk_len must be positive, got \(chunkLen)") }
        self.init(checkedChunkLen: chunkLen, ignoreIndex: ignoreIndex, reduction: reduction)
    }

    /// The loss with the default chunk length (which needs no check).
    public static func withDefaultChunkLen(ignoreIndex: Int = -100, reduction: LossReduction = .sum) -> ChunkedCrossEntropy {
        ChunkedCrossEntropy(checkedChunkLen: defaultChunkLen, ignoreIndex: ignoreIndex, reduction: reduction)
    }

    private init(checkedChunkLen: Int, ignoreIndex: Int, reduction: LossReduction) {
        chunkLen = checkedChunkLen
        self.ignoreIndex = ignoreIndex
        self.reduction = reduction
    }

    /// The loss of `logits` against `labels`; see ``MaskedCrossEntropy`` for the edge cases.
    public func callAsFunction(logits: Tensor, labels: Tensor, mask: Tensor? = nil, numLabelTokens: Int? = nil) throws -> Tensor {
        try LogitsCrossEntropy.loss(
            logits: logits, labels: labels, mask: mask, ignoreIndex: ignoreIndex, reduction: reduction,
            numLabelTokens: numLabelTokens, rowsPerBlock: chunkLen, roundRowsTo: nil)
    }

    public func loss(logits: Tensor, labels: Tensor, numLabelTokens: Int?) throws -> Tensor {
        try self(logits: logits, labels: labels, numLabelTokens: numLabelTokens)
    }
}
