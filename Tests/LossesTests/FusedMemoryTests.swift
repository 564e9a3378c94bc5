// Peak live tensor bytes (AllocationMeter) of a forward+backward pass: the fused loss
// never holds an [N, V] buffer; MaskedCrossEntropy, for comparison, holds at least its
// [N, V] gradient.
//
// Letters: N rows, V vocabulary, H hidden; N·V·4 is the byte size of Float32 logits.
//
// Sizes: N = 2048, V = 32000, H = 64 (N·V·4 = 262 MB) in both builds. A debug build runs
// the row kernel at about 4 µs a logit, so there only every 64th row has a label (the
// fused loss drops ignored rows before its GEMMs: 32 rows, one partial chunk); a release
// build (`swift test -c release --filter FusedMemoryTests`) labels every row, so the fused
// loss walks N / ⌊defaultChunkBudgetFloats / V⌋ = 8 full chunks.

import Losses
import Tensors
import TestSupport
import XCTest

final class FusedMemoryTests: XCTestCase {
    private let n = 2048, v = 32000, h = 64
    #if DEBUG
    private let labelEvery = 64
    #else
    private let labelEvery = 1
    #endif

    private func inputs() -> (hidden: Tensor, weight: Tensor, labels: Tensor, valid: Int) {
        let hidden = randomTensor([n, h], -1, 1, seed: 101).requiringGrad()
        let weight = randomTensor([v, h], -0.1, 0.1, seed: 102).requiringGrad()
        let labels = makeLabels([n], v: v, seed: 103).enumerated().map { $0.offset % labelEvery == 0 ? $0.element : -100 }
        return (hidden, weight, labelTensor(labels, [n]), labels.filter { $0 >= 0 }.count)
    }

    func testFusedPeakStaysFarBelowTheLogitsSize() throws {
        let (hidden, weight, labels, valid) = inputs()
        let (loss, peak) = try AllocationMeter.measure { () throws -> Tensor in
            let loss = try FusedLinearCrossEntropy()(hiddenStates: hidden, labels: labels, lmWeight: weight)
            try loss.backward()
            return loss
        }
        XCTAssertTrue(loss.floats[0].isFinite)
        XCTAssertEqual(hidden.grad?.shape, [n, h])
        XCTAssertEqual(weight.grad?.shape, [v, h])

        let logitsBytes = n * v * 4
        let gradientBytes = (n * h + v * h) * 4
        let chunkRows = Swift.min(valid, FusedLinearCrossEntropy.defaultChunkBudgetFloats / v)
        let chunkBytes = chunkRows * v * 4  // ≤ defaultChunkBudgetFloats · 4 = 96 MiB
        let compactionBytes = valid < n ? 2 * valid * h * 4 : 0  // packed rows and their gradient
        // The pullback scales the saved gradients by the upstream, so backward briefly holds
        // them twice; in forward the chunk is live instead.
        let bound = Swift.max(gradientBytes + chunkBytes + compactionBytes, 2 * gradientBytes) + (1 << 20)
        print("FusedMemoryTests: fused peak \(peak) B, bound \(bound) B, N·V·4 = \(logitsBytes) B (\(valid) labelled rows)")
        XCTAssertLessThanOrEqual(peak, bound)
        XCTAssertLessThan(peak * 4, logitsBytes, "fused peak \(peak) is not far below N·V·4 = \(logitsBytes)")
    }

    func testMaskedPeakHoldsAtLeastTheLogitsGradient() throws {
        let (hidden, weight, labels, _) = inputs()
        let logits = try withoutGrad { try Tensor.matmul(hidden, weight, transposeB: true) }.requiringGrad()
        let (_, peak) = try AllocationMeter.measure {
            try MaskedCrossEntropy()(logits: logits, labels: labels).backward()
        }
        print("FusedMemoryTests: masked peak \(peak) B, N·V·4 = \(n * v * 4) B")
        XCTAssertGreaterThanOrEqual(peak, n * v * 4)
    }
}
