// Helpers of the pipeline tests: a tiny model, packed batches whose rows are
// packed differently, the non-pipelined reference step, gradient comparison and
// a run-with-timeout for the tests that must not hang.
//
// Letters: P stages, M microbatches, B rows, S row length, V vocabulary, H hidden, D depths.

import Data
import Model
import Foundation
import Losses
import MTP
import NN
import Pipeline
import Tensors
import Training
import XCTest

/// The loss kinds the tests sweep: one fused, one from logits (chunked computes the same values as masked).
let sweptLossKinds: [LossKind] = [.fused, .masked]

/// A tiny CausalLM (V = 24, H = 16, 2 heads, D = 2) with `layers` blocks, emitting logits for a logits loss.
func tinyModel(layers: Int, loss: LossKind, depths: Int = 2, seed: UInt64 = 7) throws -> CausalLM {
    let model = try CausalLM(config: ModelConfig(vocabularySize: 24, hiddenSize: 16, layers: layers, heads: 2,
                                                 intermediateSize: 32, mtpDepths: depths, mtpLossScalingFactor: 0.3),
                             seed: seed)
    model.emitsLogits = loss.readsLogits
    return model
}

/// Documents of 2 … 20 tokens drawn from `seed`, packed into one batch of `rows` rows of S = 32.
///
/// Row r holds different documents from row r′, so each microbatch has its own `seqIdx`.
func packedBatch(rows: Int, seed: UInt64 = 11) throws -> Batch {
    var g = SplitMix64(seed: seed)
    var documents: [[Int32]] = []
    for _ in 0..<(rows * 4) {
        let length = 2 + Int(g.next() % 19)
        documents.append((0..<length).map { _ in Int32(1 + g.next() % 23) })
    }
    let packer = try Packer(sequenceLength: 32, batchSize: rows, vocabularySize: 24)
    return try XCTUnwrap(packer.batches(from: documents, seed: seed).first)
}

/// Gradients by parameter name after `body` ran a backward pass from zeroed gradients.
func gradients(of model: CausalLM, after body: () throws -> Void) rethrows -> [String: [Float]] {
    model.zeroGrad()
    try body()
    var out: [String: [Float]] = [:]
    for (name, p) in model.namedParameters() { out[name] = p.grad?.floats ?? [Float](repeating: 0, count: p.value.count) }
    model.zeroGrad()
    return out
}

/// The non-pipelined step: the whole batch through the model and `PipelineCausalLMLoss`, one backward.
func referenceStep(_ model: CausalLM, _ batch: Batch, loss: LossKind) throws -> (loss: Float, gradients: [String: [Float]]) {
    var value: Float = 0
    let g = try gradients(of: model) {
        let lossFn = MTPLossConfig().build(lossFn: loss.makeLoss(reduction: .mean), model: model)
        let l = try lossFn(model(batch.inputIds, positions: batch.positions, seqIdx: batch.seqIdx), labels: batch.labels).loss
        value = l.floats[0]
        try l.backward()
    }
    return (value, g)
}

/// The largest per-parameter relative error `max|a − b| / max|b|` over all parameters, and its name.
func maxRelativeGradientError(_ a: [String: [Float]], _ b: [String: [Float]]) -> (error: Double, name: String) {
    var worst = (error: 0.0, name: "")
    for (name, ref) in b {
        let got = a[name] ?? []
        precondition(got.count == ref.count, "\(name): \(got.count) vs \(ref.count) elements")
        let scale = ref.reduce(0.0) { Swift.max($0, Double(Swift.abs($1))) }
        let diff = zip(got, ref).reduce(0.0) { Swift.max($0, Swift.abs(Double($1.0) - Double($1.1))) }
        let e = scale > 0 ? diff / scale : diff
        if e > worst.error { worst = (e, name) }
    }
    return worst
}

/// Moves a non-Sendable value into a `@Sendable` closure that the test waits for.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
}

/// A result written by one thread and read by another after a semaphore.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// Runs `body` on its own thread; nil when it did not finish within `seconds`.
func runWithTimeout<T>(_ seconds: Double, _ body: @escaping @Sendable () throws -> T) -> Result<T, any Error>? {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Thread {
        box.result = Result { try body() }
        done.signal()
    }.start()
    guard done.wait(timeout: .now() + seconds) == .success else { return nil }
    return box.result
}
