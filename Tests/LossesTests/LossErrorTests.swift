// Invalid caller input throws LossError, and the message names the values.

import Losses
import Tensors
import TestSupport
import XCTest

final class LossErrorTests: XCTestCase {
    private let logits = randomTensor([2, 3, 5], seed: 61)
    private let hidden = randomTensor([2, 3, 4], seed: 62)
    private let weight = randomTensor([5, 4], seed: 63)

    /// Runs `body` with each of the three losses applied to (labels shaped [2, 3]).
    private func eachLoss(ignoreIndex: Int = -100, reduction: LossReduction = .sum,
                          _ body: (String, (Tensor, Int?) throws -> Tensor) -> Void) {
        for (name, run) in logitsLosses(reduction, ignoreIndex: ignoreIndex) {
            body(name) { try run(self.logits, $0, nil, $1) }
        }
        let fused = FusedLinearCrossEntropy(ignoreIndex: ignoreIndex, reduction: reduction)
        body("fused") { try fused(hiddenStates: self.hidden, labels: $0, lmWeight: self.weight, numLabelTokens: $1) }
    }

    func testCallersCanSwitchOnTheKind() {
        /// The kind of the LossError `body` throws, by case name.
        func kind(_ body: () throws -> Tensor) -> String {
            do { _ = try body() } catch let error as LossError {
                switch error {
                case .labelOutOfRange: return "labelOutOfRange"
                case .shapeMismatch: return "shapeMismatch"
                case .invalidDType: return "invalidDType"
                case .missingTensor: return "missingTensor"
                case .invalidArgument: return "invalidArgument"
                }
            } catch { return "other: \(error)" }
            return "none"
        }
        let masked = MaskedCrossEntropy()
        XCTAssertEqual(kind { try masked.loss(logits: self.logits, labels: labelTensor([0, 1, 2, 3, 7, 1], [2, 3]), numLabelTokens: nil) },
                       "labelOutOfRange")
        XCTAssertEqual(kind { try masked.loss(logits: self.logits, labels: labelTensor([0, 1, 2, 3, 4, 1], [6]), numLabelTokens: nil) },
                       "shapeMismatch")
        XCTAssertEqual(kind { try masked.loss(logits: self.logits, labels: Tensor.zeros([2, 3]), numLabelTokens: nil) },
                       "invalidDType")
        XCTAssertEqual(kind { try calculateLoss(FusedLinearCrossEntropy(), hiddenStates: self.hidden,
                                                labels: labelTensor([0, 1, 2, 3, 4, 1], [2, 3])) },
                       "missingTensor")
        XCTAssertEqual(kind { try MaskedCrossEntropy(reduction: .mean).loss(logits: self.logits, labels: labelTensor([0, 1, 2, 3, 4, 1], [2, 3]),
                                                                            numLabelTokens: 3) },
                       "invalidArgument")
        // The message is the description, unchanged by the kind.
        let error = LossError.labelOutOfRange("label 7 at flat position 4 is outside [0, 5) and is not ignore_index -100")
        XCTAssertEqual("\(error)", error.message)
    }

    func testLabelOutOfRangeNamesValueAndFlatPosition() {
        eachLoss { name, run in
            assertLossError(["label 7", "flat position 4", "[0, 5)"]) {
                try run(labelTensor([0, 1, 2, 3, 7, 1], [2, 3]), nil)
            }
            // V itself is out of range; so is it in an Int32 tensor.
            assertLossError(["label 5", "flat position 0"]) { try run(labelTensor([5, 1, 2, 3, 4, 1], [2, 3]), nil) }
            assertLossError(["label 5", "flat position 5"]) {
                try run(labelTensor([0, 1, 2, 3, 4, 5], [2, 3], dtype: .int32), nil)
            }
            _ = name
        }
    }

    func testNegativeLabelThatIsNotTheIgnoreIndexThrows() {
        eachLoss { _, run in
            assertLossError(["label -1", "flat position 2"]) { try run(labelTensor([0, -100, -1, 3, 4, 1], [2, 3]), nil) }
        }
        // With ignoreIndex −1, −100 is an ordinary (invalid) label.
        eachLoss(ignoreIndex: -1) { _, run in
            assertLossError(["label -100", "flat position 1"]) { try run(labelTensor([-1, -100, 2, 3, 4, 1], [2, 3]), nil) }
        }
    }

