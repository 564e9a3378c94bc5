// Property: no combination of numeric options traps. Every numeric option of a run is
// drawn from edge values (Int.min, 0, 1, 2^40, Int.max, NaN, ±inf, huge floats, …);
// validation must either throw or accept, and everything that runs on accepted options
// before training starts (the size estimates, the schedule, the packer, resume checks,
// and for small ones the model itself) must return. A trap ends the test process, so a
// finding shows as a crash with the generator's seed in the log.

import Data
import Foundation
import Model
import PropertyBased
import Testing
import Training

@Suite struct OptionPropertyTests {
    static let integers = [Int.min, -(1 << 40), -1, 0, 1, 2, 3, 4, 7, 8, 16, 24, 64, 255, 256, 4096,
                           1 << 20, 1 << 31, 1 << 40, 1 << 62, Int.max]
    static let floats: [Float] = [.nan, .infinity, -.infinity, -.greatestFiniteMagnitude, -1, -0.0, 0, 1e-30, 1e-3, 0.3, 1,
                                  1e30, .greatestFiniteMagnitude]

    /// Plausible values, drawn three times in four so that many combinations are accepted.
    static let plausibleIntegers = [1, 2, 4, 8, 16, 24, 32, 64]
    static let plausibleFloats: [Float] = [1e-3, 0.05, 0.3, 1]

    /// Index `x` (0..<100) as an integer option: plausible below 75, an edge value above.
    static func integer(_ x: Int) -> Int { x < 75 ? plausibleIntegers[x % plausibleIntegers.count] : integers[x % integers.count] }
    /// Index `x` (0..<100) as a float option.
    static func float(_ x: Int) -> Float { x < 75 ? plausibleFloats[x % plausibleFloats.count] : floats[x % floats.count] }

    /// Options with every numeric field drawn by ``integer(_:)`` and ``float(_:)``.
    static func options(_ i: [Int], _ f: [Int]) -> TrainingOptions {
        let n = i.map(integer), floats = f.map(float)
        var o = TrainingOptions(model: ModelConfig(vocabularySize: n[0], hiddenSize: n[1], layers: n[2], heads: n[3],
                                                   intermediateSize: n[4], mtpDepths: n[5], mtpLossScalingFactor: floats[0]))
        o.steps = n[6]
        o.batchSize = n[7]
        o.sequenceLength = n[8]
        o.warmupSteps = n[9]
        o.gradientAccumulation = n[10]
        o.evalEvery = n[11]
        o.learningRate = floats[1]
        o.weightDecay = floats[2]
        o.gradientClip = floats[3]
        return o
    }

    @Test func noCombinationOfNumericOptionsTraps() async {
        let ints = Gen.int(in: 0..<100).array(of: 12...12)
        let fls = Gen.int(in: 0..<100).array(of: 4...4)
        let accepted = Counter()
        await propertyCheck(count: 3000, input: ints, fls) { i, f in
            let o = Self.options(i, f)
            _ = o.model.parameterCount
            _ = o.estimatedPeakBytes
            _ = try? o.resumed(as: Self.options(i.reversed(), f), atStep: Self.integer(i[6]))
            guard (try? o.validate()) != nil else { return }
            accepted.increment()
            // Accepted: the values must be in range, and what runs before step 1 must return.
            #expect(o.batchSize > 0 && o.sequenceLength > o.model.mtpDepths && o.learningRate.isFinite)
            #expect(o.weightDecay.isFinite && o.gradientClip.isFinite && o.model.mtpLossScalingFactor.isFinite)
            let schedule = LearningRateSchedule(peak: o.learningRate, warmupSteps: o.warmupSteps, totalSteps: o.steps)
            _ = schedule.rate(at: 0)
            _ = schedule.rate(at: o.steps - 1)
            #expect((try? Packer(sequenceLength: o.sequenceLength, batchSize: o.batchSize,
                                 vocabularySize: o.model.vocabularySize)) != nil)
            if let p = o.model.parameterCount, p < 200_000, o.batchSize * o.sequenceLength <= 4096 {
                #expect((try? CausalLM(config: o.model, seed: 0)) != nil)
            }
        }
        // Enough combinations pass validation for the second half of the property to be exercised.
        #expect(accepted.value > 30, "only \(accepted.value) of 3000 option sets were accepted")
    }
}

/// A count shared with the property's closure.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
