// SPEC §3: calculateMTPLoss. Every depth's labels are written out by hand below
// and checked through per-row losses (reduction `none`): a masked position has a
// row of exactly 0, any other row equals the float64 cross-entropy of its logits
// against the hand-written target.
//
// Letters: T tokens, B batch, S sequence, V = 5 vocabulary, H = 3 hidden, D depths.

import Foundation
import Losses
import MTP
import Tensors
import XCTest

/// Ignored label (the default ignore index).
private let X: Int64 = -100
private let V = 5, H = 3

final class CalculateMTPLossTests: XCTestCase {
    private let rows = MaskedCrossEntropy(reduction: .none)

    /// Per-depth logits `[shape..., V]`, distinct for each depth.
    private func depthLogits(_ shape: [Int], depths: Int, seed: UInt64 = 10) -> [Tensor] {
        (0..<depths).map { Tensor.uniform(shape + [V], low: -2, high: 2, seed: seed + UInt64($0)) }
    }

    /// Checks each depth's per-row losses against the hand-written labels: 0 exactly where
    /// the label is ignored, the float64 cross-entropy elsewhere.
    private func assertDepthRows(_ out: MTPLossOutput, logits: [Tensor], expected: [[Int64]],
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(out.perDepthLosses.count, expected.count, "depth count", file: file, line: line)
        for (k, (loss, want)) in zip(out.perDepthLosses, expected).enumerated() {
            let got = loss.floats
            XCTAssertEqual(got.count, want.count, "depth \(k) rows", file: file, line: line)
            for (i, t) in want.enumerated() where t == X {
                XCTAssertEqual(got[i], 0, "depth \(k) row \(i) must be masked", file: file, line: line)
            }
            assertClose(got, referenceRows(logits[k].floats, vocab: V, labels: want), "depth \(k)", file: file, line: line)
        }
    }

    // MARK: Masks, worked out by hand

    /// THD: two 4-token sub-sequences packed in 8 tokens.
    private let packedLabels: [Int64] = [1, 2, 3, 4, 4, 3, 2, 1]
    /// Depth 0 sees labels rolled left by 1: position 3 would read across the boundary, 7 is the tail.
    private let packedDepth0: [Int64] = [2, 3, 4, X, 3, 2, 1, X]
    /// Depth 1 sees labels rolled left by 2: positions 2, 3 cross the boundary, 6, 7 are the tail.
    private let packedDepth1: [Int64] = [3, 4, X, X, 2, 1, X, X]

