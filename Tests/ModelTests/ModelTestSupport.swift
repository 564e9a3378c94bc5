// Helpers of the Model tests: int tensors, the logits of a model, temporary directories.

import Foundation
import Model
import Tensors
import XCTest

/// An int64 tensor of the given values and shape.
func int64Tensor(_ values: [Int64], _ shape: [Int]) -> Tensor {
    try! Tensor(values, shape: shape)
}

/// The main-head logits `[B, S, V]` of `model` on `ids` (`[B, S]`, one document per row).
func logits(of model: CausalLM, ids: Tensor) throws -> Tensor {
    let (b, s) = (ids.shape[0], ids.shape[1])
    let positions = int64Tensor((0..<(b * s)).map { Int64($0 % s) }, [b, s])
    return try withoutGrad { try model.lmHead(model.trunk(ids, positions: positions, seqIdx: nil)) }
}

/// A fresh temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("model-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// The largest |a − b|.
func largestDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
