// Reverse-mode automatic differentiation.
//
// Each differentiable op records a `GradNode` holding its inputs' nodes and a
// pullback written next to the op's forward code. `backward()` walks the graph
// in reverse topological order and adds into leaf gradients. A checkpoint's node
// (Autograd+Checkpoint.swift) instead recomputes its part of the graph and walks it
// from inside the walk, adding into the same sums.

import Foundation

/// A node of the autograd graph: a leaf (a tensor that requires a gradient)
/// or the record of one op.
final class GradNode: @unchecked Sendable {
    let inputs: [GradNode?]
    /// Maps the gradient of the op's output (Float32, output's shape) to the
    /// gradients of its inputs (Float32, each input's shape; nil = none).
    let pullback: ((Tensor) throws -> [Tensor?])?
    /// Instead of `pullback`: adds the gradients of its inputs into the running sums itself
    /// (a checkpoint, whose recomputed graph sends them part by part: Autograd+Checkpoint.swift).
    let summingPullback: ((Tensor, GradientSums) throws -> Void)?
    let shape: [Int]
    let dtype: DType
    /// The accumulated gradient of a leaf.
    var grad: Tensor?
    /// State a fused kernel keeps with a gradient proxy (see ``Tensor/gradientProxy(gradientShape:attachment:pullback:)``).
    var attachment: AnyObject?
    private let lock = NSLock()

    init(inputs: [GradNode?], pullback: ((Tensor) throws -> [Tensor?])?,
         summingPullback: ((Tensor, GradientSums) throws -> Void)? = nil, shape: [Int], dtype: DType) {
        self.inputs = inputs
        self.pullback = pullback
        self.summingPullback = summingPullback
        self.shape = shape
        self.dtype = dtype
    }

    var isLeaf: Bool { pullback == nil && summingPullback == nil }

    func accumulate(_ g: Tensor) throws {
        let g = g.dtype == dtype ? g : g.cast(to: dtype)
        lock.lock(); defer { lock.unlock() }
        guard var old = grad else { grad = g.detached(); return }
        grad = nil
        // A Float32 gradient this node alone holds is added to in place (no new buffer, one
        // pass); a shared one (a pullback may hand one tensor to several inputs) is copied.
        if old.dtype == .float32, g.dtype == .float32, old.shape == g.shape, isKnownUniquelyReferenced(&old.storage) {
            let o = old.storage.bytes.assumingMemoryBound(to: Float.self)
            let a = UnsafePointer(g.storage.bytes.assumingMemoryBound(to: Float.self))
            withExtendedLifetime(g) {
                Parallel.forEachBlock(count: old.count, minimumPerBlock: 65_536) { block in
                    for i in block { o[i] += a[i] }
                }
            }
            grad = old
        } else {
            grad = try (old + g).detached()
        }
    }
}

/// The gradients one back-propagation is summing, by node. A nested back-propagation (a
/// checkpoint's recomputed graph) routes the parts meant for some nodes to an enclosing
/// one's sums: they are added there one at a time, in the order in which the graph without
/// the checkpoint adds them, so the sums keep their bits.
final class GradientSums {
    private var sums: [ObjectIdentifier: Tensor] = [:]
    private let routes: [ObjectIdentifier: (sums: GradientSums, node: GradNode)]

    /// Empty sums; a part for a node among `routes`' keys goes to its route's sums and node.
    init(routes: [ObjectIdentifier: (sums: GradientSums, node: GradNode)] = [:]) {
        self.routes = routes
    }

    /// Adds `part` to the gradient of `node` (or of the node it is routed to).
    func add(_ part: Tensor, to node: GradNode) throws {
        if let route = routes[ObjectIdentifier(node)] { return try route.sums.add(part, to: route.node) }
        let key = ObjectIdentifier(node)
        if let old = sums[key] { sums[key] = try old + part } else { sums[key] = part }
    }

    /// The gradient summed for `node`, forgotten here; nil when none arrived.
    func take(_ node: GradNode) -> Tensor? { sums.removeValue(forKey: ObjectIdentifier(node)) }
}

/// Whether ops record the autograd graph on this thread or task.
public enum GradMode {
    @TaskLocal static var enabled = true

    /// Whether recording is on.
    public static var isEnabled: Bool { enabled }
}

/// Runs `body` without recording the autograd graph (inference, optimizer updates).
public func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$enabled.withValue(false, operation: body)
}

extension Tensor {
    /// Whether this tensor takes part in the autograd graph.
    public var requiresGrad: Bool { gradNode != nil }

    /// A copy of this tensor that is a new leaf of the autograd graph.
    ///
    /// Precondition: the dtype is floating point (integers have no gradient).
    public func requiringGrad() -> Tensor {
        precondition(dtype.isFloatingPoint, "only floating-point tensors can require a gradient, not \(dtype)")
        var t = self
        t.gradNode = GradNode(inputs: [], pullback: nil, shape: shape, dtype: dtype)
        return t
    }

    /// The same values with no autograd history.
    public func detached() -> Tensor {
        var t = self
        t.gradNode = nil
        return t
    }

    /// The gradient accumulated into this leaf by ``backward(_:)``, in the leaf's dtype.
    public var grad: Tensor? { gradNode?.grad }

    /// Forgets the accumulated gradient of this leaf.
    public func zeroGrad() { gradNode?.grad = nil }

