// Fresh MTP depths on a pretrained trunk (the common way MTP is used: add heads to a
// model trained without them, fine-tune, decode faster).
//
// Random depths would start far from anything useful and, through the shared head and
// embedding, disturb the trunk while they learn. So each depth starts as a copy of
// what the trunk already computes, and its fusion starts by passing the hidden state
// through (H hidden size; depth k fuses the embedding e of token t+k+1 with the
// previous state h):
//   enorm, hnorm      = ones                      (plain RMS normalisation)
//   eh_proj           = [0 | I]   [H, 2H]         x = hnorm(h): the embedding half is zero
//   block             = a copy of the trunk's last block
//   final_layernorm   = a copy of the trunk's final norm (model.norm)
// At the first step depth k therefore reads the previous state alone and predicts with
// the trunk's own last layer, head and final norm. The zero half of eh_proj still gets
// a gradient (outer product of the upstream with enorm(e)), so the depth starts to use
// the next token's embedding from the first update.

import NN
import Tensors

extension CausalLM {
    /// Sets every MTP depth to the initialisation described in the file header.
    ///
    /// - Throws: ``ModelError`` when the model has no MTP depths.
    public func initializeFreshDepths() throws {
        guard let mtp, let last = layers.last else { throw ModelError("the model has no MTP depths to initialise") }
        let h = config.hiddenSize
        var passThrough = [Float](repeating: 0, count: h * 2 * h)
        for i in 0..<h { passThrough[i * 2 * h + h + i] = 1 }
        let trunkBlock = last.parameterTensors()
        for depth in mtp.depths {
            depth.enorm.weight.value = Tensor.ones([h])
            depth.hnorm.weight.value = Tensor.ones([h])
            depth.ehProj.weight.value = try Tensor(passThrough, shape: [h, 2 * h])
            for block in depth.blocks { try block.loadParameters(trunkBlock) }
            depth.finalLayernorm.weight.value = norm.weight.value.detached()
        }
    }
}
