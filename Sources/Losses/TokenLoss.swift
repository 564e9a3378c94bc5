// The vocabulary of the per-token losses: reductions, errors, and the two
// protocols `calculateLoss` dispatches on.

import Tensors

/// How per-token losses are combined.
public enum LossReduction: String, Sendable, CaseIterable {
    /// Σ over non-ignored rows (divided by `numLabelTokens` when given).
    case sum
    /// Mean over non-ignored rows; 0 when there are none.
    case mean
    /// The per-row losses `[N]`, 0 at ignored rows.
    case none
}

/// Invalid input to a loss: one case per kind a caller may handle, each carrying a
/// message that names the offending values.
public enum LossError: Error, Equatable, CustomStringConvertible {
    /// A label outside `[0, V)` that is not the ignore index.
    case labelOutOfRange(String)
    /// Shapes that do not fit together (logits or hidden states and labels, a mask,
    /// the LM-head weight).
    case shapeMismatch(String)
    /// A tensor of the wrong element type (labels must be integer, logits floating point).
    case invalidDType(String)
    /// A tensor the loss needs and did not get: logits, hidden states, the LM head.
    case missingTensor(String)
    /// An argument outside its domain (chunk length, softcapping, `numLabelTokens`
    /// with a reduction other than sum, a loss type of neither kind).
    case invalidArgument(String)

    /// What went wrong, naming shapes and values.
    public var message: String {
        switch self {
        case .labelOutOfRange(let m), .shapeMismatch(let m), .invalidDType(let m), .missingTensor(let m),
             .invalidArgument(let m): m
        }
    }

    /// The message alone (the SPEC's wording, which error outputs and fixtures match).
    public var description: String { message }
}

/// A per-token loss (the seed's `loss_fn`): cross-entropy with an ignore index and a reduction.
public protocol TokenLoss: Sendable {
    /// Label value that contributes neither loss nor gradient.
    var ignoreIndex: Int { get }
    /// How per-row losses are combined.
    var reduction: LossReduction { get }
}

/// A loss computed from logits `[..., V]` and labels `[...]`.
public protocol LogitsLoss: TokenLoss {
    /// The loss of `logits` against `labels`.
    ///
    /// - Parameter numLabelTokens: with `.sum`, divides the loss (0 gives exactly 0
    ///   with zero gradients); illegal with other reductions.
    func loss(logits: Tensor, labels: Tensor, numLabelTokens: Int?) throws -> Tensor
}

/// A loss computed from hidden states `[..., H]` and the LM-head weight `[V, H]`
/// without materialising the logits.
public protocol FusedLinearLoss: TokenLoss {
    /// The loss of `hiddenStates · lmWeightᵀ` against `labels`.
    func loss(hiddenStates: Tensor, labels: Tensor, lmWeight: Tensor, numLabelTokens: Int?) throws -> Tensor
}

/// What a loss needs from a model: its LM head.
public protocol LMHeadProvider {
    /// The LM-head weight `[V, H]`, or nil when the model has no LM head.
    var lmHeadWeight: Tensor? { get }
}

extension LMHeadProvider {
    /// The head weight, or the SPEC's error when the model has none.
    public func requireLMHeadWeight() throws -> Tensor {
        guard let w = lmHeadWeight else { throw LossError.missingTensor("lm_head module not found in model") }
        return w
    }

    /// Logits of `hiddenStates` under the model's LM head (`h · Wᵀ`, no bias).
    ///
    /// - Throws: ``LossError`` "lm_head module not found in model" when there is no head.
    public func applyLMHead(_ hiddenStates: Tensor) throws -> Tensor {
        try Tensor.matmul(hiddenStates, requireLMHeadWeight(), transposeB: true)
    }
}
