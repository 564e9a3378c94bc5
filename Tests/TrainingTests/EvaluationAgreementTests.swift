// The held-out evaluation's speculative-decoding predictors: per depth, the teacher-forced
// agreement of depth k's argmax with the main head's argmax on the same target, and the
// main head's CE on depth k's target set, against a recomputation document by document
// (unpacked, through the model's own layers); older evaluations without them still decode,
// and the plot draws the agreement panel.

import Data
import Foundation
import Losses
import Model
import MTP
import Tensors
import Training
import TrainingTestSupport
import XCTest

final class EvaluationAgreementTests: XCTestCase {
    private func trainedTrainer() throws -> (Trainer, heldOut: [[Int32]]) {
        // The options' default evaluation interval (50) is kept: evaluation draws no random numbers.
        let o = tinyTrainingOptions(steps: 30, sequenceLength: 32, learningRate: 2e-2, warmup: 2, evalEvery: 50, seed: 3)
        let split = try tinyCorpusSplit(corpusSeed: 3, documents: 120, documentSeed: 4, heldOutFraction: 0.15)
        let trainer = try Trainer(options: o, train: split.train, heldOut: split.heldOut)
        for _ in 0..<o.steps { try trainer.trainStep() }
        return (trainer, split.heldOut)
    }

    /// Per document: main logits at j predict token j + 1; depth k at i predicts token i + k + 2,
    /// the token the main head predicts at i + k + 1.
    private func reference(_ model: CausalLM, _ docs: [[Int32]]) throws -> (agreement: [Double], mainCE: [Double], depthCE: [Double]) {
        let d = model.config.mtpDepths, v = model.config.vocabularySize
        var agree = [Double](repeating: 0, count: d), mainCE = agree, depthCE = agree, count = agree
        func crossEntropy(_ row: ArraySlice<Float>, _ y: Int32) -> Double {
            let m = Double(row.max()!)
            let z = row.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) }
            return m + Foundation.log(z) - Double(row[row.startIndex + Int(y)])
        }
        func argmax(_ row: ArraySlice<Float>) -> Int {
            var best = row.startIndex
            for i in row.indices where row[i] > row[best] { best = i }
            return best - row.startIndex
        }
        try withoutGrad {
            for doc in docs where doc.count >= 2 {
                let s = doc.count
                let ids = try Tensor(doc.map(Int64.init), shape: [1, s])
                let positions = try Tensor((0..<s).map(Int64.init), shape: [1, s])
                let hidden = try model.trunk(ids, positions: positions, seqIdx: nil)
                let main = try model.lmHead(hidden).floats
                let outs = try model.mtp!(hidden: hidden, input: .tokenIDs(ids, embed: { try model.embedTokens($0) }),
                                          positions: positions, seqIdx: nil)
                for k in 0..<d {
                    let logits = try model.lmHead(outs[k]).floats
                    for i in 0..<s where i + k + 2 < s {
                        let j = i + k + 1, y = doc[i + k + 2]
                        let depthRow = logits[(i * v)..<((i + 1) * v)], mainRow = main[(j * v)..<((j + 1) * v)]
                        if argmax(depthRow) == argmax(mainRow) { agree[k] += 1 }
                        mainCE[k] += crossEntropy(mainRow, y)
                        depthCE[k] += crossEntropy(depthRow, y)
                        count[k] += 1
                    }
                }
            }
        }
        return (zip(agree, count).map { $0 / $1 }, zip(mainCE, count).map { $0 / $1 }, zip(depthCE, count).map { $0 / $1 })
    }

    func testAgreementAndMainCEOnDepthTargetsMatchAPerDocumentRecomputation() throws {
        let (trainer, heldOut) = try trainedTrainer()
        let e = try trainer.evaluate()
        let agreements = try XCTUnwrap(e.depthAgreements)
        let mainOnTargets = try XCTUnwrap(e.mainLossOnDepthTargets)
        // The packer's pieces: documents cut every S tokens, each piece its own document.
        let s = trainer.options.sequenceLength
        let pieces = heldOut.flatMap { doc in stride(from: 0, to: doc.count, by: s).map { Array(doc[$0..<Swift.min($0 + s, doc.count)]) } }
        let r = try reference(trainer.model, pieces)
        for k in 0..<2 {
            XCTAssertEqual(agreements[k], r.agreement[k], accuracy: 0.01, "depth \(k) agreement")
            XCTAssertEqual(mainOnTargets[k], r.mainCE[k], accuracy: 1e-3, "depth \(k): main CE on its targets")
            XCTAssertEqual(e.depthLosses[k], r.depthCE[k], accuracy: 1e-3, "depth \(k) CE")
            XCTAssertGreaterThan(agreements[k], 0.2, "a trained depth agrees with the main head often")
        }
        // Dropping each document's opening targets changes the main head's CE: the comparison the summary shows.
        XCTAssertNotEqual(mainOnTargets[0], e.mainLoss)
    }

    func testEvaluationsWithoutTheNewFieldsStillDecode() throws {
        let old = #"[{"step":3,"mainLoss":1.5,"depthLosses":[1.6,1.7],"mainAccuracy":0.4,"depthAccuracies":[0.3,0.2]}]"#
        let e = try JSONDecoder().decode([Evaluation].self, from: Data(old.utf8))
        XCTAssertEqual(e.first?.step, 3)
        XCTAssertNil(e.first?.depthAgreements)
        XCTAssertNil(e.first?.mainLossOnDepthTargets)
        let plot = LossPlot(title: "old", history: [], evaluations: e, mainFloor: nil, depthFloors: nil)
        XCTAssertTrue(plot.agreementSeries.isEmpty)
    }

    func testThePlotDrawsAgreementAndCheckpointsKeepIt() throws {
        let (trainer, _) = try trainedTrainer()
        let e = try trainer.evaluate()
        let plot = LossPlot(title: "t", history: trainer.history, evaluations: trainer.evaluations, mainFloor: nil, depthFloors: nil)
        XCTAssertEqual(plot.agreementSeries.map(\.name), ["MTP depth 0 agreement", "MTP depth 1 agreement"])
        XCTAssertTrue(plot.svg().contains("agreement"))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("agreement-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try trainer.saveCheckpoint(to: url)
        let (_, metadata) = try SafeTensors.read(contentsOf: url)
        XCTAssertEqual(try Trainer.checkpointMetadata(metadata, source: url.path).evaluations.last, e)
    }
}
