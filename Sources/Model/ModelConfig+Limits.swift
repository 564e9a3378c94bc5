// Sizes of a model before it exists: the parameter count a configuration implies, with
// overflow checks, so a configuration from a flag or from checkpoint metadata can be
// refused (too big for the machine, or not what the file's tensors hold) before a single
// weight is allocated.

import Tensors

extension ModelConfig {
    /// The number of parameters a ``CausalLM`` of this configuration has; nil on overflow.
    ///
    /// embed V·H and, untied, head V·H; per decoder block (L trunk + D MTP) attention
    /// q, o 2·H² and k, v 2·H·(g·d) (g key/value heads of dimension d) + SwiGLU 3·H·I + two
    /// norms 2·H; per MTP depth the fusion eh_proj 2·H² and three norms 3·H; final norm H.
    public var parameterCount: Int? {
        let h = hiddenSize, i = intermediateSize, v = vocabularySize
        let p = MemoryBudget.product
        let attention = MemoryBudget.sum([p([2, h, h]), p([2, h, keyValueHeads, headDimension])])
        let block = MemoryBudget.sum([attention, p([3, h, i]), p([2, h])])
        let blocks = MemoryBudget.sum([layers, mtpDepths])
        let depth = MemoryBudget.sum([p([2, h, h]), p([3, h])])
        return MemoryBudget.sum([p([tieWordEmbeddings ? 1 : 2, v, h]), block.flatMap { b in blocks.flatMap { p([b, $0]) } },
                                 depth.flatMap { p([$0, mtpDepths]) }, h])
    }

    /// Throws unless the weights, their gradients and the two AdamW moments (16 bytes a
    /// parameter) fit in memory.
    /// - Throws: ``Tensors/MemoryBudgetError`` naming the sizes.
    public func checkFitsInMemory() throws {
        try MemoryBudget.check(bytes: parameterCount.flatMap { MemoryBudget.product([$0, 16]) },
                               for: "a model of vocabulary \(vocabularySize), hidden \(hiddenSize), \(layers) layers, "
                                   + "intermediate \(intermediateSize), \(mtpDepths) MTP depths (weights, gradients, AdamW moments)")
    }

    /// Throws unless `tensors` (a checkpoint's) can hold this configuration's weights: the
    /// embedding is `[V, H]`, every block up to L + D - 1 is present and none past it, and
    /// the file holds at least as many values as the model has parameters. Checked before
    /// the model is built, so metadata claiming a huge model fails without allocating it.
    /// - Throws: ``ModelError`` naming the tensor and the metadata value.
    public func checkMatches(_ tensors: [String: Tensor], source: String) throws {
        try validate()
        let embed = "model.embed_tokens.weight"
        guard let e = tensors[embed] else { throw ModelError("\(source): no tensor \(embed)") }
        guard e.shape == [vocabularySize, hiddenSize] else {
            throw ModelError("\(source): model_config says vocabulary \(vocabularySize) and hidden \(hiddenSize), "
                + "but \(embed) has shape \(e.shape)")
        }
        let blocks = layers + mtpDepths
        let last = "model.layers.\(blocks - 1).input_layernorm.weight", next = "model.layers.\(blocks).input_layernorm.weight"
        guard tensors[last] != nil, tensors[next] == nil else {
            throw ModelError("\(source): model_config says \(layers) layers and \(mtpDepths) MTP depths, but the file "
                + (tensors[last] == nil ? "has no \(last)" : "also has \(next)"))
        }
        for name in ["model.norm.weight"] + (tieWordEmbeddings ? [] : ["lm_head.weight"]) where tensors[name] == nil {
            throw ModelError("\(source): no tensor \(name)")
        }
        let stored = tensors.values.reduce(0) { $0 &+ $1.count }
        guard let needed = parameterCount, needed <= stored else {
            throw ModelError("\(source): model_config implies \(parameterCount.map(String.init) ?? "more than 2^63") parameters, "
                + "the file holds \(stored) values")
        }
    }

    /// Throws for scale factors that are not finite and >= 0.
    func validateScales() throws {
        guard mtpLossScalingFactor.isFinite, mtpLossScalingFactor >= 0 else {
            throw ModelError("MTP loss scaling factor (--mtp-scale) must be a finite number >= 0, got \(mtpLossScalingFactor)")
        }
    }
}