    func testPackedTHDWithCuSeqlens() throws {
        let logits = depthLogits([8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(packedLabels, [8]),
                                               cuSeqlens: int64Tensor([0, 4, 8], [3]))
        assertDepthRows(out, logits: logits, expected: [packedDepth0, packedDepth1])
    }

    func testPackedTHDWithSeqIdxOfArbitraryValues() throws {
        let logits = depthLogits([8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(packedLabels, [8]),
                                               seqIdx: int32Tensor([7, 7, 7, 7, -3, -3, -3, -3], [8]))
        assertDepthRows(out, logits: logits, expected: [packedDepth0, packedDepth1])
    }

    func testOneBySeqIdxIsSqueezedForTHDLabels() throws {
        let logits = depthLogits([8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(packedLabels, [8]),
                                               seqIdx: int64Tensor([0, 0, 0, 0, 1, 1, 1, 1], [1, 8]))
        assertDepthRows(out, logits: logits, expected: [packedDepth0, packedDepth1])
    }

    func testOneByCuSeqlensIsSqueezed() throws {
        let logits = depthLogits([8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(packedLabels, [8]),
                                               cuSeqlens: int32Tensor([0, 4, 8], [1, 3]))
        assertDepthRows(out, logits: logits, expected: [packedDepth0, packedDepth1])
    }

    func testSeqIdxWinsOverCuSeqlens() throws {
        // seqIdx: one sequence of 8 tokens; cuSeqlens (ignored) would split it in two.
        let logits = depthLogits([8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(packedLabels, [8]),
                                               cuSeqlens: int64Tensor([0, 4, 8], [3]), seqIdx: int64Tensor([Int64](repeating: 2, count: 8), [8]))
        assertDepthRows(out, logits: logits, expected: [[2, 3, 4, 4, 3, 2, 1, X], [3, 4, 4, 3, 2, 1, X, X]])
    }

    func testCuSeqlensWithTailPadding() throws {
        // Sequences [0, 3) and [3, 6); 6, 7 are padding (index n = 2), a sequence of their own.
        let logits = depthLogits([8], depths: 1)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor([1, 2, 3, 4, 0, 1, 2, 3], [8]),
                                               cuSeqlens: int64Tensor([0, 3, 6], [3]))
        assertDepthRows(out, logits: logits, expected: [[2, 3, X, 0, 1, X, 3, X]])
    }

    /// BSHD rows: row 0 = [1 2 3 4 4 3 2 1], row 1 = [0 1 2 3 4 0 1 2].
    private let batchLabels: [Int64] = [1, 2, 3, 4, 4, 3, 2, 1,
                                        0, 1, 2, 3, 4, 0, 1, 2]

    func testBSHDWithoutPackingMasksOnlyTheTail() throws {
        let logits = depthLogits([2, 8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(batchLabels, [2, 8]))
        assertDepthRows(out, logits: logits, expected: [
            [2, 3, 4, 4, 3, 2, 1, X,
             1, 2, 3, 4, 0, 1, 2, X],
            [3, 4, 4, 3, 2, 1, X, X,
             2, 3, 4, 0, 1, 2, X, X],
        ])
    }

    func testBSHDWithPerRowSeqIdx() throws {
        // Row 0: {0…3} {4…7}; row 1: {0…5} {6, 7}.
        let logits = depthLogits([2, 8], depths: 2)
        let seq = int64Tensor([0, 0, 0, 0, 1, 1, 1, 1,
                               3, 3, 3, 3, 3, 3, 8, 8], [2, 8])
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(batchLabels, [2, 8]),
                                               seqIdx: seq)
        assertDepthRows(out, logits: logits, expected: [
            [2, 3, 4, X, 3, 2, 1, X,
             1, 2, 3, 4, 0, X, 2, X],
            [3, 4, X, X, 2, 1, X, X,
             2, 3, 4, 0, X, X, X, X],
        ])
    }

    /// Both rows packed as {0…3} {4…7}.
    private let broadcastExpected: [[Int64]] = [
        [2, 3, 4, X, 3, 2, 1, X,
         1, 2, 3, X, 0, 1, 2, X],
        [3, 4, X, X, 2, 1, X, X,
         2, 3, X, X, 1, 2, X, X],
    ]

    func testOneDimensionalSeqIdxIsBroadcastOverTheBatch() throws {
        let logits = depthLogits([2, 8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(batchLabels, [2, 8]),
                                               seqIdx: int64Tensor([0, 0, 0, 0, 1, 1, 1, 1], [8]))
        assertDepthRows(out, logits: logits, expected: broadcastExpected)
    }

    func testCuSeqlensWithBSHDLabelsIsBroadcastOverTheBatch() throws {
        let logits = depthLogits([2, 8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(batchLabels, [2, 8]),
                                               cuSeqlens: int64Tensor([0, 4, 8], [3]))
        assertDepthRows(out, logits: logits, expected: broadcastExpected)
    }

    func testIgnoredLabelsStayIgnoredAfterRolling() throws {
        let logits = depthLogits([6], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor([1, X, 3, 4, X, 2], [6]))
        assertDepthRows(out, logits: logits, expected: [[X, 3, 4, X, 2, X], [3, 4, X, 2, X, X]])
    }

    func testCustomIgnoreIndex() throws {
        let ignoring = MaskedCrossEntropy(ignoreIndex: -1, reduction: .none)
        let logits = depthLogits([5], depths: 1)
        let out = try calculateMTPLossPerDepth(ignoring, perDepthLogits: logits, labels: int64Tensor([1, 2, -1, 3, 4], [5]),
                                               ignoreIndex: -1)
        let got = out.perDepthLosses[0].floats
        assertClose(got, referenceRows(logits[0].floats, vocab: V, labels: [2, -1, 3, 4, -1], ignoreIndex: -1))
        XCTAssertEqual(got[4], 0, "the tail is filled with the caller's ignore index")
    }

    func testDepthsBeyondTheSequenceLengthAreFullyMasked() throws {
        let logits = depthLogits([3], depths: 4)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor([1, 2, 3], [3]))
        assertDepthRows(out, logits: logits, expected: [[2, 3, X], [3, X, X], [X, X, X], [X, X, X]])
        // With mean, a depth with no valid row contributes 0, not NaN.
        let mean = try calculateMTPLossPerDepth(MaskedCrossEntropy(reduction: .mean), perDepthLogits: logits,
                                                labels: int64Tensor([1, 2, 3], [3]))
        XCTAssertEqual(mean.perDepthLosses[2].floats, [0])
        XCTAssert(mean.loss.floats[0].isFinite)
    }

    // MARK: Layouts

    func testTHDSqueezesLeadingOneOfPerDepthOutputs() throws {
        let logits = depthLogits([8], depths: 2)
        let unsqueezed = try logits.map { try $0.unsqueezed(axis: 0) }
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: unsqueezed, labels: int64Tensor(packedLabels, [8]),
                                               cuSeqlens: int64Tensor([0, 4, 8], [3]))
        assertDepthRows(out, logits: logits, expected: [packedDepth0, packedDepth1])

        // Hidden path, [1, T, H], both with a logits loss and the fused loss.
        let w = Tensor.uniform([V, H], low: -1, high: 1, seed: 3)
        let h = (0..<2).map { Tensor.uniform([1, 8, H], low: -1, high: 1, seed: 20 + UInt64($0)) }
        let want = (0..<2).map { k in
            referenceRows(referenceLogits(h[k].floats, w.floats, hidden: H), vocab: V, labels: [packedDepth0, packedDepth1][k])
                .reduce(0, +)
        }
        for lossFn in [MaskedCrossEntropy() as any TokenLoss, FusedLinearCrossEntropy()] {
            let hidden = try calculateMTPLossPerDepth(lossFn, perDepthHidden: h, labels: int64Tensor(packedLabels, [8]),
                                                      model: LossModel(lmHeadWeight: w), cuSeqlens: int64Tensor([0, 4, 8], [3]))
            assertClose(hidden.perDepthLosses.map { $0.floats[0] }, want, "\(type(of: lossFn))")
        }
    }

    func testBSHDOutputsOfShapeOneAreNotSqueezed() throws {
        // B = 1 with 2-D labels: [1, S, V] matches labels [1, S] as it is.
        let logits = depthLogits([1, 4], depths: 1)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor([1, 2, 3, 4], [1, 4]))
        XCTAssertEqual(out.perDepthLosses[0].shape, [4])
        assertDepthRows(out, logits: logits, expected: [[2, 3, 4, X]])
    }

    // MARK: Explicit targets

    func testPerDepthTargetsAreUsedVerbatim() throws {
        // Not rolls of the labels, and the last positions are NOT masked.
        let targets: [[Int64]] = [[0, 1, 2, 3, 4, 0, 1, 2], [4, X, 4, 0, 4, 1, 4, 2]]
        let logits = depthLogits([8], depths: 2)
        let out = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, perDepthTargets: targets.map { int64Tensor($0, [8]) },
                                               labels: int64Tensor(packedLabels, [8]))
        assertDepthRows(out, logits: logits, expected: targets)
        // Int32 targets work too.
        let out32 = try calculateMTPLossPerDepth(rows, perDepthLogits: logits,
                                                 perDepthTargets: targets.map { int32Tensor($0.map { Int32($0) }, [8]) },
                                                 labels: int64Tensor(packedLabels, [8]))
        assertDepthRows(out32, logits: logits, expected: targets)
    }

    // MARK: Depth losses and scaling

    func testHiddenPathWithALogitsLossAppliesTheModelHead() throws {
        let w = Tensor.uniform([V, H], low: -1, high: 1, seed: 4)
        let h = (0..<2).map { Tensor.uniform([8, H], low: -1, high: 1, seed: 30 + UInt64($0)) }
        let out = try calculateMTPLossPerDepth(rows, perDepthHidden: h, labels: int64Tensor(packedLabels, [8]),
                                               model: LossModel(lmHeadWeight: w), cuSeqlens: int64Tensor([0, 4, 8], [3]))
        let logits = h.map { floatTensor(referenceLogits($0.floats, w.floats, hidden: H), [8, V]) }
        assertDepthRows(out, logits: logits, expected: [packedDepth0, packedDepth1])
    }

    func testFusedLossUsesLmWeightOverTheModelHead() throws {
        let w = Tensor.uniform([V, H], low: -1, high: 1, seed: 5).requiringGrad()
        let other = Tensor.uniform([V, H], low: -1, high: 1, seed: 6).requiringGrad()
        let h = [Tensor.uniform([8, H], low: -1, high: 1, seed: 40)]
        let out = try calculateMTPLossPerDepth(FusedLinearCrossEntropy(), perDepthHidden: h, labels: int64Tensor(packedLabels, [8]),
                                               model: LossModel(lmHeadWeight: other), scalingFactor: 1,
                                               cuSeqlens: int64Tensor([0, 4, 8], [3]), lmWeight: w)
        let want = referenceRows(referenceLogits(h[0].floats, w.floats, hidden: H), vocab: V, labels: packedDepth0).reduce(0, +)
        assertClose(out.loss.floats, [want])
        try out.loss.backward()
        XCTAssertNotNil(w.grad)
        XCTAssertNil(other.grad, "the model's head is not used when lmWeight is given")
    }

    func testScalingIsTheSumTimesFactorOverDepthsAndPerDepthIsUnscaled() throws {
        let logits = depthLogits([8], depths: 2)
        let labels = int64Tensor(packedLabels, [8]), cu = int64Tensor([0, 4, 8], [3])
        let d0 = referenceRows(logits[0].floats, vocab: V, labels: packedDepth0).reduce(0, +)
        let d1 = referenceRows(logits[1].floats, vocab: V, labels: packedDepth1).reduce(0, +)

        let out = try calculateMTPLossPerDepth(MaskedCrossEntropy(), perDepthLogits: logits, labels: labels, scalingFactor: 0.3,
                                               cuSeqlens: cu)
        XCTAssertEqual(out.loss.shape, [])
        assertClose(out.perDepthLosses.map { $0.floats[0] }, [d0, d1], "unscaled per-depth losses")
        assertClose(out.loss.floats, [(d0 + d1) * Double(Float(0.3)) / 2])

        // The plain overload returns the same loss; the default factor is 0.1.
        let plain = try calculateMTPLoss(MaskedCrossEntropy(), perDepthLogits: logits, labels: labels, cuSeqlens: cu)
        assertClose(plain.floats, [(d0 + d1) * Double(Float(0.1)) / 2])
        let zero = try calculateMTPLoss(MaskedCrossEntropy(), perDepthLogits: logits, labels: labels, scalingFactor: 0, cuSeqlens: cu)
        XCTAssertEqual(zero.floats, [0])

        // Reduction none: the scaled loss is Σ_k rows_k · sf / D, row by row.
        let none = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: labels, scalingFactor: 0.5, cuSeqlens: cu)
        let r0 = referenceRows(logits[0].floats, vocab: V, labels: packedDepth0)
        let r1 = referenceRows(logits[1].floats, vocab: V, labels: packedDepth1)
        assertClose(none.loss.floats, zip(r0, r1).map { ($0 + $1) * 0.5 / 2 })
    }

    func testNumLabelTokensIsForwardedUnchangedToEveryDepth() throws {
        // Depth 0 has 6 valid rows and depth 1 has 4, but both divide by the given 5.
        let logits = depthLogits([8], depths: 2)
        let labels = int64Tensor(packedLabels, [8]), cu = int64Tensor([0, 4, 8], [3])
        let d0 = referenceRows(logits[0].floats, vocab: V, labels: packedDepth0).reduce(0, +)
        let d1 = referenceRows(logits[1].floats, vocab: V, labels: packedDepth1).reduce(0, +)
        let out = try calculateMTPLossPerDepth(MaskedCrossEntropy(), perDepthLogits: logits, labels: labels, scalingFactor: 1,
                                               numLabelTokens: 5, cuSeqlens: cu)
        assertClose(out.perDepthLosses.map { $0.floats[0] }, [d0 / 5, d1 / 5])
        assertClose(out.loss.floats, [(d0 + d1) / 5 / 2])

        let none = try calculateMTPLoss(MaskedCrossEntropy(), perDepthLogits: logits, labels: labels, numLabelTokens: 0, cuSeqlens: cu)
        XCTAssertEqual(none.floats, [0])
        assertThrows(try calculateMTPLoss(MaskedCrossEntropy(reduction: .mean), perDepthLogits: logits, labels: labels,
                                          numLabelTokens: 5), containing: "mean")
    }

    func testInt32AndInt64LabelsGiveTheSameLoss() throws {
        let logits = depthLogits([2, 8], depths: 2)
        let seq = int64Tensor([0, 0, 0, 0, 1, 1, 1, 1], [8])
        let l64 = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int64Tensor(batchLabels, [2, 8]),
                                               seqIdx: seq)
        let l32 = try calculateMTPLossPerDepth(rows, perDepthLogits: logits, labels: int32Tensor(batchLabels.map { Int32($0) }, [2, 8]),
                                               seqIdx: seq.cast(to: .int32))
        assertDepthRows(l64, logits: logits, expected: broadcastExpected)
        assertDepthRows(l32, logits: logits, expected: broadcastExpected)
        XCTAssertEqual(l32.loss.floats, l64.loss.floats)
    }

