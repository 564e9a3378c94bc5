// Helpers of the Model tests: int tensors, the logits of a model, temporary directories,
// editable copies of the Hugging Face fixtures.

import Foundation
import Model
import Tensors
import TestSupport
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

/// A copy of the Hugging Face fixture directory `name` in a fresh temporary directory
/// (removed when the test ends), with `edit` applied to the fields of its `config.json`.
func huggingFaceCopy(_ test: XCTestCase, of name: String,
                     config edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
    let url = try temporaryDirectory(test).appendingPathComponent(name)
    try FileManager.default.copyItem(at: fixtureURL("hf/\(name)"), to: url)
    let configURL = url.appendingPathComponent("config.json")
    var fields = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
    edit(&fields)
    try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]).write(to: configURL)
    return url
}
