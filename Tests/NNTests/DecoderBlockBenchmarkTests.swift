// Forward + backward time of one decoder block at the size `mtp train` uses.
// Skipped unless NN_BENCH is set; run it in release:
//   NN_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter DecoderBlockBenchmarkTests

import Foundation
import NN
import Tensors
import TestSupport
import XCTest

final class DecoderBlockBenchmarkTests: XCTestCase {
    func testForwardBackwardTime() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NN_BENCH"] != nil, "set NN_BENCH=1 to run")
        let (b, s, h) = (8, 128, 128)
        var g = SplitMix64(seed: 1)
        let block = try DecoderBlock(hiddenSize: h, heads: 4, intermediateSize: 384, generator: &g)
        let x = randomTensor([b, s, h], seed: 2).requiringGrad()
        let positions = intTensor((0..<(b * s)).map { $0 % s % 50 }, [b, s])
        let seqIdx = intTensor((0..<(b * s)).map { $0 % s / 50 }, [b, s])
        let upstream = randomTensor([b, s, h], seed: 3)
        var times: [Double] = [], forwardTimes: [Double] = []
        for _ in 0..<12 {
            let t0 = Date()
            let y = try block(x, positions: positions, seqIdx: seqIdx)
            let t1 = Date()
            try y.backward(upstream)
            let t2 = Date()
            block.zeroGrad()
            x.zeroGrad()
            forwardTimes.append(t1.timeIntervalSince(t0))
            times.append(t2.timeIntervalSince(t0))
        }
        let median = times.dropFirst(2).sorted()[5], forward = forwardTimes.dropFirst(2).sorted()[5]
        print(String(format: "DecoderBlock B=%d S=%d H=%d heads=4 I=384: forward %.2f ms, forward+backward %.2f ms (median of 10)",
                     b, s, h, forward * 1e3, median * 1e3))
    }
}
