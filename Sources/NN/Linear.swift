// A fully connected layer, y = x·Wᵀ + b, with the weight stored [out, in] as
// PyTorch and Hugging Face checkpoints store it.

import Tensors

/// An affine map of the last axis: `y = x·Wᵀ (+ b)`.
///
/// Parameter names: `weight` (`[outFeatures, inFeatures]`) and, when present, `bias`
/// (`[outFeatures]`).
public final class Linear: Layer {
    /// `[outFeatures, inFeatures]`, initialised normal(0, std).
    public let weight: Parameter
    /// `[outFeatures]`, initialised to zeros; nil for a layer without bias.
    public let bias: Parameter?
    /// The extent of the input's last axis.
    public let inFeatures: Int
    /// The extent of the output's last axis.
    public let outFeatures: Int

    /// A layer with weights drawn from `generator`.
    ///
    /// - Parameters:
    ///   - inFeatures, outFeatures: the sizes (precondition: positive).
    ///   - bias: whether to add a bias (zeros at first).
    ///   - std: the standard deviation of the normal weight initialisation.
    ///   - generator: the seeded source of the initial weights; advanced by the weight's size.
    public init(inFeatures: Int, outFeatures: Int, bias: Bool = false, std: Float = 0.02, generator: inout SplitMix64) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear needs positive sizes, got \(inFeatures) → \(outFeatures)")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(Tensor.normal([outFeatures, inFeatures], std: std, generator: &generator))
        self.bias = bias ? Parameter(Tensor.zeros([outFeatures])) : nil
    }

    /// A layer around existing parameters (for tied weights or loaded values).
    ///
    /// - Parameters:
    ///   - weight: `[outFeatures, inFeatures]`.
    ///   - bias: `[outFeatures]`, or nil.
    /// - Throws: ``Tensors/TensorError/shapeMismatch(_:)`` when the weight is not 2-D or the bias does not fit it.
    public init(weight: Parameter, bias: Parameter? = nil) throws {
        guard weight.shape.count == 2, weight.shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.shapeMismatch("Linear weight must be [out, in] with positive sizes, got \(weight.shape)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError.shapeMismatch("Linear bias \(bias.shape) does not fit weight \(weight.shape)")
        }
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        self.weight = weight
        self.bias = bias
    }

    /// `weight`, then `bias` when the layer has one.
    public var ownParameters: [(key: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// `x·Wᵀ (+ b)` over the last axis.
    ///
    /// - Parameter x: `[..., inFeatures]`, any number of leading axes.
    /// - Returns: `[..., outFeatures]`.
    /// - Throws: ``Tensors/TensorError/shapeMismatch(_:)`` when the last axis is not `inFeatures`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1, x.shape[x.rank - 1] == inFeatures else {
            throw TensorError.shapeMismatch("Linear(\(inFeatures) → \(outFeatures)) applied to shape \(x.shape)")
        }
        // Folding the leading axes into rows makes this one GEMM (and the weight is never broadcast).
        let rows = try x.reshaped([-1, inFeatures])
        var y = try Tensor.matmul(rows, weight.value, transposeB: true)
        if let bias { y = try y + bias.value }
        return try y.reshaped(Array(x.shape.dropLast()) + [outFeatures])
    }
}
