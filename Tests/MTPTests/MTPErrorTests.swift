// MTPError is a kind to switch on plus the SPEC's message; a loss error from a depth
// stays a LossError.

import Losses
import MTP
import Tensors
import XCTest

final class MTPErrorTests: XCTestCase {
    private let logits = (0..<2).map { Tensor.uniform([4, 5], low: -1, high: 1, seed: 40 + UInt64($0)) }
    private let labels = int64Tensor([1, 2, 3, 4], [4])

    /// The error `body` throws, or nil.
    private func thrown(_ body: () throws -> Tensor) -> (any Error)? {
        do { _ = try body() } catch { return error }
        return nil
    }

    func testEachKindIsACase() {
        let loss = MaskedCrossEntropy()
        let cases: [(MTPError?, String)] = [
            (thrown { try calculateMTPLoss(loss, labels: self.labels) } as? MTPError, "invalidArgument"),
            (thrown { try calculateMTPLoss(loss, perDepthLogits: self.logits, labels: Tensor.zeros([4])) } as? MTPError,
             "invalidDType"),
            (thrown { try calculateMTPLoss(loss, perDepthLogits: self.logits, perDepthTargets: [self.labels], labels: self.labels) }
                as? MTPError, "depthCountMismatch"),
            (thrown { try calculateMTPLoss(loss, perDepthLogits: self.logits, labels: self.labels,
                                           seqIdx: int64Tensor([0, 0, 1], [3])) } as? MTPError, "shapeMismatch"),
            (thrown { try PipelineCausalLMLoss(lossFn: loss, model: LossModel(lmHeadWeight: nil))(
                .record(CausalLMOutput()), labels: self.labels).loss } as? MTPError, "missingTensor"),
        ]
        for (error, expected) in cases {
            let kind: String
            switch error {
            case .shapeMismatch?: kind = "shapeMismatch"
            case .invalidDType?: kind = "invalidDType"
            case .missingTensor?: kind = "missingTensor"
            case .depthCountMismatch?: kind = "depthCountMismatch"
            case .invalidArgument?: kind = "invalidArgument"
            case nil: kind = "not an MTPError"
            }
            XCTAssertEqual(kind, expected, "\(String(describing: error))")
        }
    }

    func testTheDescriptionIsTheMessage() {
        let error = thrown { try calculateMTPLoss(MaskedCrossEntropy(), labels: self.labels) }
        XCTAssertEqual(error.map { "\($0)" }, "Provide exactly one of mtp_per_depth_h or mtp_per_depth_logits")
        XCTAssertEqual((error as? MTPError)?.message, "Provide exactly one of mtp_per_depth_h or mtp_per_depth_logits")
    }

    func testALabelOutOfRangeInADepthIsALossError() {
        let error = thrown { try calculateMTPLoss(MaskedCrossEntropy(), perDepthLogits: self.logits,
                                                  labels: int64Tensor([1, 2, 9, 4], [4])) }
        guard case .labelOutOfRange(let message)? = error as? LossError else {
            return XCTFail("\(String(describing: error))")
        }
        XCTAssertTrue(message.contains("label 9"), message)
    }
}
