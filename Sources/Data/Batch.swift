// The unit of a training or evaluation step: packed rows with their targets,
// document index and positions. A pipeline microbatch is a Batch of fewer rows
// (`sliced(rows:)`), so one validated type travels from the packer to the stages.

import Tensors

/// Packed rows, the input of a training or evaluation step or of one pipeline microbatch.
public struct Batch: Sendable {
    /// Token ids, integer `[B, S]`; padding holds the packer's pad id.
    public let inputIds: Tensor
    /// Next-token targets, integer `[B, S]`: `ignoreIndex` at each document's last token and at padding.
    public let labels: Tensor
    /// Document index within the row, integer `[B, S]` (Int32 from the packer): 0, 1, … in
    /// row order; the padding at a row's end gets the next index (an all-padding row is all 0).
    public let seqIdx: Tensor
    /// Position of each token within its document, integer `[B, S]` (padding counts 0, 1, …
    /// as its own document).
    public let positions: Tensor
    /// The non-padding tokens of each row, in row order (`B` entries).
    public let rowTokenCounts: [Int]
    /// The label that marks "no target".
    public let ignoreIndex: Int64
    /// Number of labels that are not `ignoreIndex` (the main loss's targets).
    public let targetCount: Int

    /// A batch from four `[B, S]` integer tensors.
    ///
    /// - Parameters:
    ///   - inputIds: token ids `[B, S]`.
    ///   - labels: next-token targets `[B, S]`.
    ///   - seqIdx: document index within each row `[B, S]`.
    ///   - positions: position ids `[B, S]`.
    ///   - rowTokenCounts: the non-padding tokens of each row; nil means the rows hold no
    ///     padding (every one of the `S` positions is a token).
    ///   - ignoreIndex: the label that marks "no target" (counted out of ``targetCount``).
    /// - Throws: ``DataError/invalidArgument(_:)`` when a tensor is not integer, is not rank 2
    ///   or differs in shape from `inputIds`, or when `rowTokenCounts` does not hold one
    ///   count in `0 … S` per row.
    public init(inputIds: Tensor, labels: Tensor, seqIdx: Tensor, positions: Tensor,
                rowTokenCounts: [Int]? = nil, ignoreIndex: Int64 = -100) throws {
        for (name, t) in [("input ids", inputIds), ("labels", labels), ("seqIdx", seqIdx), ("positions", positions)] {
            guard t.dtype.isInteger else {
                throw DataError.invalidArgument("Batch: \(name) must be an integer tensor, got \(t.dtype)")
            }
            guard t.rank == 2, t.shape == inputIds.shape else {
                throw DataError.invalidArgument("Batch: \(name) shape \(t.shape) must equal the input ids shape "
                    + "\(inputIds.shape), rank 2 [B, S]")
            }
        }
        let (b, s) = (inputIds.shape[0], inputIds.shape[1])
        let counts = rowTokenCounts ?? [Int](repeating: s, count: b)
        guard counts.count == b, counts.allSatisfy({ (0...s).contains($0) }) else {
            throw DataError.invalidArgument("Batch: row token counts \(counts) must be \(b) values in 0...\(s)")
        }
        self.inputIds = inputIds
        self.labels = labels
        self.seqIdx = seqIdx
        self.positions = positions
        self.rowTokenCounts = counts
        self.ignoreIndex = ignoreIndex
        targetCount = labels.int64s.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
    }

    /// Rows B of the tensors, filler rows included (compare ``rowCount``).
    public var rows: Int { inputIds.shape[0] }
    /// Number of rows that hold at least one document token (the rest are filler).
    public var rowCount: Int { rowTokenCounts.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
    /// Number of non-padding tokens.
    public var tokenCount: Int { rowTokenCounts.reduce(0, +) }

    /// The batch of rows `range`, with its counts.
    ///
    /// - Parameter range: rows of this batch, within `0 ..< rows`.
    /// - Returns: a batch of `range.count` rows.
    /// - Throws: ``Tensors/TensorError`` when `range` is outside the rows.
    public func sliced(rows range: Range<Int>) throws -> Batch {
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw TensorError.invalidArgument("Batch: rows \(range) are outside 0..<\(rows)")
        }
        return try Batch(inputIds: inputIds.sliced(axis: 0, range), labels: labels.sliced(axis: 0, range),
                         seqIdx: seqIdx.sliced(axis: 0, range), positions: positions.sliced(axis: 0, range),
                         rowTokenCounts: Array(rowTokenCounts[range]), ignoreIndex: ignoreIndex)
    }
}
