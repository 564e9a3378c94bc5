// The pre-norm decoder block: values against the float64 composition, gradients
// of input and every parameter, and document isolation through the residuals.

import NN
import Tensors
import TestSupport
import XCTest

final class DecoderBlockTests: XCTestCase {
    private func block(seed: UInt64) throws -> DecoderBlock {
        var g = SplitMix64(seed: seed)
        let block = try DecoderBlock(hiddenSize: 8, heads: 2, intermediateSize: 12, std: 0.3, generator: &g)
        block.inputLayernorm.weight.value = randomTensor([8], 0.5, 1.5, seed: seed + 1)
        block.postAttentionLayernorm.weight.value = randomTensor([8], 0.5, 1.5, seed: seed + 2)
        return block
    }

    func testValuesMatchNaiveReference() throws {
        let blk = try block(seed: 91)
        let x = randomTensor([2, 5, 8], seed: 92)
        let positions = [3, 4, 5, 6, 7, 0, 1, 2, 0, 1]
        let seqIdx = [1, 1, 1, 1, 1, 0, 0, 0, 5, 5]
        let y = try blk(x, positions: intTensor(positions, [2, 5]), seqIdx: intTensor(seqIdx, [2, 5]))
        assertClose(y, Naive.decoderBlock(doubles(x), blk, batch: 2, length: 5, positions: positions, seqIdx: seqIdx),
                    rtol: 1e-4, atol: 1e-5)
    }

    func testGradientsWithRespectToInputAndEveryParameter() throws {
        let blk = try block(seed: 93)
        let x = randomTensor([2, 3, 8], seed: 94)
        let positions = intTensor([0, 1, 2, 0, 1, 0], [2, 3])
        let seqIdx = intTensor([0, 0, 0, 1, 1, 2], [2, 3])
        XCTAssertNil(try layerGradientCheck([x], parameters: blk.parameters) {
            try blk($0[0], positions: positions, seqIdx: seqIdx)
        })
    }

    func testDocumentsStayIsolatedThroughTheBlock() throws {
        let blk = try block(seed: 95)
        let seqIdx = intTensor([0, 0, 0, 1, 1, 1, 1], [1, 7])
        let positions = intTensor([0, 1, 2, 0, 1, 2, 3], [1, 7])
        let x = randomTensor([1, 7, 8], seed: 96)
        let y = try blk(x, positions: positions, seqIdx: seqIdx)
        let x1 = try Tensor.concatenated([randomTensor([1, 3, 8], seed: 97), x.sliced(axis: 1, 3..<7)], axis: 1)
        XCTAssertEqual(tokens(try blk(x1, positions: positions, seqIdx: seqIdx), batch: 0, 3..<7), tokens(y, batch: 0, 3..<7))
        let x2 = try Tensor.concatenated([x.sliced(axis: 1, 0..<3), randomTensor([1, 4, 8], seed: 98)], axis: 1)
        XCTAssertEqual(tokens(try blk(x2, positions: positions, seqIdx: seqIdx), batch: 0, 0..<3), tokens(y, batch: 0, 0..<3))
    }
}
