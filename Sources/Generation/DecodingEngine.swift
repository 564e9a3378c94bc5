// The incremental forward passes of generation: the main trunk and the MTP depths
// over a few new positions at a time, against per-layer KV caches, on reused
// buffers and without autograd. The engine only strings layers together: every
// block is NN's `DecoderBlock.Frozen` (the blocks' own inference path, sharing its
// norm, rotation and SwiGLU kernels with the training forward), every norm an
// `RMSNorm.Frozen`, every projection a `Linear.Frozen`, every cache NN's `KVCache`.
//
// Legend: M new rows of a call, H hidden size, V vocabulary, L0 positions already
// cached by a layer.
//
// Main trunk, rows of tokens at positions start ..< start + M:
//   x = embed(tokens);  x = block_l(x) for every layer (caches gain M positions)
//   for the last `outputs` rows: h = norm(x) (kept: the input of depth 0);  logits = h·lm_headᵀ
// MTP depth k, row r fusing token start + r + k + 1 with the previous depth's state:
//   x = eh_proj([enorm(embed(token)), hnorm(h_{k−1})]);  x = block(x) at positions shifted by k + 1
//   logits of the last row = final_norm(x)·lm_headᵀ
// Every block computes outputs for its last `outputs` rows only (DecoderBlock.Frozen):
// the last MTP depth needs one output row per step, and so does the main trunk when
// decoding plainly; earlier rows still enter the caches.
//
// Batch invariance: greedy speculative output equals plain greedy output only if a
// position's logits are bit-identical whether the main trunk computes it alone (plain
// decoding) or among the rows of a verification. Norms, rotations, attention and SwiGLU
// work row by row in a fixed order, so that holds for them by construction. A GEMM
// row may not: OpenBLAS 0.3.21's SkylakeX small-matrix kernels give every row the same
// bits for any M, but its Haswell, Zen and Prescott kernels round rows differently
// depending on M. So the engine probes the BLAS on the main trunk's own matrices and
// row counts once (`verifiesInBatches`), and when rows depend on M it verifies row by
// row: still one verification per step and the same acceptance, just without the
// batched GEMMs' saving, and greedy output stays identical on every BLAS.

import NN
import Tensors

/// The decoding state of one sequence: weights, the KV caches of every main and MTP
/// block, the hidden states the MTP depths read, and scratch buffers.
///
/// Contract of the two passes: a layer's cache holds its first `L0` positions; a pass
/// over `M` new positions appends them. The caller truncates rejected positions.
final class DecodingEngine {
    let weights: DecodingWeights
    let hidden: Int
    let vocabularySize: Int
    /// One cache per main layer.
    let mainCaches: [KVCache]
    /// `depthCaches[k][i]`: depth k, block i.
    let depthCaches: [[KVCache]]
    /// Main final-norm outputs by position, `[positions, H]` (the input h₋₁ of depth 0).
    let mainHidden = RowBuffer()
    /// `depthHidden[k]`: depth k's outputs before its final norm, by position (the input of depth k + 1).
    let depthHidden: [RowBuffer]
    /// Logits of the last call's output rows, `[outputs, V]`.
    let logits = RowBuffer()

    /// Whether a verification runs its rows through the main trunk as one batch (the BLAS
    /// gives batch-invariant rows, see the file header) or one row at a time.
    var verifiesInBatches: Bool

    // Scratch, sized for the largest call so far (one spare row each, see `Linear.Frozen`).
    private let scratch = InferenceScratch()
    private let x = RowBuffer()
    private let normed = RowBuffer()
    private let fused = RowBuffer()
    private let verified = RowBuffer()
    private var rows = 0

    init(weights: DecodingWeights) {
        self.weights = weights
        hidden = weights.hiddenSize
        vocabularySize = weights.vocabularySize
        mainCaches = weights.layers.map { $0.makeCache() }
        depthCaches = weights.depths.map { $0.blocks.map { $0.makeCache() } }
        depthHidden = weights.depths.map { _ in RowBuffer() }
        verifiesInBatches = false
        verifiesInBatches = gemmRowsAreBatchInvariant(upTo: weights.depths.count + 1)
    }

