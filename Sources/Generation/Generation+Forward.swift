// The incremental forward passes of generation: the main trunk and the MTP depths
// over a few new positions at a time, against per-layer KV caches, on reused
// buffers and without autograd.
//
// Legend: M new rows of a call, H hidden size, I intermediate size, V vocabulary,
// n heads, d = H/n, L0 tokens already cached by a layer.
//
// Per block, on the residual stream x[M, H] (the same maths as DecoderBlock):
//   a = rmsNorm(x);  k, v = a·Wk, a·Wv (all M rows, rotated k appended to the cache)
//   for the last `outputs` rows only:
//     q = rope(a·Wq);  x += attention(q, cache)·Wo;  x += down(silu(b·Wg) ⊙ b·Wu), b = rmsNorm(x)
// Rows before the last `outputs` are still written to the cache (later tokens attend
// to them) but skip everything that only feeds their own output: the last MTP depth
// needs one output row per step, and so does the main trunk when decoding plainly.
//
// Batch invariance: greedy speculative output equals plain greedy output only if a
// position's logits are bit-identical whether the main trunk computes it alone (plain
// decoding) or among the rows of a verification. Norms, rotations, attention and SwiGLU
// here work row by row in a fixed order, so that holds for them by construction. A GEMM
// row may not: OpenBLAS 0.3.21's SkylakeX small-matrix kernels give every row the same
// bits for any M, but its Haswell, Zen and Prescott kernels round rows differently
// depending on M. So the engine probes the BLAS on the main trunk's own matrices and
// row counts once (`verifiesInBatches`), and when rows depend on M it verifies row by
// row: still one verification per step and the same acceptance, just without the
// batched GEMMs' saving, and greedy output stays identical on every BLAS.

@_spi(Kernels) import Tensors

/// The decoding state of one sequence: weights, the KV caches of every main and MTP
/// block, the hidden states the MTP depths read, and scratch buffers.
///
/// Contract of the two passes: a layer's cache holds its first `L0` positions; a pass
/// over `M` new positions appends them. The caller truncates rejected positions.
final class DecodingEngine {
    let weights: DecodingWeights
    let hidden: Int
    let heads: Int
    let headDimension: Int
    let vocabularySize: Int
    let scale: Float
    /// One cache per main layer.
    let mainCaches: [DecodingCache]
    /// `depthCaches[k][i]`: depth k, block i.
    let depthCaches: [[DecodingCache]]
    /// Main final-norm outputs by position, `[positions, H]` (the input h₋₁ of depth 0).
    let mainHidden = DecodingBuffer()
    /// `depthHidden[k]`: depth k's outputs before its final norm, by position (the input of depth k + 1).
    let depthHidden: [DecodingBuffer]
    /// Logits of the last call's output rows, `[outputs, V]`.
    let logits = DecodingBuffer()
    let rotary: RotaryCache

    /// Whether a verification runs its rows through the main trunk as one batch (the BLAS
    /// gives batch-invariant rows, see the file header) or one row at a time.
    var verifiesInBatches: Bool

    // Scratch, sized for the largest call so far.
    private let x = DecodingBuffer()
    private let normed = DecodingBuffer()
    private let q = DecodingBuffer()
    private let k = DecodingBuffer()
    private let v = DecodingBuffer()
    private let attended = DecodingBuffer()
    private let gate = DecodingBuffer()
    private let up = DecodingBuffer()
    private let fused = DecodingBuffer()
    private let scores = DecodingBuffer()
    private let verified = DecodingBuffer()
    private var rows = 0

    init(weights: DecodingWeights) {
        self.weights = weights
        hidden = weights.hiddenSize
        heads = weights.heads
        headDimension = weights.headDimension
        vocabularySize = weights.vocabularySize
        scale = 1 / Float(weights.headDimension).squareRoot()
        let (n, d) = (weights.heads, weights.headDimension)
        mainCaches = weights.layers.map { _ in DecodingCache(heads: n, headDimension: d) }
        depthCaches = weights.depths.map { $0.blocks.map { _ in DecodingCache(heads: n, headDimension: d) } }
        depthHidden = weights.depths.map { _ in DecodingBuffer() }
        rotary = RotaryCache(headDimension: weights.headDimension, base: weights.ropeBase)
        verifiesInBatches = false
        verifiesInBatches = gemmRowsAreBatchInvariant(upTo: weights.depths.count + 1)
    }