    /// Replaces the gradient accumulated in this leaf: how a multi-process reducer writes
    /// back the sum of the ranks' gradients.
    ///
    /// - Parameter gradient: this tensor's shape (any floating-point dtype; stored as this
    ///   tensor's dtype), or nil to forget the gradient.
    /// - Throws: ``TensorError`` when this tensor is not a leaf that requires a gradient, or
    ///   the shape differs.
    public func setGradient(_ gradient: Tensor?) throws {
        guard let node = gradNode, node.isLeaf else {
            throw TensorError.invalidArgument("setGradient on a tensor that is not a leaf requiring a gradient")
        }
        guard let gradient else { node.grad = nil; return }
        guard gradient.shape == shape, gradient.dtype.isFloatingPoint else {
            throw TensorError.shapeMismatch("setGradient: gradient \(gradient.shape) \(gradient.dtype) for a leaf of shape \(shape)")
        }
        node.grad = gradient.detached().cast(to: dtype)
    }

    /// Whether this tensor is a leaf of the graph (created by ``requiringGrad()``).
    public var isLeaf: Bool { gradNode?.isLeaf ?? true }

    /// Back-propagates from this tensor, adding into the ``grad`` of every leaf it depends on.
    ///
    /// - Parameter upstream: the gradient of some scalar with respect to this tensor;
    ///   may be omitted only when this tensor has one element (it is then 1).
    /// - Throws: ``TensorError`` when this tensor does not require a gradient, or when
    ///   `upstream` is missing for a non-scalar or has another shape.
    public func backward(_ upstream: Tensor? = nil) throws {
        guard let root = gradNode else {
            throw TensorError.invalidArgument("backward() on a tensor that does not require a gradient")
        }
        let seed: Tensor
        if let u = upstream {
            guard u.shape == shape else {
                throw TensorError.shapeMismatch("upstream gradient shape \(u.shape) differs from tensor shape \(shape)")
            }
            seed = u.cast(to: .float32).detached()
        } else {
            guard count == 1 else {
                throw TensorError.shapeMismatch("backward() without an upstream gradient needs a one-element tensor, shape is \(shape)")
            }
            seed = Tensor.ones(shape)
        }
        try withoutGrad { try Tensor.propagate(from: root, seed: seed) { leaf, g in try leaf.accumulate(g) } }
    }

    /// Back-propagates `seed` from `root` through the op nodes it depends on and hands each
    /// leaf its summed gradient (Float32, uncast) once, through `deliver`; the parts for the
    /// nodes in `routes` go to other sums instead.
    ///
    /// Re-entrant: all state is local, so a pullback may call it (a checkpoint does, see
    /// ``checkpointed(_:parameters:_:)``). Call it with recording off.
    static func propagate(from root: GradNode, seed: Tensor,
                          routes: [ObjectIdentifier: (sums: GradientSums, node: GradNode)] = [:],
                          deliver: (GradNode, Tensor) throws -> Void) throws {
        // Iterative post-order DFS: a node comes after every node it feeds.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (node, next) = stack.popLast() {
            if next < node.inputs.count {
                stack.append((node, next + 1))
                if let child = node.inputs[next], visited.insert(ObjectIdentifier(child)).inserted {
                    stack.append((child, 0))
                }
            } else {
                order.append(node)
            }
        }
        let sums = GradientSums(routes: routes)
        try sums.add(seed, to: root)
        for node in order.reversed() {
            guard let g = sums.take(node) else { continue }
            if let summing = node.summingPullback {
                try summing(g, sums)
                continue
            }
            guard let pullback = node.pullback else {
                try deliver(node, g)
                continue
            }
            let inputGrads = try pullback(g)
            precondition(inputGrads.count == node.inputs.count, "pullback returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
            for (input, ig) in zip(node.inputs, inputGrads) {
                guard let input, let ig else { continue }
                // A gradient proxy (shape []) also accepts full-shape gradients from ordinary ops.
                precondition(ig.shape == input.shape || input.attachment != nil,
                             "pullback gradient shape \(ig.shape) != input shape \(input.shape)")
                try sums.add(ig, to: input)
            }
        }
    }

    /// Attaches an op record to this freshly computed tensor when recording is on
    /// and some input requires a gradient.
    ///
    /// The pullback must not capture the returned tensor (only this node-less value).
    @_spi(Kernels) public func recording(_ inputs: [Tensor], pullback: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        guard GradMode.enabled, inputs.contains(where: { $0.gradNode != nil }) else { return self }
        var t = self
        t.gradNode = GradNode(inputs: inputs.map(\.gradNode), pullback: pullback, shape: shape, dtype: dtype)
        return t
    }

    /// A tensor sharing this one's storage whose autograd node receives gradients of
    /// shape `gradientShape` (not this tensor's shape) and turns them, through `pullback`,
    /// into this tensor's gradient. Fused kernels use it to assemble one weight gradient
    /// from several calls (the node's `attachment` holds their shared state).
    ///
    /// Returns `self` unchanged when recording is off or this tensor needs no gradient.
    @_spi(Kernels) public func gradientProxy(gradientShape: [Int], attachment: AnyObject,
                                             pullback: @escaping (Tensor) throws -> Tensor?) -> Tensor {
        guard GradMode.enabled, let node = gradNode else { return self }
        var t = self
        let proxy = GradNode(inputs: [node], pullback: { g in [try pullback(g)] }, shape: gradientShape, dtype: .float32)
        proxy.attachment = attachment
        t.gradNode = proxy
        return t
    }

    /// The attachment of this tensor's gradient proxy node, if it is one.
    @_spi(Kernels) public var gradientAttachment: AnyObject? { gradNode?.attachment }
}
