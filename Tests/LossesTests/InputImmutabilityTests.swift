// The losses never write into the caller's tensors: logits, labels, mask, hidden
// states and weight are bit-identical after forward and backward.

import Losses
import Tensors
import TestSupport
import XCTest

final class InputImmutabilityTests: XCTestCase {
    func testLogitsLabelsAndMaskAreUntouched() throws {
        for dtype in [DType.float32, .float16, .bfloat16] {
            for reduction in LossReduction.allCases {
                for (name, run) in logitsLosses(reduction) {
                    let logits = randomTensor([2, 5, 9], -3, 3, seed: 81).cast(to: dtype).requiringGrad()
                    let labels = labelTensor([0, 8, -100, 3, 4, 5, 6, 7, 1, 2], [2, 5])
                    let mask = try Tensor([1, 0, 1, 1, 0, 1, 1, 1, 1, 0] as [Int64], shape: [2, 5])
                    let before = [logits, labels, mask].map(storageBytes)
                    try backpropagate(try run(logits, labels, mask, nil))
                    XCTAssertEqual([logits, labels, mask].map(storageBytes), before, "\(name) \(dtype) \(reduction)")
                }
            }
        }
        let logits = randomTensor([4, 6], seed: 82).requiringGrad()
        let labels = labelTensor([0, 1, 2, 3], [4])
        let before = [logits, labels].map(storageBytes)
        try MaskedCrossEntropy(fp32Upcast: false)(logits: logits.cast(to: .bfloat16), labels: labels).backward()
        XCTAssertEqual([logits, labels].map(storageBytes), before, "fp32Upcast false")
    }

    func testHiddenWeightAndLabelsAreUntouched() throws {
        for dtype in [DType.float32, .bfloat16] {
            for softcap in [Float(0), 2] {
                for reduction in LossReduction.allCases {
                    // An ignored row makes the kernel compact the rows it keeps.
                    for labelsArray in [[0, 6, 3, 2], [0, -100, 3, 2]] {
                        let hidden = randomTensor([2, 2, 3], seed: 83).cast(to: dtype).requiringGrad()
                        let weight = randomTensor([7, 3], seed: 84).cast(to: dtype).requiringGrad()
                        let labels = labelTensor(labelsArray, [2, 2], dtype: .int32)
                        let before = [hidden, weight, labels].map(storageBytes)
                        let out = try FusedLinearCrossEntropy(logitSoftcapping: softcap, reduction: reduction)(
                            hiddenStates: hidden, labels: labels, lmWeight: weight)
                        try backpropagate(out)
                        XCTAssertEqual([hidden, weight, labels].map(storageBytes), before,
                                       "\(dtype) softcap \(softcap) \(reduction) \(labelsArray)")
                    }
                }
            }
        }
    }

    func testSharedWeightIsUntouched() throws {
        let hidden = randomTensor([3, 4], seed: 85).requiringGrad()
        let weight = randomTensor([6, 4], seed: 86).requiringGrad()
        let before = [hidden, weight].map(storageBytes)
        let shared = FusedLinearCrossEntropy.sharingWeightGradient(weight)
        let labels = labelTensor([1, -100, 5], [3])
        let main = try FusedLinearCrossEntropy()(hiddenStates: hidden, labels: labels, lmWeight: shared)
        let depth = try FusedLinearCrossEntropy.expectingUpstream(0.5, on: shared) {
            try FusedLinearCrossEntropy(reduction: .none)(hiddenStates: hidden, labels: labels, lmWeight: shared)
        }
        try (main + depth.sum() * 0.25).backward()
        XCTAssertEqual([hidden, weight].map(storageBytes), before)
        XCTAssertEqual(storageBytes(shared), before[1])
    }
}
