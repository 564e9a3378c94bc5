// A frozen Float32 copy of a CausalLM's weights laid out for incremental decoding.
//
// Legend: H hidden size, I MLP intermediate size, V vocabulary, n heads, d = H/n.
// Every projection is stored transposed, `[in, out]` row-major, so a step's rows
// multiply it as `x[M, in] · W[in, out]` with no transpose flag: OpenBLAS's
// no-transpose kernels are the faster ones for the 1–8 rows of a decoding step
// (measured here: 96×96 at M = 1, 0.5 µs against 0.75 µs transposed).

import Model
@_spi(Kernels) import Tensors
import MTP
import NN

/// An owned, fixed-size Float32 matrix `[rows, columns]`, row-major.
final class DecodingMatrix {
    let rows: Int
    let columns: Int
    let pointer: UnsafeMutablePointer<Float>

    /// A copy of `values` (`rows × columns` row-major).
    init(rows: Int, columns: Int, values: UnsafePointer<Float>) {
        self.rows = rows
        self.columns = columns
        pointer = .allocate(capacity: Swift.max(1, rows * columns))
        pointer.update(from: values, count: rows * columns)
    }

    /// The transpose `[in, out]` of a bias-free `Linear`'s weight (stored `[out, in]`).
    convenience init(transposing linear: Linear) {
        precondition(linear.bias == nil, "decoding supports the model's bias-free projections only")
        let w = linear.weight.value.float32Values()
        let (out, inp) = (w.shape[0], w.shape[1])
        let t = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, out * inp))
        defer { t.deallocate() }
        let src = w.floatPointer
        for o in 0..<out {
            for i in 0..<inp { t[i * out + o] = src[o * inp + i] }
        }
        self.init(rows: inp, columns: out, values: t)
    }

    /// A copy of a rank-1 or rank-2 tensor as it is laid out.
    convenience init(copying tensor: Tensor) {
        let w = tensor.float32Values()
        let rows = w.rank == 2 ? w.shape[0] : 1
        self.init(rows: rows, columns: w.count / Swift.max(1, rows), values: w.floatPointer)
    }

    deinit { pointer.deallocate() }
}

/// One decoder block's weights (see ``DecoderBlock``), projections transposed.
struct DecodingBlock {
    let inputNorm: DecodingMatrix       // [1, H]
    let inputEpsilon: Float
    let q: DecodingMatrix               // [H, H]
    let k: DecodingMatrix
    let v: DecodingMatrix
    let o: DecodingMatrix
    let postNorm: DecodingMatrix        // [1, H]
    let postEpsilon: Float
    let gate: DecodingMatrix            // [H, I]
    let up: DecodingMatrix              // [H, I]
    let down: DecodingMatrix            // [I, H]

    init(_ block: DecoderBlock) {
        inputNorm = DecodingMatrix(copying: block.inputLayernorm.weight.value)
        inputEpsilon = block.inputLayernorm.epsilon
        q = DecodingMatrix(transposing: block.selfAttn.qProj)
        k = DecodingMatrix(transposing: block.selfAttn.kProj)
        v = DecodingMatrix(transposing: block.selfAttn.vProj)
        o = DecodingMatrix(transposing: block.selfAttn.oProj)
        postNorm = DecodingMatrix(copying: block.postAttentionLayernorm.weight.value)
        postEpsilon = block.postAttentionLayernorm.epsilon
        gate = DecodingMatrix(transposing: block.mlp.gateProj)
        up = DecodingMatrix(transposing: block.mlp.upProj)
        down = DecodingMatrix(transposing: block.mlp.downProj)
    }
}

/// One MTP depth's weights (see ``MTP/MTPDepth``).
struct DecodingDepth {
    let enorm: DecodingMatrix           // [1, H]
    let enormEpsilon: Float
    let hnorm: DecodingMatrix           // [1, H]
    let hnormEpsilon: Float
    let ehProj: DecodingMatrix          // [2H, H]: rows 0..<H take enorm(embedding), rows H..<2H hnorm(h)
    let blocks: [DecodingBlock]
    let finalNorm: DecodingMatrix       // [1, H]
    let finalEpsilon: Float

    init(_ depth: MTPDepth) {
        enorm = DecodingMatrix(copying: depth.enorm.weight.value)
        enormEpsilon = depth.enorm.epsilon
        hnorm = DecodingMatrix(copying: depth.hnorm.weight.value)
        hnormEpsilon = depth.hnorm.epsilon
        ehProj = DecodingMatrix(transposing: depth.ehProj)
        blocks = depth.blocks.map(DecodingBlock.init)
        finalNorm = DecodingMatrix(copying: depth.finalLayernorm.weight.value)
        finalEpsilon = depth.finalLayernorm.epsilon
    }
}

/// The whole model's decoding weights: a snapshot, so training the source model
/// afterwards does not change a ``Generator`` built from it.
struct DecodingWeights {
    let hiddenSize: Int
    let heads: Int
    let vocabularySize: Int
    let intermediateSize: Int
    let ropeBase: Double
    let embedding: DecodingMatrix       // [V, H]
    let layers: [DecodingBlock]
    let norm: DecodingMatrix            // [1, H]
    let normEpsilon: Float
    let lmHead: DecodingMatrix          // [H, V]
    /// One entry per logical MTP depth (a repeated layer appears D times).
    let depths: [DecodingDepth]

    var headDimension: Int { hiddenSize / heads }

    init(_ model: CausalLM) {
        let c = model.config
        hiddenSize = c.hiddenSize
        heads = c.heads
        vocabularySize = c.vocabularySize
        intermediateSize = c.intermediateSize
        ropeBase = model.layers.first?.selfAttn.rotary.base ?? 10_000
        embedding = DecodingMatrix(copying: model.embedTokens.weight.value)
        layers = model.layers.map(DecodingBlock.init)
        norm = DecodingMatrix(copying: model.norm.weight.value)
        normEpsilon = model.norm.epsilon
        lmHead = DecodingMatrix(transposing: model.lmHead)
        if let mtp = model.mtp {
            let physical = mtp.depths.map(DecodingDepth.init)
            depths = (0..<mtp.config.numLayers).map { physical[mtp.config.useRepeatedLayer ? 0 : $0] }
        } else {
            depths = []
        }
    }
}
