// One LM-head weight gradient shared by several fused-loss calls (the main loss
// and every MTP depth), so that only one [V, H] gradient buffer ever exists.
//
// Each call adds hint_d · G_d into the buffer A during its forward, where G_d is
// its weight gradient for a unit upstream and hint_d the upstream it expects
// relative to the others (1 for the main loss, scalingFactor/D for a depth).
// In backward each call records its true upstream c_d; the proxy node, which
// runs after every reachable call, returns α·A with α = c/hint of the first call
// and adds (c_d − α·hint_d)·G_d, recomputed, for any call whose upstream was not
// what it expected (a call never reached has c_d = 0). The result is exact
// whatever the graph; the fast path costs nothing beyond the 3 GEMMs per call.

@_spi(Kernels) import Tensors

/// The shared state behind a weight wrapped by ``FusedLinearCrossEntropy/sharingWeightGradient(_:)``.
final class SharedWeightGradient: @unchecked Sendable {
    final class Contribution: @unchecked Sendable {
        let hint: Float
        var upstream: Float = 0
        let recompute: (UnsafeMutablePointer<Float>, Float) -> Void
        init(hint: Float, recompute: @escaping (UnsafeMutablePointer<Float>, Float) -> Void) {
            self.hint = hint
            self.recompute = recompute
        }
    }

    let shape: [Int]
    /// The upstream the next call should expect, relative to the main loss.
    var scaleHint: Float = 1
    private var buffer: Tensor?
    private var consumed = false
    private var exact: Tensor?
    private var contributions: [Contribution] = []

    init(shape: [Int]) { self.shape = shape }

    /// A = Σ hint_d · G_d, allocated on first use.
    func accumulator() -> UnsafeMutablePointer<Float> {
        if buffer == nil { buffer = Tensor.zeros(shape) }
        return buffer!.floatPointer
    }

    /// Contributions computed exactly in backward (reduction `none`).
    func exactBuffer() -> UnsafeMutablePointer<Float> {
        if exact == nil { exact = Tensor.zeros(shape) }
        return exact!.floatPointer
    }

    func add(hint: Float, recompute: @escaping (UnsafeMutablePointer<Float>, Float) -> Void) -> Contribution {
        let c = Contribution(hint: hint, recompute: recompute)
        contributions.append(c)
        return c
    }

    /// The weight gradient for the upstreams recorded in this backward pass, plus
    /// `direct`: a full-shape gradient that ordinary ops on the shared weight sent.
    func assemble(direct: Tensor? = nil) throws -> Tensor {
        let haveBuffer = !consumed
        let lead = contributions.first { $0.hint != 0 && $0.upstream != 0 }
        let alpha: Float = haveBuffer ? (lead.map { $0.upstream / $0.hint } ?? 0) : 0
        var result: Tensor
        if haveBuffer, alpha != 0, let a = buffer {
            result = a
            if alpha != 1 {
                let p = a.floatPointer
                for i in 0..<a.count { p[i] *= alpha }
            }
        } else {
            result = Tensor.zeros(shape)
        }
        buffer = nil
        consumed = true
        for c in contributions {
            let expected = alpha * c.hint
            let delta = c.upstream - expected
            if Swift.abs(delta) > 1e-6 * Swift.max(Swift.abs(c.upstream), Swift.abs(expected)) {
                c.recompute(result.floatPointer, delta)
            }
            c.upstream = 0
        }
        if let e = exact {
            let p = result.floatPointer, q = e.floatPointer
            for i in 0..<e.count { p[i] += q[i] }
            exact = nil
        }
        if let direct { result = try result + direct }
        return result
    }
}

extension FusedLinearCrossEntropy {
    /// `weight`, wrapped so that every fused loss computed with the returned tensor adds
    /// into one shared `[V, H]` gradient buffer instead of holding its own.
    ///
    /// Use it when the same LM head serves several losses in one step (the main loss and
    /// each MTP depth): peak memory then holds one weight gradient, not one per loss.
    /// Gradients are exact whatever is back-propagated. When recording is off or the
    /// weight needs no gradient, `weight` is returned unchanged.
    public static func sharingWeightGradient(_ weight: Tensor) -> Tensor {
        if weight.gradientAttachment is SharedWeightGradient { return weight }
        let shared = SharedWeightGradient(shape: weight.shape)
        // Fused calls send a scalar placeholder; ordinary ops on the proxy (a matmul for a
        // logits loss, say) send full-shape gradients, which the engine sums with it.
        return weight.gradientProxy(gradientShape: [], attachment: shared) { g in
            try shared.assemble(direct: g.count > 1 || g.shape == weight.shape ? g : nil)
        }
    }

    /// Runs `body` with fused losses on a shared `weight` expecting an upstream gradient of
    /// `scale` relative to the main loss (e.g. `scalingFactor / D` for an MTP depth).
    /// A wrong expectation costs a recomputation, never correctness.
    public static func expectingUpstream<R>(_ scale: Float, on weight: Tensor, _ body: () throws -> R) rethrows -> R {
        guard let shared = weight.gradientAttachment as? SharedWeightGradient else { return try body() }
        let saved = shared.scaleHint
        shared.scaleHint = scale
        defer { shared.scaleHint = saved }
        return try body()
    }
}