    func testNumLabelTokensOnlyWithSum() {
        for reduction in [LossReduction.mean, .none] {
            eachLoss(reduction: reduction) { name, run in
                assertLossError(["num_label_tokens", reduction.rawValue]) { try run(labelTensor([0, 1, 2, 3, 4, 1], [2, 3]), 3) }
                // Even 0 is refused: the reduction decides, not the value.
                assertLossError(["num_label_tokens"]) { try run(labelTensor([0, 1, 2, 3, 4, 1], [2, 3]), 0) }
                _ = name
            }
        }
    }

    func testNonPositiveChunkLenThrows() {
        for chunkLen in [0, -1] {
            assertLossError(["chunk_len", "\(chunkLen)"]) { try ChunkedCrossEntropy(chunkLen: chunkLen) }
        }
    }

    func testFloatLabelsThrow() {
        eachLoss { _, run in
            assertLossError(["labels", "float32"]) { try run(Tensor.zeros([2, 3]), nil) }
        }
    }

    func testLogitsAndLabelsShapeMismatch() {
        for (_, run) in logitsLosses(.sum) {
            assertLossError(["[2, 3, 5]", "[3, 2]"]) { try run(logits, labelTensor([0, 1, 2, 3, 4, 1], [3, 2]), nil, nil) }
            assertLossError(["[2, 3, 5]", "[6]"]) { try run(logits, labelTensor([0, 1, 2, 3, 4, 1], [6]), nil, nil) }
            assertLossError(["[2]", "[2, 3]"]) { try run(Tensor.zeros([2]), labelTensor([0, 1, 2, 3, 4, 1], [2, 3]), nil, nil) }
            // A mask must have the labels' shape.
            assertLossError(["mask", "[6]", "[2, 3]"]) {
                try run(logits, labelTensor([0, 1, 2, 3, 4, 1], [2, 3]), Tensor.ones([6], dtype: .int64), nil)
            }
            assertLossError(["logits", "int64"]) {
                try run(Tensor.zeros([2, 3, 5], dtype: .int64), labelTensor([0, 1, 2, 3, 4, 1], [2, 3]), nil, nil)
            }
        }
    }

    func testHiddenAndLabelsShapeMismatch() {
        let fused = FusedLinearCrossEntropy()
        assertLossError(["hidden_states", "[2, 3, 4]", "[3, 2]"]) {
            try fused(hiddenStates: hidden, labels: labelTensor([0, 1, 2, 3, 4, 1], [3, 2]), lmWeight: weight)
        }
        assertLossError(["[2, 3, 4]", "[2, 3, 1]"]) {
            try fused(hiddenStates: hidden, labels: labelTensor([0, 1, 2, 3, 4, 1], [2, 3, 1]), lmWeight: weight)
        }
    }

    func testWeightThatIsNotVByHThrows() {
        let fused = FusedLinearCrossEntropy()
        let labels = labelTensor([0, 1, 2, 3, 4, 1], [2, 3])
        for badShape in [[4, 5], [5, 4, 1], [20]] {
            assertLossError(["\(badShape)", "[V, 4]"]) {
                try fused(hiddenStates: hidden, labels: labels, lmWeight: Tensor.zeros(badShape))
            }
        }
        assertLossError(["int64"]) {
            try fused(hiddenStates: hidden, labels: labels, lmWeight: Tensor.zeros([5, 4], dtype: .int64))
        }
    }

    func testInvalidSoftcapThrows() {
        for c in [Float(-1), .nan, .infinity] {
            assertLossError(["logit_softcapping", "\(c)"]) {
                try FusedLinearCrossEntropy(logitSoftcapping: c)(
                    hiddenStates: hidden, labels: labelTensor([0, 1, 2, 3, 4, 1], [2, 3]), lmWeight: weight)
            }
        }
    }
}
