// Sizes from flags checked before anything of that size is allocated or looped over:
// each check names its flag and the bytes it would take (see Tensors/MemoryBudget).

import ArgumentParser
import Model
import Tensors

enum SizeLimits {
    /// `mtp generate` / `bench generate`: the KV cache of every block for the prompt and the
    /// generated tokens (keys and values, Float32), and the token list itself.
    static func checkDecoding(maxTokens: Int, promptLength: Int, model m: ModelConfig) throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
        let positions = MemoryBudget.sum([maxTokens, promptLength, m.mtpDepths])
        let blocks = m.layers + m.mtpDepths
        try MemoryBudget.check(bytes: positions.flatMap { MemoryBudget.product([$0, blocks, 2, m.hiddenSize, 4]) },
                               for: "--max-tokens \(maxTokens): the KV cache of \(blocks) blocks of hidden size \(m.hiddenSize)")
    }

    /// `--prompt-index`: a held-out document's index, checked before documents are drawn.
    static func checkPromptIndex(_ index: Int, documents: Int) throws {
        guard documents >= 1 else { throw ValidationError("--documents must be >= 1, got \(documents)") }
        guard index >= 0 else { throw ValidationError("--prompt-index must be >= 0, got \(index)") }
        guard index < documents else {
            throw ValidationError("--prompt-index \(index) is past the held-out documents of --documents \(documents)")
        }
    }

    /// `bench loss`: the inputs, the weight and their gradients, and `[N, V]` logits for the logits losses.
    static func checkBenchLoss(tokens n: Int, hidden h: Int, vocab v: Int, depths d: Int, materialisesLogits: Bool) throws {
        guard d >= 0, d < Int.max else { throw ValidationError("--depths must be in 0..<\(Int.max), got \(d)") }
        let heads = d + 1
        let bytes = MemoryBudget.sum([MemoryBudget.product([n, h, heads, 4, 2]), MemoryBudget.product([v, h, 4, 2]),
                                      materialisesLogits ? MemoryBudget.product([n, v, 4, 2]) : 0])
        try MemoryBudget.check(bytes: bytes, for: "bench loss --tokens \(n) --hidden \(h) --vocab \(v) --depths \(d)")
    }

    /// `bench matmul`: A [M, K], B [K, N] and C [M, N] in Float32.
    static func checkMatmul(m: Int, k: Int, n: Int) throws {
        let bytes = MemoryBudget.sum([MemoryBudget.product([m, k, 4]), MemoryBudget.product([k, n, 4]), MemoryBudget.product([m, n, 4])])
        try MemoryBudget.check(bytes: bytes, for: "bench matmul --m \(m) --k \(k) --n \(n)")
    }

    /// `bench attention`: q, the output, its upstream gradient and dq `[B, n, S, d]`; k, v and
    /// their gradients `[B, g, S, d]` (Float32).
    static func checkBenchAttention(batch b: Int, heads n: Int, keyValueHeads g: Int, length s: Int, dimension d: Int) throws {
        let bytes = MemoryBudget.sum([MemoryBudget.product([b, n, s, d, 4, 4]), MemoryBudget.product([b, g, s, d, 4, 4])])
        try MemoryBudget.check(bytes: bytes, for: "bench attention --batch-size \(b) --heads \(n) --key-value-heads \(g) "
            + "--seq-len \(s) --head-dim \(d)")
    }
}
