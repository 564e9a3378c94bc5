// Parameters and the layer protocol: every trainable tensor lives in a
// `Parameter` (a reference, so layers, optimizers and checkpoints share it), and
// every layer declares the keys of its parameters and sub-layers, from which the
// Hugging Face-style dotted names are built.

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

    /// Replaces the accumulated gradient (a multi-process reducer's sum), or forgets it with nil.
    ///
    /// - Throws: ``Tensors/TensorError`` when the shape differs from the value's.
    public func setGradient(_ gradient: Tensor?) throws { try value.setGradient(gradient) }

    /// The value's shape.
    public var shape: [Int] { value.shape }
}

/// A neural-network layer: an object owning parameters under stable names.
///
/// A layer declares its keys once and never parses them: a leaf lists its own
/// parameters (`"weight"`, `"bias"`), a container lists its sub-layers under the keys
/// of the checkpoint (`"self_attn"`, `"layers.3"`), and ``namedParameters()`` joins
/// the keys with dots (like mlx-swift-lm's `@ModuleInfo(key:)`, without reflection).
/// Both lists default to empty.
public protocol Layer: AnyObject {
    /// This layer's own parameters under their keys, in a fixed order (empty for a
    /// layer that only holds sub-layers).
    var ownParameters: [(key: String, parameter: Parameter)] { get }
    /// The sub-layers under their keys, in a fixed order (empty for a leaf). A key may
    /// contain dots when the checkpoint flattens a level (`"0.enorm"`).
    var children: [(key: String, layer: any Layer)] { get }
}

extension Layer {
    /// None by default: a container holds its parameters in sub-layers.
    public var ownParameters: [(key: String, parameter: Parameter)] { [] }
    /// None by default: a leaf holds only its own parameters.
    public var children: [(key: String, layer: any Layer)] { [] }

    /// Every parameter with its dotted name relative to this layer
    /// (`"weight"`, `"self_attn.q_proj.weight"`): the own parameters first, then each
    /// child's parameters under the child's key, in declaration order.
    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        ownParameters.map { (name: $0.key, parameter: $0.parameter) }
            + children.flatMap { $0.layer.namedParameters(prefix: $0.key) }
    }

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