    func testPerDepthLossesKeepTheirGraph() throws {
        let logits = depthLogits([8], depths: 2).map { $0.requiringGrad() }
        let out = try calculateMTPLossPerDepth(MaskedCrossEntropy(), perDepthLogits: logits, labels: int64Tensor(packedLabels, [8]),
                                               cuSeqlens: int64Tensor([0, 4, 8], [3]))
        XCTAssert(out.loss.requiresGrad)
        XCTAssert(out.perDepthLosses.allSatisfy(\.requiresGrad))
        try out.perDepthLosses[1].backward()
        XCTAssertNil(logits[0].grad, "depth 0 is not part of depth 1's loss")
        // d row / d z = softmax − one-hot at valid rows; masked rows get nothing.
        let g = try XCTUnwrap(logits[1].grad).floats
        let z = logits[1].floats
        for (i, t) in packedDepth1.enumerated() {
            let row = Array(z[(i * V)..<((i + 1) * V)]).map { Double($0) }
            let m = row.max()!, s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            let want = row.enumerated().map { j, v in t == X ? 0 : Foundation.exp(v - m) / s - (j == Int(t) ? 1 : 0) }
            assertClose(Array(g[(i * V)..<((i + 1) * V)]), want, atol: 1e-6, "row \(i)")
        }
    }

