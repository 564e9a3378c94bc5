// Choosing tokens from logits, and the accept/reject rule of speculative sampling.
//
// Legend: V vocabulary, p the main model's distribution at a position, q the MTP
// depth's (draft) distribution there, both after temperature and top-p.
//
// Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): a draft x ~ q is
// accepted with probability min(1, p(x)/q(x)); on rejection the token is drawn from
// r = max(0, p − q) / Σ max(0, p − q). Then for every y
//   P(out = y) = q(y)·min(1, p(y)/q(y)) + (1 − Σₓ min(p(x), q(x))) · r(y)
//              = min(p(y), q(y)) + max(0, p(y) − q(y)) = p(y),
// whatever q is, so the output follows the main model exactly. Top-p is part of p
// and of q alike; p itself is what plain sampling draws from.
// At temperature 0, p and q are one-hot at their argmax and the rule reduces to
// "accept while the draft equals the main model's greedy token".

import Foundation
import Tensors

/// How the next token is chosen from a row of logits.
struct TokenSampler {
    /// 0 means greedy.
    let temperature: Double
    /// The nucleus mass, in (0, 1]; 1 keeps every token.
    let topP: Double

    var isGreedy: Bool { temperature == 0 }

    /// The index of the largest logit, the first one on ties.
    static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int32 {
        var best = 0
        for i in 1..<count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }

    /// Writes the sampling distribution of `logits` into `p` (`count` entries summing to 1):
    /// softmax(logits / T), restricted to the smallest set of most likely tokens whose mass
    /// reaches `topP` (ties broken by index) and renormalised.
    ///
    /// Edge cases: the nucleus always holds at least the most likely token.
    func distribution(_ logits: UnsafePointer<Float>, count: Int, into p: inout [Double]) {
        if p.count != count { p = [Double](repeating: 0, count: count) }
        var m = -Double.infinity
        for i in 0..<count { m = Swift.max(m, Double(logits[i])) }
        var total = 0.0
        for i in 0..<count {
            let e = Foundation.exp((Double(logits[i]) - m) / temperature)
            p[i] = e
            total += e
        }
        for i in 0..<count { p[i] /= total }
        guard topP < 1 else { return }
        let order = (0..<count).sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
        var kept = 0.0, cut = count
        for (rank, i) in order.enumerated() {
            kept += p[i]
            if kept >= topP { cut = rank + 1; break }
        }
        for i in order[cut...] { p[i] = 0 }
        for i in order[..<cut] { p[i] /= kept }
    }

    /// A token drawn from `p` by inverse CDF with one uniform of `generator`; a token of
    /// probability zero is never returned.
    static func sample(_ p: [Double], _ generator: inout SplitMix64) -> Int32 {
        let u = uniform(&generator)
        var cumulative = 0.0, last = 0
        for (i, pi) in p.enumerated() where pi > 0 {
            cumulative += pi
            last = i
            if u < cumulative { return Int32(i) }
        }
        return Int32(last)  // rounding left the total just below u
    }

    /// Whether speculative sampling keeps `draft` (drawn from `q`) against the target `p`.
    static func accepts(_ draft: Int32, target p: [Double], draft q: [Double], _ generator: inout SplitMix64) -> Bool {
        let d = Int(draft)
        return uniform(&generator) * q[d] < p[d]
    }

    /// The replacement for a rejected draft: a sample of max(0, p − q), renormalised.
    ///
    /// Edge cases: when p ≤ q everywhere (only reachable through rounding, since then
    /// every draft is accepted) it samples p itself.
    static func residual(target p: [Double], draft q: [Double], _ generator: inout SplitMix64) -> Int32 {
        var r = p
        var total = 0.0
        for i in r.indices {
            r[i] = Swift.max(0, p[i] - q[i])
            total += r[i]
        }
        guard total > 0 else { return sample(p, &generator) }
        for i in r.indices { r[i] /= total }
        return sample(r, &generator)
    }

    /// A uniform Double in [0, 1) on the 2⁻⁵³ grid.
    static func uniform(_ generator: inout SplitMix64) -> Double {
        Double(generator.next() >> 11) * 0x1p-53
    }
}
