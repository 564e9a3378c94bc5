// The model contract of the MTP loss: MTPConfig, the MTPLossModel defaults,
// LossModel and mtpLossScalingFactor(of:).

import Losses
import MTP
import Tensors
import XCTest

/// A model that states only its head: every other requirement takes the protocol default.
private struct HeadOnlyModel: MTPLossModel {
    var lmHeadWeight: Tensor?
}

final class MTPModelTests: XCTestCase {
    func testMTPConfigDefaultsAndDerivedValues() {
        let c = MTPConfig()
        XCTAssertEqual(c.numLayers, 0)
        XCTAssertEqual(c.layerPattern, "")
        XCTAssertEqual(c.lossScalingFactor, 0.1)
        XCTAssertFalse(c.useRepeatedLayer)
        XCTAssertFalse(c.isEnabled)

        XCTAssertTrue(MTPConfig(numLayers: 2, layerPattern: "*").isEnabled)
        XCTAssertFalse(MTPConfig(numLayers: 2, layerPattern: "").isEnabled, "an empty pattern disables MTP")
        XCTAssertFalse(MTPConfig(numLayers: 0, layerPattern: "*E").isEnabled)
        XCTAssertEqual(MTPConfig(numLayers: 3, layerPattern: "*E").numPhysicalDepths, 3)
        XCTAssertEqual(MTPConfig(numLayers: 3, layerPattern: "*E", useRepeatedLayer: true).numPhysicalDepths, 1)
        XCTAssertEqual(MTPConfig(numLayers: 3, layerPattern: "*E").patternLength, 2)
    }

    func testProtocolDefaults() {
        let m = HeadOnlyModel(lmHeadWeight: nil)
        XCTAssertNil(m.mtpConfig)
        XCTAssertTrue(m.isTraining)
        XCTAssertFalse(m.mtpOutputsAreLogits)
        assertThrows(try m.requireLMHeadWeight(), containing: "lm_head module not found in model")

        let l = LossModel()
        XCTAssertNil(l.lmHeadWeight)
        XCTAssertNil(l.mtpConfig)
        XCTAssertTrue(l.isTraining)
        XCTAssertFalse(l.mtpOutputsAreLogits)
    }

    func testScalingFactorOfAModel() {
        XCTAssertEqual(mtpLossScalingFactor(of: HeadOnlyModel(lmHeadWeight: nil)), 0.1)
        XCTAssertEqual(mtpLossScalingFactor(of: LossModel()), 0.1)
        XCTAssertEqual(mtpLossScalingFactor(of: LossModel(), default: 0.7), 0.7)
        let configured = LossModel(mtpConfig: MTPConfig(numLayers: 1, layerPattern: "*", lossScalingFactor: 0.25))
        XCTAssertEqual(mtpLossScalingFactor(of: configured), 0.25)
        XCTAssertEqual(mtpLossScalingFactor(of: configured, default: 0.7), 0.25)
        // The config's value is read even when MTP is disabled by the pattern.
        XCTAssertEqual(mtpLossScalingFactor(of: LossModel(mtpConfig: MTPConfig(lossScalingFactor: 0.3))), 0.3)
    }
}