    // MARK: Errors

    func testErrors() {
        let labels = int64Tensor(packedLabels, [8])
        let logits = depthLogits([8], depths: 2)
        let h = [Tensor.uniform([8, H], seed: 1), Tensor.uniform([8, H], seed: 2)]
        let w = Tensor.uniform([V, H], seed: 3)
        let exactlyOne = "Provide exactly one of mtp_per_depth_h or mtp_per_depth_logits"

        assertThrows(try calculateMTPLoss(rows, perDepthHidden: h, perDepthLogits: logits, labels: labels,
                                          model: LossModel(lmHeadWeight: w)), containing: exactlyOne)
        assertThrows(try calculateMTPLoss(rows, labels: labels), containing: exactlyOne)

        let targets = [int64Tensor(packedLabels, [8]), int64Tensor(packedLabels, [8])]
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: logits, perDepthTargets: targets, labels: labels,
                                          seqIdx: int64Tensor([Int64](repeating: 0, count: 8), [8])), containing: "seq_idx")
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: logits, perDepthTargets: targets, labels: labels,
                                          cuSeqlens: int64Tensor([0, 8], [2])), containing: "cu_seqlens")
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: logits, perDepthTargets: [targets[0]], labels: labels),
                     containing: "Expected 2")
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: logits, perDepthTargets: [targets[0]], labels: labels),
                     containing: "got 1")
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: logits, perDepthTargets: [targets[0], int64Tensor([1, 2, 3, 4, 0, 1, 2], [7])],
                                          labels: labels), containing: "[7]")

        // seqIdx that does not match labels [2, 8]: message names both shapes and microbatches.
        let batch = int64Tensor(batchLabels, [2, 8]), batchLogits = depthLogits([2, 8], depths: 2)
        for bad in [int64Tensor([Int64](repeating: 0, count: 24), [3, 8]), int64Tensor([Int64](repeating: 0, count: 8), [1, 8]),
                    int64Tensor([Int64](repeating: 0, count: 7), [7])] {
            assertThrows(try calculateMTPLoss(rows, perDepthLogits: batchLogits, labels: batch, seqIdx: bad), containing: "\(bad.shape)")
            assertThrows(try calculateMTPLoss(rows, perDepthLogits: batchLogits, labels: batch, seqIdx: bad), containing: "[2, 8]")
            assertThrows(try calculateMTPLoss(rows, perDepthLogits: batchLogits, labels: batch, seqIdx: bad), containing: "microbatch")
        }

        assertThrows(try calculateMTPLoss(FusedLinearCrossEntropy(), perDepthLogits: logits, labels: labels, lmWeight: w),
                     containing: "incompatible")
        assertThrows(try calculateMTPLoss(rows, perDepthHidden: h, labels: labels), containing: "lm_head module not found in model")
        assertThrows(try calculateMTPLoss(rows, perDepthHidden: h, labels: labels, model: LossModel()),
                     containing: "lm_head module not found in model")
        assertThrows(try calculateMTPLoss(FusedLinearCrossEntropy(), perDepthHidden: h, labels: labels, model: LossModel()),
                     containing: "lm_head module not found in model")
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: logits, labels: floatTensor(packedLabels.map { Float($0) }, [8])),
                     containing: "labels")
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: [], labels: labels), containing: exactlyOne)
        // A label out of range in a rolled position is reported by the loss.
        assertThrows(try calculateMTPLoss(rows, perDepthLogits: logits, labels: int64Tensor([1, 9, 3, 4, 4, 3, 2, 1], [8])),
                     containing: "9")
    }

    // MARK: The shared LM-head weight

    /// BSHD labels [2, 4] and their depth labels, by hand.
    private let headLabels: [Int64] = [1, 2, 3, 4,
                                       0, 4, X, 2]
    private let headDepth0: [Int64] = [2, 3, 4, X,
                                       4, X, 2, X]
    private let headDepth1: [Int64] = [3, 4, X, X,
                                       X, 2, X, X]

    /// The weight gradient of one loss computed on its own, through the library's `calculateLoss`.
    private func singleLossWeightGradient(_ lossFn: any TokenLoss, hidden: Tensor, labels: [Int64], weight: Tensor) throws -> [Float] {
        let w = weight.detached().requiringGrad()
        let target = int64Tensor(labels, [2, 4])
        let loss = lossFn is any FusedLinearLoss
            ? try calculateLoss(lossFn, hiddenStates: hidden, labels: target, lmWeight: w)
            : try calculateLoss(lossFn, logits: Tensor.matmul(hidden, w, transposeB: true), labels: target)
        try loss.backward()
        return try XCTUnwrap(w.grad).floats
    }

    /// Float64 `∂/∂W Σ_i CE(h_i Wᵀ, t_i) = Σ_i (softmax(z_i) − e_{t_i}) h_iᵀ`.
    private func referenceWeightGradient(hidden: Tensor, labels: [Int64], weight: Tensor) -> [Double] {
        let h = hidden.floats, w = weight.floats
        let z = referenceLogits(h, w, hidden: H)
        var g = [Double](repeating: 0, count: V * H)
        for (i, t) in labels.enumerated() where t != X {
            let row = z[(i * V)..<((i + 1) * V)].map { Double($0) }
            let m = row.max()!, s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            for j in 0..<V {
                let c = Foundation.exp(row[j] - m) / s - (j == Int(t) ? 1 : 0)
                for a in 0..<H { g[j * H + a] += c * Double(h[i * H + a]) }
            }
        }
        return g
    }

    func testSharedHeadWeightReceivesTheSumOfMainAndDepthGradients() throws {
        let sf: Float = 0.25
        let hMain = Tensor.uniform([2, 4, H], low: -1, high: 1, seed: 50)
        let hDepth = (0..<2).map { Tensor.uniform([2, 4, H], low: -1, high: 1, seed: 51 + UInt64($0)) }
        let w0 = Tensor.uniform([V, H], low: -1, high: 1, seed: 53)
        let coefficient = Double(sf) / 2

        for lossFn in [FusedLinearCrossEntropy() as any TokenLoss, MaskedCrossEntropy()] {
            let name = "\(type(of: lossFn))"
            let gMain = try singleLossWeightGradient(lossFn, hidden: hMain, labels: headLabels, weight: w0)
            let g0 = try singleLossWeightGradient(lossFn, hidden: hDepth[0], labels: headDepth0, weight: w0)
            let g1 = try singleLossWeightGradient(lossFn, hidden: hDepth[1], labels: headDepth1, weight: w0)
            let expected = (0..<(V * H)).map { Double(gMain[$0]) + coefficient * (Double(g0[$0]) + Double(g1[$0])) }
            // The same sum from the float64 formula, independent of the library's losses.
            let ref0 = referenceWeightGradient(hidden: hDepth[0], labels: headDepth0, weight: w0)
            let ref1 = referenceWeightGradient(hidden: hDepth[1], labels: headDepth1, weight: w0)
            let refMain = referenceWeightGradient(hidden: hMain, labels: headLabels, weight: w0)
            let reference = (0..<(V * H)).map { refMain[$0] + coefficient * (ref0[$0] + ref1[$0]) }
            assertClose(expected.map { Float($0) }, reference, rtol: 1e-5, atol: 1e-6, "\(name): single-loss gradients")

            for upstream: Float in [1, 2.5] {
                let w = w0.requiringGrad()
                let model = LossModel(lmHeadWeight: w, mtpConfig: MTPConfig(numLayers: 2, layerPattern: "*", lossScalingFactor: sf))
                let pipeline = PipelineCausalLMLoss(lossFn: lossFn, model: model)
                let first = lossFn is any FusedLinearLoss ? hMain : try Tensor.matmul(hMain, w, transposeB: true)
                let loss = try pipeline(.tuple(first: first, rest: hDepth), labels: int64Tensor(headLabels, [2, 4])).loss
                try loss.backward(Tensor(scalar: upstream))
                assertClose(try XCTUnwrap(w.grad).floats, expected.map { $0 * Double(upstream) }, rtol: 1e-5, atol: 1e-6,
                            "\(name): pipeline W.grad, upstream \(upstream)")
            }

            // calculateMTPLoss alone: W.grad = sf/D · Σ_k G_k; and one depth's loss alone gives G_0.
            let w = w0.requiringGrad()
            let out = try calculateMTPLossPerDepth(lossFn, perDepthHidden: hDepth, labels: int64Tensor(headLabels, [2, 4]),
                                                   model: LossModel(lmHeadWeight: w), scalingFactor: sf)
            try out.loss.backward()
            assertClose(try XCTUnwrap(w.grad).floats, (0..<(V * H)).map { coefficient * (Double(g0[$0]) + Double(g1[$0])) },
                        rtol: 1e-5, atol: 1e-6, "\(name): calculateMTPLoss W.grad")
            let wOne = w0.requiringGrad()
            let outOne = try calculateMTPLossPerDepth(lossFn, perDepthHidden: hDepth, labels: int64Tensor(headLabels, [2, 4]),
                                                      model: LossModel(lmHeadWeight: wOne), scalingFactor: sf)
            try outOne.perDepthLosses[0].backward()
            assertClose(try XCTUnwrap(wOne.grad).floats, g0.map { Double($0) }, rtol: 1e-5, atol: 1e-6,
                        "\(name): depth 0 alone")
        }
    }
}
