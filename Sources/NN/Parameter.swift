// Parameters and the layer protocol: every trainable tensor lives in a
// `Parameter` (a reference, so layers, optimizers and checkpoints share it), and
// every layer lists its parameters under Hugging Face-style dotted names.

import Tensors

/// A trainable tensor shared by reference between a layer, an optimizer and a checkpoint.
///
/// `value` is always a leaf of the autograd graph: assigning a tensor (for example an
/// optimizer update computed inside ``Tensors/withoutGrad(_:)``) stores it as a fresh
/// leaf, detached from any history, with no accumulated gradient.
public final class Parameter {
    /// The current value, a leaf that requires a gradient.
    public var value: Tensor {
        didSet {
            // Assigning inside one's own didSet does not re-enter the observer.
            if !(value.requiresGrad && value.isLeaf) { value = value.detached().requiringGrad() }
        }
    }

    /// Wraps `value` as a new leaf.
    ///
    /// Precondition: the dtype is floating point.
    public init(_ value: Tensor) {
        self.value = value.detached().requiringGrad()
    }

    /// The gradient accumulated by `backward()` since the last ``zeroGrad()``, in the value's dtype.
    public var grad: Tensor? { value.grad }

    /// Forgets the accumulated gradient.
    public func zeroGrad() { value.zeroGrad() }

    /// The value's shape.
    public var shape: [Int] { value.shape }
}

/// A neural-network layer: an object owning parameters under stable names.
public protocol Layer: AnyObject {
    /// Every parameter with its dotted name relative to this layer
    /// (`"weight"`, `"self_attn.q_proj.weight"`), in a fixed order.
    func namedParameters() -> [(name: String, parameter: Parameter)]
}

extension Layer {
    /// ``namedParameters()`` with `prefix + "."` in front of every name (no dot when
    /// `prefix` is empty): how a parent names its children's parameters.
    public func namedParameters(prefix: String) -> [(name: String, parameter: Parameter)] {
        guard !prefix.isEmpty else { return namedParameters() }
        return namedParameters().map { (name: prefix + "." + $0.name, parameter: $0.parameter) }
    }

    /// The parameters in ``namedParameters()`` order.
    public var parameters: [Parameter] { namedParameters().map(\.parameter) }

    /// The total number of scalars in the parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Forgets the accumulated gradient of every parameter.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// The parameter values by name, detached (for checkpoints).
    public func parameterTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, p) in namedParameters() { out[name] = p.value.detached() }
        return out
    }

    /// Replaces parameter values with tensors looked up by name (`prefix + "." + name`
    /// when `prefix` is non-empty), converted to each parameter's dtype.
    ///
    /// Nothing is changed unless every parameter is found with the right shape.
    /// - Parameters:
    ///   - tensors: tensors by name; extra entries are ignored.
    ///   - prefix: the name of this layer inside `tensors`.
    /// - Throws: ``Tensors/TensorError/invalidArgument(_:)`` naming a missing key,
    ///   ``Tensors/TensorError/shapeMismatch(_:)`` naming a key whose shape differs.
    public func loadParameters(_ tensors: [String: Tensor], prefix: String = "") throws {
        var updates: [(Parameter, Tensor)] = []
        for (name, p) in namedParameters(prefix: prefix) {
            guard let t = tensors[name] else {
                throw TensorError.invalidArgument("loadParameters: no tensor named '\(name)'")
            }
            guard t.shape == p.shape else {
                throw TensorError.shapeMismatch("loadParameters: '\(name)' has shape \(t.shape), the parameter \(p.shape)")
            }
            guard t.dtype.isFloatingPoint else {
                throw TensorError.unsupportedDType("loadParameters: '\(name)' is \(t.dtype), parameters are floating point")
            }
            updates.append((p, t.detached().cast(to: p.value.dtype)))
        }
        for (p, t) in updates { p.value = t }
    }
}