    /// Whether every main-trunk projection gives the same bits for a row computed alone
    /// and as row r of an M-row product (2 ≤ M ≤ `maxRows`), through `Linear.Frozen` itself
    /// (padding included, with and without accumulation). GEMM kernels choose their code
    /// path from the shapes and flags, not the values, so random rows stand for all.
    private func gemmRowsAreBatchInvariant(upTo maxRows: Int) -> Bool {
        guard maxRows >= 2 else { return true }
        var generator = SplitMix64(seed: 0x5EED)
        func random(_ count: Int) -> RowBuffer {
            let b = RowBuffer(capacity: count)
            for i in 0..<count { b.pointer[i] = generator.nextUniform() * 2 - 1 }
            return b
        }
        let matrices = weights.layers.flatMap(\.projections) + [weights.lmHead]
        for w in matrices {
            let (inputs, outputs) = (w.inFeatures, w.outFeatures)
            let input = random((maxRows + 1) * inputs), start = random((maxRows + 1) * outputs)
            let batched = RowBuffer(capacity: (maxRows + 1) * outputs)
            let alone = RowBuffer(capacity: inputs), single = RowBuffer(capacity: outputs)
            for accumulate in [false, true] {
                for m in 2...maxRows {
                    batched.pointer.update(from: start.pointer, count: (maxRows + 1) * outputs)
                    w(input.pointer, rows: m, into: batched.pointer, accumulate: accumulate)
                    for r in 0..<m {
                        alone.pointer.update(from: input.pointer + r * inputs, count: inputs)
                        single.pointer.update(from: start.pointer + r * outputs, count: outputs)
                        w(alone.pointer, rows: 1, into: single.pointer, accumulate: accumulate)
                        for j in 0..<outputs where batched.pointer[r * outputs + j].bitPattern != single.pointer[j].bitPattern {
                            return false
                        }
                    }
                }
            }
        }
        return true
    }

    /// Empties every cache (a new sequence).
    func reset() {
        for c in mainCaches { c.reset() }
        for depth in depthCaches { for c in depth { c.reset() } }
    }

    /// Drops the main caches' positions from `length` on.
    func truncateMain(to length: Int) {
        for c in mainCaches { truncate(c, to: length) }
    }

    /// Drops depth `k`'s cached positions from `length` on.
    func truncateDepth(_ k: Int, to length: Int) {
        for c in depthCaches[k] { truncate(c, to: length) }
    }

    /// The decoding loops only roll back positions they appended: a failure is a broken invariant.
    private func truncate(_ cache: KVCache, to length: Int) {
        do { try cache.truncate(to: length) } catch { preconditionFailure("\(error)") }
    }

    private func reserveRows(_ m: Int) {
        // One spare row: a projection may pad a GEMM with it (see `Linear.Frozen`).
        let padded = m + 1
        guard padded > rows else { return }
        let h = hidden
        for b in [x, normed] { b.reserve(padded * h) }
        fused.reserve(padded * 2 * h)
        logits.reserve(padded * vocabularySize)
        rows = padded
    }

    // MARK: Main trunk