    /// Whether every main-trunk projection gives the same bits for a row computed alone
    /// and as row r of an M-row product (2 ≤ M ≤ `maxRows`), through ``project`` itself
    /// (padding included, with and without accumulation). GEMM kernels choose their code
    /// path from the shapes and flags, not the values, so random rows stand for all.
    private func gemmRowsAreBatchInvariant(upTo maxRows: Int) -> Bool {
        guard maxRows >= 2 else { return true }
        var generator = SplitMix64(seed: 0x5EED)
        func random(_ count: Int) -> DecodingBuffer {
            let b = DecodingBuffer(capacity: count)
            for i in 0..<count { b.pointer[i] = generator.nextUniform() * 2 - 1 }
            return b
        }
        let matrices = weights.layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] } + [weights.lmHead]
        for w in matrices {
            let input = random((maxRows + 1) * w.rows), start = random((maxRows + 1) * w.columns)
            let batched = DecodingBuffer(capacity: (maxRows + 1) * w.columns)
            let alone = DecodingBuffer(capacity: w.rows), single = DecodingBuffer(capacity: w.columns)
            for accumulate in [false, true] {
                for m in 2...maxRows {
                    batched.pointer.update(from: start.pointer, count: (maxRows + 1) * w.columns)
                    project(input.pointer, rows: m, w, into: batched.pointer, accumulate: accumulate)
                    for r in 0..<m {
                        alone.pointer.update(from: input.pointer + r * w.rows, count: w.rows)
                        single.pointer.update(from: start.pointer + r * w.columns, count: w.columns)
                        project(alone.pointer, rows: 1, w, into: single.pointer, accumulate: accumulate)
                        for j in 0..<w.columns where batched.pointer[r * w.columns + j].bitPattern != single.pointer[j].bitPattern {
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
        for c in mainCaches { c.truncate(to: 0) }
        for depth in depthCaches { for c in depth { c.truncate(to: 0) } }
    }

    /// Drops the main caches' positions from `length` on.
    func truncateMain(to length: Int) {
        for c in mainCaches { c.truncate(to: length) }
    }

    /// Drops depth `k`'s cached positions from `length` on.
    func truncateDepth(_ k: Int, to length: Int) {
        for c in depthCaches[k] { c.truncate(to: length) }
    }

    private func reserveRows(_ m: Int) {
        // One spare row: `project` may pad a GEMM with it (see there).
        let padded = m + 1
        guard padded > rows else { return }
        let h = hidden, i = weights.intermediateSize
        for b in [x, normed, q, k, v, attended] { b.reserve(padded * h) }
        gate.reserve(padded * i)
        up.reserve(padded * i)
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
        rotary.reserve(start + m)
        for r in 0..<m { (x.pointer + r * h).update(from: weights.embedding.pointer + Int(tokens[r]) * h, count: h) }
        for (l, layer) in weights.layers.enumerated() {
            runBlock(layer, rows: m, firstPosition: start, cache: mainCaches[l],
                     outputs: l == weights.layers.count - 1 ? outputs : m)
        }
        let first = m - outputs
        mainHidden.reserve((start + m + 1) * h, keeping: start * h)
        let out = mainHidden.pointer + (start + first) * h
        rmsNorm(x.pointer + first * h, rows: outputs, weight: weights.norm.pointer, epsilon: weights.normEpsilon, into: out)
        project(out, rows: outputs, weights.lmHead, into: logits.pointer)
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
        rotary.reserve(start + m + shift)
        let previous = depth == 0 ? mainHidden.pointer : depthHidden[depth - 1].pointer
        let cat = fused.pointer
        for r in 0..<m {
            rmsNorm(weights.embedding.pointer + Int(tokens[r]) * h, rows: 1, weight: w.enorm.pointer,
                    epsilon: w.enormEpsilon, into: cat + r * 2 * h)
        }
        rmsNorm(previous + start * h, rows: m, weight: w.hnorm.pointer, epsilon: w.hnormEpsilon,
                into: cat + h, outputStride: 2 * h)
        project(cat, rows: m, w.ehProj, into: x.pointer)
        for (i, block) in w.blocks.enumerated() {
            runBlock(block, rows: m, firstPosition: start + shift, cache: depthCaches[depth][i],
                     outputs: i == w.blocks.count - 1 ? outputs : m)
        }
        let first = m - outputs
        let history = depthHidden[depth]
        history.reserve((start + m) * h, keeping: start * h)
        (history.pointer + (start + first) * h).update(from: x.pointer + first * h, count: outputs * h)
        rmsNorm(x.pointer + (m - 1) * h, rows: 1, weight: w.finalNorm.pointer, epsilon: w.finalEpsilon, into: normed.pointer)
        project(normed.pointer, rows: 1, weights.lmHead, into: logits.pointer)
    }

    // MARK: Block

    /// One decoder block on the residual stream `x[M, H]` (see the file header).
    private func runBlock(_ w: DecodingBlock, rows m: Int, firstPosition: Int, cache: DecodingCache, outputs: Int) {
        let h = hidden, xp = x.pointer, first = m - outputs
        rmsNorm(xp, rows: m, weight: w.inputNorm.pointer, epsilon: w.inputEpsilon, into: normed.pointer)
        project(normed.pointer, rows: m, w.k, into: k.pointer)
        project(normed.pointer, rows: m, w.v, into: v.pointer)
        rotate(k.pointer, rows: m, firstPosition: firstPosition)
        let cached = cache.length
        cache.append(keys: k.pointer, values: v.pointer, count: m)
        project(normed.pointer + first * h, rows: outputs, w.q, into: q.pointer)
        rotate(q.pointer, rows: outputs, firstPosition: firstPosition + first)
        for r in 0..<outputs {
            attend(q.pointer + r * h, cache: cache, visible: cached + first + r + 1, into: attended.pointer + r * h)
        }
        let residual = xp + first * h
        project(attended.pointer, rows: outputs, w.o, into: residual, accumulate: true)
        rmsNorm(residual, rows: outputs, weight: w.postNorm.pointer, epsilon: w.postEpsilon, into: normed.pointer)
        project(normed.pointer, rows: outputs, w.gate, into: gate.pointer)
        project(normed.pointer, rows: outputs, w.up, into: up.pointer)
        swiGLU(gate.pointer, up.pointer, count: outputs * weights.intermediateSize)
        project(gate.pointer, rows: outputs, w.down, into: residual, accumulate: true)
    }

    // MARK: Kernels

    /// `y[M, out] = x[M, in] · W[in, out]` (`+ y` when accumulating).
    ///
    /// Three rows run as four: OpenBLAS 0.3.21's small-matrix SkylakeX kernel takes
    /// 3.45 µs for 3 × 96 · 96 × 256 against 2.20 µs for 4 rows and 1.79 µs for 2 (its
    /// odd-row tail is slow). The extra row reads and writes the spare row every buffer
    /// keeps past its M rows; no result depends on it, since GEMM row i reads only input row i.
    @inline(__always)
    private func project(_ xp: UnsafePointer<Float>, rows m: Int, _ w: DecodingMatrix, into y: UnsafeMutablePointer<Float>,
                         accumulate: Bool = false) {
        BLAS.sgemm(transA: false, transB: false, m: m == 3 ? 4 : m, n: w.columns, k: w.rows, alpha: 1, a: xp, lda: w.rows,
                   b: w.pointer, ldb: w.columns, beta: accumulate ? 1 : 0, c: y, ldc: w.columns)
    }

    /// `y = x · rsqrt(mean(x²) + ε) · w` per row of H (output rows `outputStride` apart).
    @inline(__always)
    private func rmsNorm(_ xp: UnsafePointer<Float>, rows m: Int, weight: UnsafePointer<Float>, epsilon: Float,
                         into y: UnsafeMutablePointer<Float>, outputStride: Int? = nil) {
        let h = hidden, stride = outputStride ?? hidden
        for r in 0..<m {
            let xr = xp + r * h, yr = y + r * stride
            let rs = 1 / (dot(xr, xr, h) / Float(h) + epsilon).squareRoot()
            for j in 0..<h { yr[j] = xr[j] * rs * weight[j] }
        }
    }

    /// Rotates every head of `rows` consecutive tokens, the first at `firstPosition` (rotate-half convention).
    @inline(__always)
    private func rotate(_ xp: UnsafeMutablePointer<Float>, rows m: Int, firstPosition: Int) {
        let half = rotary.half, d = headDimension
        for r in 0..<m {
            let c = rotary.cos.pointer + (firstPosition + r) * half, s = rotary.sin.pointer + (firstPosition + r) * half
            for head in 0..<heads {
                let p = xp + r * hidden + head * d
                for i in 0..<half {
                    let x1 = p[i], x2 = p[i + half]
                    p[i] = x1 * c[i] - x2 * s[i]
                    p[i + half] = x2 * c[i] + x1 * s[i]
                }
            }
        }
    }

    /// One query row against the first `visible` cached positions of every head:
    /// softmax(c · q·Kᵀ) · V with c = 1/√d. Everything here depends on this row and
    /// `visible` alone, in a fixed order, so a position's attention is bit-identical whether
    /// its row is decoded alone or verified among drafts. (Two single-row GEMMs per head,
    /// q·Kᵀ and p·V, measured no faster than these loops.)
    @inline(__always)
    private func attend(_ query: UnsafePointer<Float>, cache: DecodingCache, visible: Int, into out: UnsafeMutablePointer<Float>) {
        let blocks = (visible + 7) / 8
        scores.reserve(blocks * 8)
        let s = scores.pointer, stride = cache.capacity, values = cache.values.pointer
        let h = hidden, d = headDimension
        for head in 0..<heads {
            let qh = query + head * d, keys = cache.keys(head: head), o = out + head * d
            // Eight keys at a time; lanes past `visible` read zeros or stale keys and are ignored.
            for b in 0..<blocks {
                var acc = SIMD8<Float>(repeating: 0)
                let column = keys + b * 8
                for c in 0..<d { acc += SIMD8(repeating: qh[c]) * load(column + c * stride) }
                store(acc * scale, s + b * 8)
            }
            let total = expShifted(s, visible, shift: VectorMath.max(s, count: visible))
            let inverse = 1 / total
            // Σ_j p_j · V[j, c..<c+8], one register per pass over the keys.
            var c = 0
            while c + 8 <= d {
                var acc = SIMD8<Float>(repeating: 0)
                for j in 0..<visible { acc += SIMD8(repeating: s[j]) * load(values + j * h + head * d + c) }
                store(acc * inverse, o + c)
                c += 8
            }
            if c < d {
                var acc = SIMD8<Float>(repeating: 0)
                for j in 0..<visible {
                    let vj = values + j * h + head * d + c
                    for i in 0..<(d - c) { acc[i] += s[j] * vj[i] }
                }
                for i in 0..<(d - c) { o[c + i] = acc[i] * inverse }
            }
        }
    }

    /// `gate ← silu(gate) ⊙ up`, elementwise.
    @inline(__always)
    private func swiGLU(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let a = load(g + i)
            let sigma = 1 / (1 + VectorMath.exp(-a))
            store(a * sigma * load(u + i), g + i)
            i += 8
        }
        while i < n {
            let sigma = 1 / (1 + VectorMath.exp(-g[i]))
            g[i] = g[i] * sigma * u[i]
            i += 1
        }
    }

    /// x[i] ← exp(x[i] − shift) for i < n; returns the sum.
    @inline(__always)
    private func expShifted(_ xp: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        VectorMath.expShifted(xp, count: n, shift: shift)
    }

    @inline(__always)
    private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        VectorMath.dot(a, b, count: n)
    }

    @inline(__always)
    private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private func store(_ value: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: value, as: SIMD8<Float>.self)
    }
}
