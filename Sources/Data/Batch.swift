// The unit of a training or evaluation step: packed rows with their targets,
// document index and positions (a pipeline microbatch is a Batch of fewer rows).

import Tensors

/// One batch of packed rows, the input of a training or evaluation step.
public struct Batch: Sendable {
    /// Token ids, Int64 `[B, S]`; padding holds the packer's pad id.
    public let inputIds: Tensor
    /// Next-token targets, Int64 `[B, S]`: `ignoreIndex` at each document's last token and at padding.
    public let labels: Tensor
    /// Document index within the row, Int32 `[B, S]`: 0, 1, … in row order; the
    /// padding at a row's end gets the next index (an all-padding row is all 0).
    public let seqIdx: Tensor
    /// Position of each token within its document, Int64 `[B, S]` (padding counts 0, 1, … as its own document).
    public let positions: Tensor
    /// Number of rows that hold at least one document token (the rest are filler).
    public let rowCount: Int
    /// Number of non-padding tokens.
    public let tokenCount: Int
    /// Number of labels that are not `ignoreIndex` (the main loss's targets).
    public let targetCount: Int
}
