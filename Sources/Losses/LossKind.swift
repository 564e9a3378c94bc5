// The per-token loss a run or a benchmark chooses by name: the three cross-entropy
// implementations of this module, one case each. The raw values are what the CLI's
// `--loss` takes and what checkpoints store, so they never change.

/// Which cross-entropy implementation computes the per-token loss.
public enum LossKind: String, CaseIterable, Codable, Sendable {
    /// ``FusedLinearCrossEntropy``: from hidden states and the LM-head weight, no `[N, V]` logits.
    case fused
    /// ``MaskedCrossEntropy``: from logits.
    case masked
    /// ``ChunkedCrossEntropy``: from logits, in chunks of 32 rows.
    case chunked

    /// Whether the loss takes logits (so the model must emit them) rather than hidden states.
    public var readsLogits: Bool { self != .fused }

    /// The loss of this kind with default options and the given reduction.
    ///
    /// - Parameter reduction: how per-row losses are combined.
    /// - Returns: a ``FusedLinearLoss`` for ``fused``, a ``LogitsLoss`` otherwise.
    public func makeLoss(reduction: LossReduction) -> any TokenLoss {
        switch self {
        case .fused: FusedLinearCrossEntropy(reduction: reduction)
        case .masked: MaskedCrossEntropy(reduction: reduction)
        case .chunked: ChunkedCrossEntropy.withDefaultChunkLen(reduction: reduction)
        }
    }
}
