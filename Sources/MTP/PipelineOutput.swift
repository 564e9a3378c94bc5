// What the last pipeline stage hands to its loss: the SPEC §4 tuple, a model-output
// record, or a bare tensor.

import Tensors

/// A model's output as a record (the seed's `CausalLMOutput` with MTP fields).
public struct CausalLMOutput {
    /// Main-head logits `[B, S, V]`.
    public var logits: Tensor?
    /// Final hidden states `[B, S, H]` (used by a fused loss).
    public var hiddenStates: Tensor?
    /// Per-depth MTP hidden states.
    public var perDepthHidden: [Tensor]?
    /// Per-depth MTP logits.
    public var perDepthLogits: [Tensor]?
    /// The model's MTP loss coefficient for this output, if it reports one.
    public var mtpLossScalingFactor: Float?

    /// A record with the given fields (all optional).
    public init(logits: Tensor? = nil, hiddenStates: Tensor? = nil, perDepthHidden: [Tensor]? = nil,
                perDepthLogits: [Tensor]? = nil, mtpLossScalingFactor: Float? = nil) {
        self.logits = logits
        self.hiddenStates = hiddenStates
        self.perDepthHidden = perDepthHidden
        self.perDepthLogits = perDepthLogits
        self.mtpLossScalingFactor = mtpLossScalingFactor
    }
}

/// What the last pipeline stage hands to its loss.
public enum PipelineOutput {
    /// `(first, *rest)`: `first` is logits (logits loss) or final hidden states (fused loss);
    /// `rest` are the per-depth MTP outputs, optionally followed by this microbatch's
    /// `seqIdx` as an Int32 `[B, S]` tail.
    case tuple(first: Tensor, rest: [Tensor])
    /// A model-output record.
    case record(CausalLMOutput)
    /// A bare tensor: hidden states for a fused loss, logits otherwise; no MTP.
    case tensor(Tensor)

    /// The tuple form from an array of elements (at least one).
    ///
    /// - Throws: ``MTPError`` for an empty tuple.
    public static func tuple(_ elements: [Tensor]) throws -> PipelineOutput {
        guard let first = elements.first else { throw MTPError.missingTensor("pipeline output tuple is empty") }
        return .tuple(first: first, rest: Array(elements.dropFirst()))
    }

    /// Splits a trailing per-microbatch `seqIdx` off a tuple (the seed's
    /// `_extract_seq_idx_tail`): the last element is the tail exactly when it is an
    /// Int32 rank-2 tensor — dtype alone discriminates (an Int64 one stays an MTP output).
    public func extractingSeqIdxTail() -> (seqIdx: Tensor?, output: PipelineOutput) {
        guard case .tuple(let first, var rest) = self, let last = rest.last,
              last.dtype == .int32, last.rank == 2 else { return (nil, self) }
        rest.removeLast()
        return (last, .tuple(first: first, rest: rest))
    }
}
