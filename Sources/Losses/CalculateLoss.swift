// calculateLoss: the dispatcher between fused and logits losses.

import Tensors

/// Evaluates `lossFn` with the inputs its kind takes (the seed's `calculate_loss`).
///
/// A ``FusedLinearLoss`` takes `hiddenStates`, `labels` and the LM-head weight — `lmWeight`
/// when given, else the model's head weight. Any other loss takes `logits` and `labels`.
/// `numLabelTokens` is forwarded; arguments a loss kind does not use are ignored.
///
/// - Throws: ``LossError`` when the inputs the kind needs are missing ("lm_head module not
///   found in model" for a fused loss with no weight), and whatever the loss throws.
public func calculateLoss(_ lossFn: any TokenLoss, logits: Tensor? = nil, hiddenStates: Tensor? = nil,
                          labels: Tensor, model: (any LMHeadProvider)? = nil, lmWeight: Tensor? = nil,
                          numLabelTokens: Int? = nil) throws -> Tensor {
    switch lossFn {
    case let fused as any FusedLinearLoss:
        guard let hiddenStates else { throw LossError.missingTensor("FusedLinearCrossEntropy needs hidden_states") }
        guard let weight = try lmWeight ?? model?.requireLMHeadWeight() else {
            throw LossError.missingTensor("lm_head module not found in model")
        }
        return try fused.loss(hiddenStates: hiddenStates, labels: labels, lmWeight: weight, numLabelTokens: numLabelTokens)
    case let plain as any LogitsLoss:
        guard let logits else { throw LossError.missingTensor("\(type(of: plain)) needs logits") }
        return try plain.loss(logits: logits, labels: labels, numLabelTokens: numLabelTokens)
    default:
        throw LossError.invalidArgument("unsupported loss type \(type(of: lossFn)): conform to LogitsLoss or FusedLinearLoss")
    }
}
