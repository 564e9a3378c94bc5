// The shapes a Hugging Face directory's weights must have for a configuration read from its
// `config.json`, checked against the tensors before a model of that configuration is
// built: a config claiming a vocabulary of 10^12 or 10^9 layers is refused by name
// instead of being allocated. The shapes are those of the Llama layout (and DeepSeek-V3's
// MTP layers), which CausalLM+HuggingFaceLayout.swift produces from the layers' own
// declarations; loading checks every tensor against those declarations again.
//
// Legend: V vocab_size, H hidden_size, I intermediate_size, n num_attention_heads,
// g num_key_value_heads, d = H / n, L num_hidden_layers, D num_nextn_predict_layers.

import Tensors

extension ModelConfig {
    /// One expected tensor: its name, shape, and the config.json keys that set the shape.
    private typealias Expected = (name: String, shape: [Int], keys: String)

    /// Throws unless `tensors` (a Hugging Face directory's) hold this configuration's weights
    /// (depths as stored, ``mtpDepths``): every tensor of the Llama layout — embedding `[V, H]`,
    /// each block's projections and norms, the final norm, the head unless tied, each MTP
    /// layer's `enorm`, `hnorm`, `eh_proj` `[H, 2H]` and `shared_head.norm` — is present with
    /// its shape, no block past L + D - 1 exists, and the files hold at least as many values as
    /// the model has parameters. Runs in time proportional to the tensors present and allocates
    /// nothing, whatever the configuration claims.
    ///
    /// - Parameters:
    ///   - tensors: the directory's tensors.
    ///   - source: the `config.json` path, for messages.
    /// - Throws: ``ModelError`` naming the tensor, its shape, and the config keys and values
    ///   that imply another.
    public func checkMatches(huggingFace tensors: [String: Tensor], source: String) throws {
        let (blocks, overflow) = layers.addingReportingOverflow(mtpDepths)
        let counts = "num_hidden_layers \(layers)" + (mtpDepths > 0 ? " and num_nextn_predict_layers \(mtpDepths)" : "")
        guard !overflow else { throw ModelError("\(source): \(counts) overflow") }
        let next = "model.layers.\(blocks).input_layernorm.weight"
        if tensors[next] != nil {
            throw ModelError("\(source): \(counts), but the weights also have '\(next)'")
        }
        /// `presence`: the keys that make the tensors exist (the shapes' keys when nil).
        func check(_ expected: [Expected], presence: String? = nil) throws {
            for e in expected {
                guard let t = tensors[e.name] else {
                    throw ModelError("\(source): the weights have no '\(e.name)', which \(presence ?? e.keys) imply")
                }
                guard t.shape == e.shape else {
                    throw ModelError("\(source): '\(e.name)' has shape \(t.shape), but \(e.keys) imply \(e.shape)")
                }
            }
        }
        // Embedding first: it pins V and H before any per-block size is compared.
        try check([("model.embed_tokens.weight", [vocabularySize, hiddenSize], "vocab_size \(vocabularySize), hidden_size \(hiddenSize)")])
        // Block by block, so a claimed 10^9 layers stops at the first one missing.
        for i in 0..<blocks { try check(expectedBlock(i), presence: counts) }
        try check([("model.norm.weight", [hiddenSize], "hidden_size \(hiddenSize)")]
            + (tieWordEmbeddings ? [] : [("lm_head.weight", [vocabularySize, hiddenSize],
                                          "tie_word_embeddings false, vocab_size \(vocabularySize), hidden_size \(hiddenSize)")]))
        // Implied by the shapes above; kept as the guard that bounds what the model allocates.
        let held = tensors.values.reduce(0) { $0 &+ $1.count }
        guard let needed = parameterCount, needed <= held else {
            throw ModelError("\(source): the configuration implies \(parameterCount.map(String.init) ?? "more than 2^63") "
                + "parameters, the weights hold \(held) values")
        }
    }

    /// The tensors of block `i` (an MTP layer from `i = L` on).
    private func expectedBlock(_ i: Int) -> [Expected] {
        let h = hiddenSize, kv = keyValueHeads * headDimension, p = "model.layers.\(i)."
        let hidden = "hidden_size \(h)"
        let attention = "hidden_size \(h), num_attention_heads \(heads), num_key_value_heads \(keyValueHeads)"
        let mlp = "hidden_size \(h), intermediate_size \(intermediateSize)"
        var out: [Expected] = [
            (p + "input_layernorm.weight", [h], hidden),
            (p + "self_attn.q_proj.weight", [h, h], hidden),
            (p + "self_attn.k_proj.weight", [kv, h], attention),
            (p + "self_attn.v_proj.weight", [kv, h], attention),
            (p + "self_attn.o_proj.weight", [h, h], hidden),
            (p + "post_attention_layernorm.weight", [h], hidden),
            (p + "mlp.gate_proj.weight", [intermediateSize, h], mlp),
            (p + "mlp.up_proj.weight", [intermediateSize, h], mlp),
            (p + "mlp.down_proj.weight", [h, intermediateSize], mlp),
        ]
        if i >= layers {
            out += [(p + "enorm.weight", [h], hidden), (p + "hnorm.weight", [h], hidden),
                    (p + "eh_proj.weight", [h, 2 * h], hidden), (p + "shared_head.norm.weight", [h], hidden)]
        }
        return out
    }
}
