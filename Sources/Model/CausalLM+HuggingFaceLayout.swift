// The parameters of a CausalLM under the tensor names of a Hugging Face checkpoint:
// the trunk as `LlamaForCausalLM` names it, the MTP depths as Hugging Face DeepSeek-V3
// does. Declared from the layers, never parsed from strings; import and export both
// read this one list.
//
// Depth k (0-based) of a model with L main layers is the layer `model.layers.{L+k}`:
//   enorm.weight, hnorm.weight, eh_proj.weight     the fusion
//   input_layernorm …, self_attn.…, mlp.…           the depth's decoder block
//   shared_head.norm.weight                         our final_layernorm
//   embed_tokens.weight, shared_head.head.weight    copies of the shared embedding and
//                                                    head (DeepSeek-V3 stores them per depth)
// Our own checkpoints name the norm `final_layernorm` and omit the copies; only this
// interchange layout differs.

import NN

/// One tensor of the Hugging Face layout.
public struct HuggingFaceTensor {
    /// The tensor's name in the checkpoint.
    public let name: String
    /// The model's parameter it holds.
    public let parameter: Parameter
    /// Whether the entry repeats a parameter stored under another name (DeepSeek-V3's
    /// per-depth `embed_tokens` and `shared_head.head`): written on export, not needed on import.
    public let isCopy: Bool
}

extension CausalLM {
    /// The model's tensors under their Hugging Face names, trunk first (`model.embed_tokens`,
    /// `model.layers.{i}`, `model.norm`, `lm_head` unless tied), then each MTP depth as
    /// `model.layers.{L+k}` in the DeepSeek-V3 layout (see the file header).
    ///
    /// - Parameter includingDepths: false lists the trunk alone.
    /// - Throws: ``ModelError`` when a depth has more than one block (DeepSeek-V3 has one).
    public func huggingFaceLayout(includingDepths: Bool = true) throws -> [HuggingFaceTensor] {
        var out: [HuggingFaceTensor] = []
        func add(_ layer: any Layer, _ prefix: String) {
            out += layer.namedParameters(prefix: prefix).map { HuggingFaceTensor(name: $0.name, parameter: $0.parameter, isCopy: false) }
        }
        add(embedTokens, "model.embed_tokens")
        for (i, block) in layers.enumerated() { add(block, "model.layers.\(i)") }
        add(norm, "model.norm")
        if !config.tieWordEmbeddings { add(lmHead, "lm_head") }
        guard let mtp, includingDepths else { return out }
        guard mtp.config.patternLength == 1 else {
            throw ModelError("MTP depths of \(mtp.config.patternLength) blocks have no Hugging Face DeepSeek-V3 layout (one block per depth)")
        }
        for k in 0..<mtp.config.numLayers {
            let depth = mtp.depths[mtp.config.useRepeatedLayer ? 0 : k]
            let prefix = "model.layers.\(config.layers + k)"
            add(depth.enorm, prefix + ".enorm")
            add(depth.hnorm, prefix + ".hnorm")
            add(depth.ehProj, prefix + ".eh_proj")
            add(depth.blocks[0], prefix)
            add(depth.finalLayernorm, prefix + ".shared_head.norm")
            out.append(HuggingFaceTensor(name: prefix + ".embed_tokens.weight", parameter: embedTokens.weight, isCopy: true))
            out.append(HuggingFaceTensor(name: prefix + ".shared_head.head.weight", parameter: lmHead.weight, isCopy: true))
        }
        return out
    }
}
