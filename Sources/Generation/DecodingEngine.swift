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
// work row by row in a fixed order, and every projection of a call of at most 8 rows runs
// NN's batch-invariant kernel (`Linear.Frozen`), so that holds by construction on every
// CPU and BLAS: a verification is always one batched forward.

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

    // Scratch, sized for the largest call so far (one spare row each, see InferenceBuffers.swift).
    private let scratch = InferenceScratch()
    private let x = RowBuffer()
    private let normed = RowBuffer()
    private let fused = RowBuffer()
    private var rows = 0

    init(weights: DecodingWeights) {
        self.weights = weights
        hidden = weights.hiddenSize
        vocabularySize = weights.vocabularySize
        mainCaches = weights.layers.map { $0.makeCache() }
        depthCaches = weights.depths.map { $0.blocks.map { $0.makeCache() } }
        depthHidden = weights.depths.map { _ in RowBuffer() }
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
