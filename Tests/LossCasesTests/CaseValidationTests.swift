// The strict case-file contract: each hostile or careless case of the adversarial pass
// is an error that names the tensor or key (never a trap, a huge allocation or a silently
// ignored input), and the size edge cases that used to trap now evaluate.

import Foundation
import LossCases
import Losses
import MTP
import Tensors
import XCTest

final class CaseValidationTests: XCTestCase {
    /// A valid MTP case: logits [1, 6, V], per-depth logits, labels [1, 6].
    private func mtpCase(_ extra: [String: Tensor] = [:], metadata: [String: String] = [:], v: Int = 5) throws -> LossCase {
        var tensors: [String: Tensor] = [
            "labels": try Tensor([Int64]([1, 2, 3, 4, 0, 1]), shape: [1, 6]),
            "mtp_per_depth_logits.0": Tensor(zeros: [1, 6, v]),
        ]
        tensors.merge(extra) { $1 }
        return LossCase(tensors: tensors, metadata: metadata)
    }

    private func assertThrows(_ c: LossCase, containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try c.evaluate(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(text), "\(error) does not mention \(text)", file: file, line: line)
        }
    }

    func testTheValidCaseEvaluates() throws {
        XCTAssertEqual(try mtpCase().evaluate().loss.rank, 0)
    }

    func testAMisspeltTensorNameIsRejected() throws {
        assertThrows(try mtpCase(["seq_idxx": Tensor(zeros: [1, 6], dtype: .int32)]), containing: "unknown tensor 'seq_idxx'")
        assertThrows(try mtpCase(["mtp_per_depth_logits.01": Tensor(zeros: [1, 6, 5])]), containing: "mtp_per_depth_logits.01")
    }

    func testADepthIndexGapIsRejected() throws {
        let c = LossCase(tensors: ["labels": try Tensor([Int64]([1, 2, 3]), shape: [1, 3]),
                                   "mtp_per_depth_logits.0": Tensor(zeros: [1, 3, 4]),
                                   "mtp_per_depth_logits.2": Tensor(zeros: [1, 3, 4])], metadata: [:])
        assertThrows(c, containing: "mtp_per_depth_logits.2 is given without mtp_per_depth_logits.1")
    }

    func testCuSeqlensMustStartAtZeroGrowAndStayInside() throws {
        for (values, text) in [([0, 4, 2], "non-decreasing"), ([-1, 3, 6], "start at 0"), ([0, 3, 9], "past the 6 tokens"),
                               ([1, 6], "start at 0")] {
            assertThrows(try mtpCase(["cu_seqlens": Tensor(values.map(Int32.init), shape: [values.count])]), containing: text)
        }
        XCTAssertNoThrow(try mtpCase(["cu_seqlens": Tensor([Int32]([0, 3, 6]), shape: [3])]).evaluate())
    }

    func testNonFiniteOrNegativeScaleFactorsAreRejected() throws {
        for value in ["nan", "inf", "-inf", "-0.5"] {
            assertThrows(try mtpCase(metadata: ["scaling_factor": value]), containing: "scaling_factor='\(value)'")
        }
    }

    func testNearMissKeysAndUnreadMalformedOptionsAreWarningsNotErrors() throws {
        // SPEC §6 makes every key optional: a case with a typo still evaluates, and says so.
        let typo = try mtpCase(metadata: ["reducton": "mean", "chunk_len": "None", "training": "yes"])
        XCTAssertNoThrow(try typo.evaluate())
        XCTAssertEqual(typo.warnings(), [
            "metadata key 'reducton' is not an option and is ignored (did you mean 'reduction'?)",
            "metadata chunk_len='None' is not an integer (this case does not read it)",
            "metadata training='yes' is not a boolean (this case does not read it)",
        ])
        let plain = try mtpCase(metadata: ["description": "made by hand", "format": "pt", "expected_loss": "1.5", "chunk_len": "8"])
        XCTAssertEqual(plain.warnings(), [])
        let masked = try mtpCase(["mask": Tensor(zeros: [1, 6], dtype: .int64)])
        XCTAssertNoThrow(try masked.evaluate())
        XCTAssertEqual(masked.warnings(), ["tensor 'mask' is read only by entry calculate_loss; entry calculate_mtp_loss ignores it (the loss is unmasked)"])
        // An option the case reads must still parse.
        assertThrows(try mtpCase(metadata: ["ignore_index": "None"]), containing: "ignore_index='None' is not an integer")
    }

    func testPerDepthOutputsAreNamedWhenTheyDoNotFit() throws {
        let labels = try Tensor([Int64]([1, 2, 3, 0]), shape: [1, 4])
        let head = Tensor(zeros: [5, 3])
        func hidden(_ h1: Tensor) -> LossCase {
            LossCase(tensors: ["labels": labels, "lm_head.weight": head, "mtp_per_depth_h.0": Tensor(zeros: [1, 4, 3]),
                               "mtp_per_depth_h.1": h1], metadata: [:])
        }
        assertThrows(hidden(Tensor(zeros: [1, 5, 3])), containing: "mtp_per_depth_h.1 shape [1, 5, 3] holds 5 rows, but labels shape [1, 4] holds 4")
        assertThrows(hidden(Tensor(zeros: [1, 4, 2])), containing: "mtp_per_depth_h.1 shape [1, 4, 2] has hidden size 2, but the LM head weight is [5, 3]")
        assertThrows(hidden(Tensor(zeros: [1, 4, 3], dtype: .int64)), containing: "mtp_per_depth_h.1 must be floating point, got int64")
        XCTAssertNoThrow(try hidden(Tensor(zeros: [1, 4, 3])).evaluate())
    }

    func testNegativeNumLabelTokensIsRejected() throws {
        assertThrows(try mtpCase(metadata: ["num_label_tokens": "-3"]), containing: "num_label_tokens=-3")
    }

    func testAFloatSeqIdxIsNamed() throws {
        let c = LossCase(tensors: ["labels": try Tensor([Int64]([1, 2, 3, 0]), shape: [1, 4]),
                                   "logits": Tensor(zeros: [1, 4, 5]), "mtp_per_depth_logits.0": Tensor(zeros: [1, 4, 5]),
                                   "seq_idx": Tensor(zeros: [1, 4])],
                         metadata: ["entry": "pipeline_loss", "mtp_outputs_are_logits": "true", "model_scaling_factor": "0.1"])
        assertThrows(c, containing: "seq_idx must be an integer tensor")
    }

    func testChunkLenIntMaxEvaluatesInsteadOfOverflowing() throws {
        let c = LossCase(tensors: ["labels": try Tensor([Int64]([1, 2]), shape: [2]), "logits": Tensor(zeros: [2, 7])],
                         metadata: ["entry": "calculate_loss", "loss_fn": "ChunkedCrossEntropy", "chunk_len": "\(Int.max)"])
        XCTAssertEqual(try c.evaluate().loss.floats[0], 2 * Float(Foundation.log(7.0)), accuracy: 1e-5)
    }

    func testHugeChunkOfHalfLogitsAllocatesOnlyItsRows() throws {
        // F16 logits, V = 50 000, chunk_len 1e6: the scratch block is 3 rows, not 1e6 (200 GB).
        let c = LossCase(tensors: ["labels": try Tensor([Int64]([1, 2, 3]), shape: [3]),
                                   "logits": Tensor(zeros: [3, 50_000], dtype: .float16)],
                         metadata: ["entry": "calculate_loss", "loss_fn": "ChunkedCrossEntropy", "chunk_len": "1000000"])
        XCTAssertEqual(try c.evaluate().loss.floats[0], 3 * Float(Foundation.log(50_000.0)), accuracy: 1e-3)
    }

    func testAZeroByteHeadOfAHugeVocabularyIsRefusedBeforeAllocating() throws {
        let c = LossCase(tensors: ["labels": try Tensor([Int64]([1, 2]), shape: [1, 2]),
                                   "hidden_states": Tensor(zeros: [1, 2, 0]), "lm_head.weight": Tensor(zeros: [1 << 40, 0])],
                         metadata: ["entry": "calculate_loss"])
        XCTAssertThrowsError(try c.evaluate()) { error in
            XCTAssertTrue(error is MemoryBudgetError, "\(error)")
            XCTAssertTrue("\(error)".contains("lm_head.weight [1099511627776, 0]"), "\(error)")
        }
    }
}
