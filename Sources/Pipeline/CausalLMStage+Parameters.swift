// Which parameters a stage owns: the ones its forward reads and its backward gives
// gradients to. A multi-process driver reduces, clips, updates and checkpoints by this
// split (each rank of a pipeline holds the current values of its own stage only).
//
//   stage 0     model.embed_tokens (the token embedding and the D MTP embeddings) and its blocks
//   stage s     its blocks
//   stage P−1   its blocks, model.norm, the MTP depths and lm_head
// With P = 1 the one stage owns everything.

import Model
import NN

extension CausalLMStage {
    /// The model's parameters that this stage reads and differentiates, in the model's
    /// ``NN/Layer/namedParameters()`` order (so names and order match a checkpoint's).
    public var ownedParameters: [(name: String, parameter: Parameter)] {
        var owned = Set<ObjectIdentifier>()
        func own(_ layer: any Layer) { for p in layer.parameters { owned.insert(ObjectIdentifier(p)) } }
        if stage == 0 { own(model.embedTokens) }
        for i in layers { own(model.layers[i]) }
        if stage == stageCount - 1 {
            own(model.norm)
            own(model.lmHead)
            if let mtp = model.mtp { own(mtp) }
        }
        return model.namedParameters().filter { owned.contains(ObjectIdentifier($0.parameter)) }
    }
}
