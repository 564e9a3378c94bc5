// Activation checkpointing (PyTorch's torch.utils.checkpoint, Megatron-LM's full
// recompute): a sub-computation y = body(x; θ) whose intermediate activations are not
// kept for the backward pass.
//
// Forward   y = body(x) with recording off: nothing of body's graph is kept; one node
//           records y with inputs (x, θ₁ … θₙ) and keeps x alone.
// Backward  given g = ∂L/∂y: x′ = a fresh leaf with x's values; y′ = body(x′) with
//           recording on (the same ops in the same order, so y′ has y's bits); a nested
//           back-propagation of g from y′ whose parts for x′ and θᵢ are routed, one at a
//           time, into the enclosing back-propagation's sums for x and θᵢ. Without the
//           checkpoint those parts would be added there one at a time too, by the same
//           nodes in the same order (body's nodes feed nothing outside body, so the order
//           among them does not depend on the rest of the graph): every sum keeps its bits,
//           also for a parameter read several times in body, shared by several checkpointed
//           calls or read outside them.
// Cost: one more forward of body per backward; memory: x instead of body's activations.

/// `body(input)`, with `body`'s activations recomputed in the backward pass instead of kept:
/// activation checkpointing, as PyTorch's `torch.utils.checkpoint`.
///
/// With recording on, `body` runs now without recording its graph, and the result's node
/// keeps only `input`; when the backward reaches it, `body` runs again on `input`'s values
/// with recording on and its graph is back-propagated at once. The gradients go to
/// `input`'s graph and to `parameters` as they would without checkpointing, bit for bit,
/// when `body` computes the same bits each time it runs.
///
/// - Parameters:
///   - input: the tensor whose gradient flows through `body`.
///   - parameters: every tensor requiring a gradient that `body` reads besides its argument
///     (the leaves of a layer's parameters), read again at the recomputation.
///   - body: a deterministic function of its argument and `parameters`; called once now and
///     once more per backward pass through the result. Collectives inside it (context
///     parallelism) run again in the backward, on every rank in the same order.
/// - Returns: `body(input)`.
/// - Throws: whatever `body` throws; in the backward pass, whatever its recomputation and
///   its pullbacks throw.
///
/// Edge cases: with recording off (``withoutGrad(_:)``), or when neither `input` nor a
/// parameter requires a gradient, this is `body(input)` and nothing is recomputed.
/// Precondition (at the backward): the recomputed graph reads no leaf requiring a gradient
/// other than `input` and `parameters`.
public func checkpointed(_ input: Tensor, parameters: [Tensor], _ body: @escaping (Tensor) throws -> Tensor) throws -> Tensor {
    guard GradMode.enabled, input.requiresGrad || parameters.contains(where: \.requiresGrad) else { return try body(input) }
    var output = try withoutGrad { try body(input) }
    let kept = input.detached()
    let inputNode = input.gradNode
    let parameterNodes = parameters.compactMap(\.gradNode)
    let recompute = { (g: Tensor, outer: GradientSums) throws in
        let x = inputNode == nil ? kept : kept.requiringGrad()
        let y = try GradMode.$enabled.withValue(true) { try body(x) }
        precondition(y.shape == g.shape, "checkpointed: the recomputed output has shape \(y.shape), the first \(g.shape)")
        guard let root = y.gradNode else { return }
        // Every part for x′ or a parameter is added into the enclosing sums as it comes.
        var routes: [ObjectIdentifier: (sums: GradientSums, node: GradNode)] = [:]
        if let inner = x.gradNode, let inputNode { routes[ObjectIdentifier(inner)] = (outer, inputNode) }
        for node in parameterNodes { routes[ObjectIdentifier(node)] = (outer, node) }
        try withoutGrad {
            try Tensor.propagate(from: root, seed: g, routes: routes) { leaf, _ in
                preconditionFailure("checkpointed: the body reads a tensor of shape \(leaf.shape) that requires a gradient "
                    + "and is neither its input nor one of the parameters")
            }
        }
    }
    output.gradNode = GradNode(inputs: [inputNode] + parameters.map(\.gradNode), pullback: nil, summingPullback: recompute,
                               shape: output.shape, dtype: output.dtype)
    return output
}
