// Adaptive drafting: how many MTP depths draft at each speculative step.
//
// Legend: D′ the most depths a generation may draft, d the depths drafted this step
// (0 … D′; d = 0 is a plain step), aₖ the running acceptance of depth k (the chance its
// draft passes, given that every earlier draft of its step passed), V(m) the cost of a
// main forward over m rows, Cₖ the cost of drafting with depth k (its rows and its LM head).
//
// The rule. Drafting d depths costs one verification of d + 1 rows plus d drafts,
//   T(d) = V(d + 1) + Σ_{k<d} Cₖ,
// and yields in expectation
//   E(d) = 1 + Σ_{j<d} Π_{k≤j} aₖ
// tokens (draft j counts when drafts 0 … j all pass; the main model's own token always
// counts). Each step drafts the d that maximises E(d) / T(d), tokens per unit of time,
// the smallest d on ties. E(0) / T(0) = 1 / V(1) is plain decoding, so a step is never
// planned slower than a plain one. Depth k is drafted only when its expected extra tokens,
// Π_{i≤k} aᵢ, buy more than its cost Cₖ + V(k + 2) − V(k + 1) at the step's rate; a depth
// with aₖ = 0 adds no tokens and strictly adds cost (Cₖ > 0 and V non-decreasing are
// enforced), so it is never drafted — nor is any deeper one through it.
//
// Costs: measured once per generator (the fastest of a few timed runs of each call on a
// throw-away sequence), as EAGLE-2 and Medusa-style decoders tune their draft length to
// what verification costs on the machine at hand.
//
// Running acceptance: per depth, decayed counts of checks and passes, each step multiplied
// by γ = 0.95 (about the last 20 steps weigh), and a prior worth w = 1 check:
//   aₖ = (passedₖ + w · priorₖ) / (checkedₖ + w).
// (A heavier prior would prop the estimate up for good: with checks saturating at
// 1 / (1 − γ) = 20, a depth that never passes keeps aₖ ≥ w · priorₖ / (20 + w).)
// A depth that stops being drafted sees its evidence fade, so its estimate drifts back to
// its prior and it is tried again later (unless the prior is 0). The prior is the
// checkpoint's teacher-forced agreement of depth k with the main head when known (what
// `mtp train` evaluates), else 1 — start as if every draft passed, and let rejections
// speak. Greedy output does not depend on d; sampled output follows the main model for
// any d (TokenSampler.swift), so the rule changes speed only.

/// What a speculative step's pieces cost, in one unit (seconds when measured).
public struct DraftingCosts: Sendable, Equatable {
    /// `verification[m − 1]`: a main forward over m rows, m = 1 … D + 1 (m = 1 is a plain step).
    public var verification: [Double]
    /// `drafting[k]`: one drafting call of depth k.
    public var drafting: [Double]

    /// - Parameters:
    ///   - verification: D + 1 positive costs, by row count.
    ///   - drafting: D positive costs, by depth.
    public init(verification: [Double], drafting: [Double]) {
        self.verification = verification
        self.drafting = drafting
    }
}

/// The per-step choice of how many depths draft (see the file header).
struct DraftingController {
    static let decay = 0.95
    static let priorWeight = 1.0

    /// Cumulative costs: `planCost[d]` = T(d), strictly increasing in d.
    let planCost: [Double]
    let prior: [Double]
    private(set) var passed: [Double]
    private(set) var checked: [Double]

    /// - Parameters:
    ///   - costs: the measured costs (at least `depths` drafting and `depths + 1` verification entries).
    ///   - prior: per-depth starting acceptance in [0, 1] (missing entries are 1).
    ///   - depths: D′, the most depths a step may draft.
    init(costs: DraftingCosts, prior: [Double]?, depths: Int) {
        precondition(costs.verification.count > depths && costs.drafting.count >= depths,
                     "DraftingController: costs for \(costs.verification.count) rows and \(costs.drafting.count) depths, need \(depths)")
        // Guard the strict growth of T against timing noise: V non-decreasing, every draft costing something.
        let tiny = 1e-6 * Swift.max(costs.verification[0], 1e-12)
        var v = costs.verification[0]
        var total = 0.0
        var plan: [Double] = []
        for d in 0...depths {
            v = Swift.max(v, costs.verification[d])
            plan.append(v + total)
            if d < depths { total += Swift.max(costs.drafting[d], tiny) }
        }
        planCost = plan
        self.prior = (0..<depths).map { k in Swift.min(1, Swift.max(0, prior.flatMap { k < $0.count ? $0[k] : nil } ?? 1)) }
        passed = [Double](repeating: 0, count: depths)
        checked = passed
    }

    /// aₖ, the running acceptance of depth k.
    func acceptance(_ k: Int) -> Double {
        (passed[k] + Self.priorWeight * prior[k]) / (checked[k] + Self.priorWeight)
    }

    /// The depths to draft this step: argmax over d of E(d) / T(d), the smallest on ties.
    func depthsToDraft() -> Int {
        var best = 0, bestRate = 1 / planCost[0]
        var expected = 1.0, reach = 1.0
        for d in 1..<planCost.count {
            reach *= acceptance(d - 1)
            if reach == 0 { break }
            expected += reach
            let rate = expected / planCost[d]
            if rate > bestRate { best = d; bestRate = rate }
        }
        return best
    }

    /// Records a step that drafted `drafted` depths of which the first `accepted` passed
    /// (depth `accepted` was then checked and failed, if `accepted < drafted`).
    mutating func record(drafted: Int, accepted: Int) {
        for k in passed.indices {
            passed[k] *= Self.decay
            checked[k] *= Self.decay
        }
        for k in 0..<Swift.min(drafted, accepted + 1) {
            checked[k] += 1
            if k < accepted { passed[k] += 1 }
        }
    }
}
