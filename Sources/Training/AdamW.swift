// AdamW (Loshchilov & Hutter): Adam moments with bias correction and weight decay
// decoupled from the gradient, plus global-norm gradient clipping and the
// warm-up + cosine learning-rate schedule.
//
//   m ← β₁m + (1−β₁)g        v ← β₂v + (1−β₂)g²
//   θ ← θ − lr·(m̂ / (√v̂ + ε) + λθ)      m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
// Weight decay applies to matrices only (norm weights and biases are not decayed,
// as in GPT-2/llm.c and most LLM recipes).
// The elementwise update is CRowKernels' `mtp_adamw_update` (the CPU's vector width, the same
// bits on every instruction set, and the bits of the Swift loop it replaced).

import CRowKernels
import Foundation
@_spi(Kernels) import Tensors
import NN

/// AdamW over named parameters, with state that round-trips through a checkpoint.
public final class AdamW {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var epsilon: Float = 1e-8
    public var weightDecay: Float
    /// Updates taken so far (t of the bias correction).
    public private(set) var step = 0
    private let parameters: [(name: String, parameter: Parameter)]
    private var m: [[Float]]
    private var v: [[Float]]

    public init(parameters: [(name: String, parameter: Parameter)], weightDecay: Float = 0.1) {
        self.parameters = parameters
        self.weightDecay = weightDecay
        m = parameters.map { [Float](repeating: 0, count: $0.parameter.value.count) }
        v = m
    }

    /// √(Σ g²) over every parameter's gradient (missing gradients count as 0).
    public func gradientNorm() -> Float {
        var s = 0.0
        for (_, p) in parameters {
            guard let g = p.grad?.float32Values() else { continue }
            let gp = g.floatPointer
            var local: Float = 0
            for i in 0..<g.count { local += gp[i] * gp[i] }
            s += Double(local)
        }
        return Float(s.squareRoot())
    }

    /// One update with learning rate `lr`, gradients scaled by `gradientScale`
    /// (clipping), then every gradient is cleared.
    public func update(learningRate lr: Float, gradientScale: Float = 1) {
        step += 1
        let c1 = 1 - Foundation.pow(beta1, Float(step)), c2 = 1 - Foundation.pow(beta2, Float(step))
        withoutGrad {
            for (i, (_, p)) in parameters.enumerated() {
                let decay = p.value.rank >= 2 ? weightDecay : 0
                let theta = p.value.float32Values()
                let n = theta.count
                let grad = p.grad?.float32Values()
                let updated = Tensor.makeFloat(theta.shape) { out in
                    let tp = UnsafePointer(theta.floatPointer)
                    let gp = grad.map { UnsafePointer($0.floatPointer) }
                    let (b1, b2, eps) = (beta1, beta2, epsilon)
                    m[i].withUnsafeMutableBufferPointer { mb in
                        v[i].withUnsafeMutableBufferPointer { vb in
                            let mp = mb.baseAddress!, vp = vb.baseAddress!
                            // Elementwise, so any split into blocks gives the same bits.
                            Parallel.forEachBlock(count: n, minimumPerBlock: 32_768) { block in
                                let j = block.lowerBound
                                mtp_adamw_update(tp + j, gp.map { $0 + j }, gradientScale, mp + j, vp + j, out + j, block.count,
                                                 b1, b2, c1, c2, lr, eps, decay)
                            }
                        }
                    }
                }
                p.value = updated.cast(to: p.value.dtype)
            }
        }
    }

    /// The optimizer state as tensors (`optimizer.exp_avg.<name>`, `optimizer.exp_avg_sq.<name>`).
    public func stateTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (i, (name, p)) in parameters.enumerated() {
            out["optimizer.exp_avg.\(name)"] = try Tensor(m[i], shape: p.shape)
            out["optimizer.exp_avg_sq.\(name)"] = try Tensor(v[i], shape: p.shape)
        }
        return out
    }

    /// Restores state written by ``stateTensors()`` and the step count.
    ///
    /// - Throws: ``TrainingError`` naming a missing or mis-shaped tensor.
    public func load(stateTensors tensors: [String: Tensor], step: Int) throws {
        var newM = m, newV = v
        for (i, (name, p)) in parameters.enumerated() {
            for (key, isFirst) in [("optimizer.exp_avg.\(name)", true), ("optimizer.exp_avg_sq.\(name)", false)] {
                guard let t = tensors[key] else { throw TrainingError("checkpoint has no '\(key)'") }
                guard t.shape == p.shape else { throw TrainingError("checkpoint '\(key)' has shape \(t.shape), expected \(p.shape)") }
                if isFirst { newM[i] = t.floats } else { newV[i] = t.floats }
            }
        }
        m = newM
        v = newV
        self.step = step
    }
}
