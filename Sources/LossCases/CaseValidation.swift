// What a case file must satisfy before it is evaluated (SPEC §6, made strict): only
// known tensor names, depth indices without gaps, a well-formed `cu_seqlens`, an integer
// `seq_idx`, finite non-negative scale factors, a non-negative `num_label_tokens`, and
// sizes that fit in memory. Each check names the tensor or key, so a misspelt name or a
// hostile size is an `error:` line instead of being ignored, or a trap.

import Foundation
import Losses
import MTP
import Tensors

extension LossCase {
    /// The names a case file may hold besides the per-depth sequences.
    static let plainTensorNames: Set<String> = ["labels", "lm_head.weight", "logits", "hidden_states", "mask", "seq_idx", "cu_seqlens"]
    /// The per-depth sequences: `prefix.0`, `prefix.1`, …
    static let depthPrefixes = ["mtp_per_depth_h", "mtp_per_depth_logits", "mtp_per_depth_targets"]
    /// Metadata keys read as scale factors (finite, >= 0).
    static let scaleKeys = ["scaling_factor", "config_scaling_factor", "model_scaling_factor", "output_scaling_factor",
                            "logit_softcapping"]

    /// Metadata keys read as integers.
    static let integerKeys = ["ignore_index", "chunk_len", "num_label_tokens", "chunk_budget_floats"]
    /// Metadata keys read as booleans.
    static let booleanKeys = ["fp32_upcast", "return_per_depth", "training", "mtp_outputs_are_logits"]
    /// Every metadata key the contract reads.
    static let optionKeys: Set<String> = Set(scaleKeys + integerKeys + booleanKeys + ["entry", "loss_fn", "reduction", "output_form"])