    /// Runs the main trunk on `tokens` at positions `start ..< start + M` (the main caches hold
    /// exactly `start` positions, and gain M).
    ///
    /// Writes the final-norm hidden states of the last `outputs` rows into ``mainHidden``
    /// (rows `start + M − outputs ..< start + M`) and their logits into ``logits``.
    func runMain(_ tokens: UnsafeBufferPointer<Int32>, start: Int, outputs: Int) {
        let m = tokens.count, h = hidden
        precondition(m > 0 && outputs >= 1 && outputs <= m, "runMain: \(outputs) outputs of \(m) rows")
        precondition(mainCaches.allSatisfy { $0.length == start }, "runMain: caches out of step with position \(start)")
        reserveRows(m)
        for r in 0..<m { (x.pointer + r * h).update(from: weights.embedding.pointer + Int(tokens[r]) * h, count: h) }
        for (l, layer) in weights.layers.enumerated() {
            layer(x.pointer, rows: m, outputs: l == weights.layers.count - 1 ? outputs : m, firstPosition: start,
                  cache: mainCaches[l], scratch: scratch)
        }
        let first = m - outputs
        mainHidden.reserve((start + m + 1) * h, keeping: start * h)
        let out = mainHidden.pointer + (start + first) * h
        weights.norm(x.pointer + first * h, rows: outputs, into: out)
        weights.lmHead(out, rows: outputs, into: logits.pointer)
    }

    /// The main trunk over the rows of a verification, `tokens` at `start ..< start + M`:
    /// like `runMain(tokens, start:, outputs: M)`, but row by row unless the BLAS is batch
    /// invariant, so each row's logits equal plain decoding's bit for bit.
    func verify(_ tokens: UnsafeBufferPointer<Int32>, start: Int) {
        let m = tokens.count
        guard !verifiesInBatches && m > 1 else {
            runMain(tokens, start: start, outputs: m)
            return
        }
        reserveRows(m)
        verified.reserve(m * vocabularySize)
        for r in 0..<m {
            runMain(UnsafeBufferPointer(rebasing: tokens[r...r]), start: start + r, outputs: 1)
            (verified.pointer + r * vocabularySize).update(from: logits.pointer, count: vocabularySize)
        }
        logits.pointer.update(from: verified.pointer, count: m * vocabularySize)
    }

    // MARK: MTP depths

    /// Runs MTP depth `depth` at positions `start ..< start + M`: row r fuses the embedding of
    /// `tokens[r]` (token `start + r + depth + 1` of the sequence) with the previous depth's
    /// state at position `start + r` (``mainHidden`` for depth 0), and rotates with position ids
    /// shifted by `depth + 1`, as the MTP module does in training.
    ///
    /// Writes the pre-norm outputs of the last `outputs` rows into `depthHidden[depth]` and the
    /// logits of the last row into ``logits`` (row 0).
    func runDepth(_ depth: Int, tokens: UnsafeBufferPointer<Int32>, start: Int, outputs: Int) {
        let m = tokens.count, h = hidden, w = weights.depths[depth]
        precondition(m > 0 && outputs >= 1 && outputs <= m, "runDepth: \(outputs) outputs of \(m) rows")
        precondition(depthCaches[depth].allSatisfy { $0.length == start }, "runDepth: caches out of step with position \(start)")
        reserveRows(m)
        let shift = depth + 1
        let previous = depth == 0 ? mainHidden.pointer : depthHidden[depth - 1].pointer
        let cat = fused.pointer
        for r in 0..<m {
            w.enorm(weights.embedding.pointer + Int(tokens[r]) * h, rows: 1, into: cat + r * 2 * h)
        }
        w.hnorm(previous + start * h, rows: m, into: cat + h, outputStride: 2 * h)
        w.ehProj(cat, rows: m, into: x.pointer)
        for (i, block) in w.blocks.enumerated() {
            block(x.pointer, rows: m, outputs: i == w.blocks.count - 1 ? outputs : m, firstPosition: start + shift,
                  cache: depthCaches[depth][i], scratch: scratch)
        }
        let first = m - outputs
        let history = depthHidden[depth]
        history.reserve((start + m) * h, keeping: start * h)
        (history.pointer + (start + first) * h).update(from: x.pointer + first * h, count: outputs * h)
        w.finalNorm(x.pointer + (m - 1) * h, rows: 1, into: normed.pointer)
        weights.lmHead(normed.pointer, rows: 1, into: logits.pointer)
    }
}
