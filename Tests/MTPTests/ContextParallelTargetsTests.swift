// The loss side of context parallelism: rows cut into chunks after the per-depth labels were
// rolled and masked on whole rows, each chunk's loss from `perDepthTargets` normalised by the
// whole batch's target counts. The chunks' losses and gradients must add up to the unsplit
// call's, including at a document that crosses the cut (its boundary masking is done before
// the cut). The loss exchanges nothing between chunks, so this runs in one process; the
// attention's exchange is checked by the mpirun training tests.

import Losses
import MTP
import Tensors
import XCTest

final class ContextParallelTargetsTests: XCTestCase {
    func testChunksWithPreRolledTargetsAddUpToTheUnsplitLoss() throws {
        let (b, s, h, v, depths) = (2, 12, 5, 11, 2)
        var g = SplitMix64(seed: 3)
        let weight = Tensor.normal([v, h], generator: &g)
        let mainHidden = Tensor.normal([b, s, h], generator: &g)
        let depthHidden = (0..<depths).map { _ in Tensor.normal([b, s, h], generator: &g) }
        let labels = int64Tensor((0..<(b * s)).map { _ in Int64(g.next() % UInt64(v)) }, [b, s])
        // Row 0: documents 0 (positions 0–4) and 1 (5–11) — document 1 crosses the cut at 6.
        // Row 1: one document to position 7, then another.
        let seqIdx = int64Tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1], [b, s])
        let fused = FusedLinearCrossEntropy(reduction: .sum)
        let scaling: Float = 0.3

        // One process, whole rows: mean over each term's targets (sum / count).
        let depthLabels = try (0..<depths).map { try mtpDepthLabels(labels, depth: $0, seqIdx: seqIdx) }
        func count(_ t: Tensor) -> Int { t.int64s.filter { $0 != -100 }.count }
        let counts = depthLabels.map(count)
        func run(chunks: [Range<Int>]) throws -> (loss: Float, grads: [Tensor]) {
            let w = weight.requiringGrad(), hm = mainHidden.requiringGrad(), hd = depthHidden.map { $0.requiringGrad() }
            var total: Tensor? = nil
            for chunk in chunks {
                func cut(_ t: Tensor) throws -> Tensor { try t.sliced(axis: 1, chunk) }
                let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
                var loss = try calculateLoss(fused, hiddenStates: cut(hm), labels: cut(labels), lmWeight: shared,
                                             numLabelTokens: count(labels))
                for k in 0..<depths {
                    loss = try loss + calculateMTPLoss(fused, perDepthHidden: [cut(hd[k])], perDepthTargets: [cut(depthLabels[k])],
                                                       labels: cut(labels), scalingFactor: scaling / Float(depths),
                                                       numLabelTokens: counts[k], lmWeight: shared)
                }
                total = try total.map { try $0 + loss } ?? loss
            }
            try total!.backward()
            return (total!.floats[0], [w.grad!, hm.grad!] + hd.map { $0.grad! })
        }
        let whole = try run(chunks: [0..<s])
        // The unsplit reference through the seed's own rolling (seqIdx, no explicit targets).
        let w = weight.requiringGrad()
        let shared = FusedLinearCrossEntropy.sharingWeightGradient(w)
        let seedLoss = try calculateLoss(fused, hiddenStates: mainHidden, labels: labels, lmWeight: shared, numLabelTokens: count(labels))
        let perDepth = try calculateMTPLossPerDepth(fused, perDepthHidden: depthHidden, labels: labels, scalingFactor: scaling,
                                                    seqIdx: seqIdx, lmWeight: shared).perDepthLosses
        let expected = seedLoss.floats[0] + scaling / Float(depths) * zip(perDepth, counts).reduce(Float(0)) { $0 + $1.0.floats[0] / Float($1.1) }
        XCTAssertEqual(whole.loss, expected, accuracy: 1e-5 * abs(expected))
        for cuts in [[0..<6, 6..<12], [0..<3, 3..<6, 6..<9, 9..<12]] {
            let split = try run(chunks: cuts)
            XCTAssertEqual(split.loss, whole.loss, accuracy: 1e-5 * abs(whole.loss), "\(cuts)")
            for (a, b) in zip(whole.grads, split.grads) {
                let scale = a.floats.map { abs($0) }.max()!
                let diff = zip(a.floats, b.floats).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "\(cuts)")
            }
        }
    }
}