    /// Throws for the first thing in the case that the contract does not allow.
    ///
    /// - Throws: ``MTP/MTPError/invalidArgument(_:)`` naming the tensor or metadata key;
    ///   ``Tensors/MemoryBudgetError`` when evaluating would not fit in memory.
    public func validate() throws {
        try checkNames()
        for key in Self.scaleKeys {
            guard let s = metadata[key] else { continue }
            guard let v = Float(s.trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0 else {
                throw MTPError.invalidArgument("metadata \(key)='\(s)' must be a finite number >= 0")
            }
        }
        if let s = metadata["num_label_tokens"], let v = Int(s.trimmingCharacters(in: .whitespaces)), v < 0 {
            throw MTPError.invalidArgument("metadata num_label_tokens=\(v) must be >= 0 (a count of label tokens)")
        }
        if let s = tensors["seq_idx"], !s.dtype.isInteger {
            throw MTPError.invalidDType("seq_idx must be an integer tensor (Int32 or Int64), got \(s.dtype) \(s.shape)")
        }
        if let labels = tensors["labels"], let cu = tensors["cu_seqlens"] {
            try Self.checkCuSeqlens(cu, length: labels.shape.last ?? 0)
        }
        try checkMemory()
    }

    /// What looks like a mistake but is not an error, one line each: a metadata key within
    /// two edits of an option's name (`reducton`), a `mask` tensor that the entry does not
    /// read, and an option value that does not parse (an integer, a boolean) where this
    /// case's loss kind never reads it. The SPEC makes
    /// every metadata key optional and says nothing of others (case generators add
    /// descriptions, provenance, …), so these never stop an evaluation; `mtp loss` prints
    /// them on stderr.
    public func warnings() -> [String] {
        var out: [String] = []
        let options = Self.optionKeys.sorted()
        for key in metadata.keys.sorted() where !Self.optionKeys.contains(key) {
            if let option = options.first(where: { Self.editDistance(key, $0, atMost: 2) <= 2 }) {
                out.append("metadata key '\(key)' is not an option and is ignored (did you mean '\(option)'?)")
            }
        }
        let entry = metadata["entry"] ?? "calculate_mtp_loss"
        if tensors["mask"] != nil && entry != "calculate_loss" {
            out.append("tensor 'mask' is read only by entry calculate_loss; entry \(entry) ignores it (the loss is unmasked)")
        }
        for key in Self.integerKeys where metadata[key].map({ Int($0.trimmingCharacters(in: .whitespaces)) == nil }) ?? false {
            out.append("metadata \(key)='\(metadata[key]!)' is not an integer (this case does not read it)")
        }
        for key in Self.booleanKeys where metadata[key].map({ !["true", "false", "1", "0"].contains($0.lowercased()) }) ?? false {
            out.append("metadata \(key)='\(metadata[key]!)' is not a boolean (this case does not read it)")
        }
        return out
    }

    /// The Levenshtein distance between `a` and `b`, or `limit + 1` once it exceeds `limit`.
    static func editDistance(_ a: String, _ b: String, atMost limit: Int) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if abs(x.count - y.count) > limit { return limit + 1 }
        var previous = Array(0...y.count)
        for i in 1...Swift.max(x.count, 1) where !x.isEmpty {
            var row = [i] + [Int](repeating: 0, count: y.count)
            for j in 1..<(y.count + 1) {
                row[j] = Swift.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            if row.min()! > limit { return limit + 1 }
            previous = row
        }
        return Swift.min(previous[y.count], limit + 1)
    }

    /// Unknown names (a misspelling would otherwise be silently ignored) and depth gaps.
    private func checkNames() throws {
        var indices: [String: [Int]] = [:]
        for name in tensors.keys.sorted() where !Self.plainTensorNames.contains(name) {
            guard let prefix = Self.depthPrefixes.first(where: { name.hasPrefix($0 + ".") }),
                  case let digits = name.dropFirst(prefix.count + 1),
                  let k = Int(digits), k >= 0, String(k) == digits else {
                throw MTPError.invalidArgument("unknown tensor '\(name)' in the case file (expected labels, lm_head.weight, logits, "
                    + "hidden_states, mask, seq_idx, cu_seqlens or mtp_per_depth_{h,logits,targets}.{k})")
            }
            indices[prefix, default: []].append(k)
        }
        for (prefix, ks) in indices.sorted(by: { $0.key < $1.key }) {
            let sorted = ks.sorted()
            if let gap = (0..<sorted.count).first(where: { sorted[$0] != $0 }) {
                throw MTPError.invalidArgument("\(prefix).\(sorted[gap]) is given without \(prefix).\(gap): depth indices must run 0, 1, 2, … without gaps")
            }
        }
    }

    /// `cu_seqlens`: integer, `[n+1]` or `[1, n+1]`, starts at 0, non-decreasing, within `length`.
    static func checkCuSeqlens(_ cu: Tensor, length: Int) throws {
        guard cu.dtype.isInteger else { throw MTPError.invalidDType("cu_seqlens must be an integer tensor, got \(cu.dtype)") }
        guard cu.rank == 1 || (cu.rank == 2 && cu.shape[0] == 1), cu.count >= 1 else {
            throw MTPError.shapeMismatch("cu_seqlens must have shape [n+1] or [1, n+1] with n >= 0, got \(cu.shape)")
        }
        let v = cu.int64s
        guard v[0] == 0 else { throw MTPError.invalidArgument("cu_seqlens must start at 0, got \(v[0])") }
        for i in 1..<v.count where v[i] < v[i - 1] {
            throw MTPError.invalidArgument("cu_seqlens must be non-decreasing: cu_seqlens[\(i)] = \(v[i]) < cu_seqlens[\(i - 1)] = \(v[i - 1])")
        }
        guard let last = v.last, last <= Int64(length) else {
            throw MTPError.invalidArgument("cu_seqlens ends at \(v.last ?? 0), past the \(length) tokens of a sequence")
        }
    }

    /// What the LM head would allocate: an `[N, V]` logits buffer and its gradient for a
    /// logits loss on hidden states, one row of V logits (and the `[V, H]` gradient) for the fused loss.
    private func checkMemory() throws {
        guard let head = tensors["lm_head.weight"], head.rank == 2 else { return }
        let v = head.shape[0], h = head.shape[1]
        let rows = tensors["labels"]?.count ?? 0
        let fused = metadata["loss_fn"] == "FusedLinearCrossEntropy"
        let bytes = fused
            ? MemoryBudget.sum([MemoryBudget.product([v, 4 * 64]), MemoryBudget.product([v, h, 4])])
            : MemoryBudget.product([rows, v, 4 * 2])
        try MemoryBudget.check(bytes: bytes, for: "lm_head.weight \(head.shape) applied to \(rows) rows")
    }
}
