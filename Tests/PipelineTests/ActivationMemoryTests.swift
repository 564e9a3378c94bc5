// 1F1B holds at most P microbatches of activations per stage, GPipe all M: the
// allocation meter's peak over one step shows it.

import Losses
import Pipeline
import Tensors
import XCTest

final class ActivationMemoryTests: XCTestCase {
    private func peakBytes(_ kind: PipelineScheduleKind, stages: Int) throws -> Int {
        let batch = try packedBatch(rows: 8)
        let model = try tinyModel(layers: 2, loss: .fused)
        let pipeline = try CausalLMPipeline(model: model, lossFunction: LossKind.fused.makeLoss(reduction: .mean),
                                            schedule: PipelineSchedule(kind: kind, stages: stages, microbatches: 8))
        try pipeline.step(batch)  // first gradients allocated, lazily built state settled
        model.zeroGrad()
        let (_, peak) = try AllocationMeter.measure { try pipeline.step(batch) }
        model.zeroGrad()
        return peak
    }

    func testOneForwardOneBackwardPeaksBelowGPipeAtEightMicrobatches() throws {
        for p in [2, 3] {
            let gpipe = try peakBytes(.gpipe, stages: p)
            let oneF = try peakBytes(.oneForwardOneBackward, stages: p)
            print("P=\(p), M=8: peak live bytes GPipe \(gpipe), 1F1B \(oneF) (\(String(format: "%.2f", Double(oneF) / Double(gpipe))))")
            XCTAssertLessThan(oneF, gpipe, "P=\(p)")
            XCTAssertLessThan(Double(oneF), 0.7 * Double(gpipe), "P=\(p): 1F1B should hold clearly less than GPipe")
        }
    }
}
