// The case-file contract of `mtp loss` (SPEC §6): one safetensors file holds the
// inputs of one call and its options in `__metadata__`.

import MTP
import Foundation
import Losses
import Tensors

/// One evaluation of `calculateLoss`, `calculateMTPLoss` or `PipelineCausalLMLoss`,
/// described by a safetensors case file.
public struct LossCase {
    /// The input tensors by name (`labels`, `lm_head.weight`, `logits`, …).
    public let tensors: [String: Tensor]
    /// The options (`entry`, `loss_fn`, `reduction`, …).
    public let metadata: [String: String]

    /// The result of evaluating a case.
    public struct Result {
        /// The loss: a scalar, or per-row values for reduction `none`.
        public let loss: Tensor
        /// Unscaled per-depth losses, when `return_per_depth` is true.
        public let perDepth: [Float]?
        /// Float32 gradients of every floating input that received one, by input name.
        public let gradients: [String: Tensor]
    }

    public init(tensors: [String: Tensor], metadata: [String: String]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Reads a case file.
    ///
    /// - Throws: ``SafeTensorsError`` for a malformed file.
    public init(contentsOf url: URL) throws {
        let (t, m) = try SafeTensors.read(contentsOf: url)
        self.init(tensors: t, metadata: m)
    }

    /// Runs the call the case describes, then back-propagates (the sum of a non-scalar loss).
    ///
    /// - Throws: ``MTPError``/``LossError``/``TensorError`` for invalid cases (``validate()`` first).
    public func evaluate() throws -> Result { try evaluate(vocabularyParallel: nil) }

    /// Runs the call on this rank's vocabulary shard when `group` is given (see
    /// ``vocabularyParallelInputs(_:lossFn:group:)``); gradients of sharded inputs are this
    /// rank's shards. Every rank of `group` must evaluate the same case.
    ///
    /// - Throws: as ``evaluate()``, and the group's communication errors.
    public func evaluate(vocabularyParallel group: (any LossGroup)?) throws -> Result {
        try validate()
        // Metadata keys other than the options (descriptions, provenance) are ignored.
        var leaves: [String: Tensor] = [:]
        for (name, t) in tensors {
            leaves[name] = t.dtype.isFloatingPoint ? t.requiringGrad() : t
        }
        var inputs = leaves
        var lossFn = try makeLossFunction()
        if let group { (leaves, inputs, lossFn) = try vocabularyParallelInputs(leaves, lossFn: lossFn, group: group) }
        guard let labels = inputs["labels"] else { throw MTPError.missingTensor("case has no labels tensor") }
        let numLabelTokens = try int("num_label_tokens")
        let head = inputs["lm_head.weight"]
        var perDepth: [Tensor]? = nil
        let loss: Tensor
        switch metadata["entry"] ?? "calculate_mtp_loss" {
        case "calculate_loss":
            let model = LossModel(lmHeadWeight: head)
            if let mask = inputs["mask"] {
                switch lossFn {
                case let m as MaskedCrossEntropy:
                    loss = try m(logits: try require(inputs, "logits"), labels: labels, mask: mask, numLabelTokens: numLabelTokens)
                case let c as ChunkedCrossEntropy:
                    loss = try c(logits: try require(inputs, "logits"), labels: labels, mask: mask, numLabelTokens: numLabelTokens)
                case let p as VocabularyParallelLogitsCrossEntropy:
                    loss = try p(logits: try require(inputs, "logits"), labels: labels, mask: mask, numLabelTokens: numLabelTokens)
                default:
                    throw MTPError.invalidArgument("a mask is only supported by MaskedCrossEntropy and ChunkedCrossEntropy")
                }
            } else {
                loss = try calculateLoss(lossFn, logits: inputs["logits"], hiddenStates: inputs["hidden_states"],
                                         labels: labels, model: model, numLabelTokens: numLabelTokens)
            }
        case "calculate_mtp_loss":
            let out = try calculateMTPLossPerDepth(
                lossFn, perDepthHidden: sequence(inputs, "mtp_per_depth_h"), perDepthLogits: sequence(inputs, "mtp_per_depth_logits"),
                perDepthTargets: sequence(inputs, "mtp_per_depth_targets"), labels: labels, model: LossModel(lmHeadWeight: head),
                scalingFactor: try float("scaling_factor") ?? 0.1, numLabelTokens: numLabelTokens,
                ignoreIndex: try int("ignore_index") ?? -100, cuSeqlens: inputs["cu_seqlens"], seqIdx: inputs["seq_idx"])
            loss = out.loss
            perDepth = out.perDepthLosses
        case "pipeline_loss":
            loss = try pipelineLoss(lossFn, inputs: inputs, labels: labels, head: head)
        case let other:
            throw MTPError.invalidArgument("unknown entry '\(other)' (expected calculate_mtp_loss, calculate_loss or pipeline_loss)")
        }
        if loss.requiresGrad {
            try loss.backward(loss.rank == 0 ? nil : Tensor.ones(loss.shape))
        }
        var grads: [String: Tensor] = [:]
        for (name, t) in leaves where t.dtype.isFloatingPoint {
            if let g = t.grad { grads[name] = g.cast(to: .float32).detached() }
        }
        let wantPerDepth = try bool("return_per_depth") ?? false
        return Result(loss: loss.detached(), perDepth: wantPerDepth ? perDepth?.map { $0.sum().floats[0] } : nil,
                      gradients: grads)
    }

    // MARK: Pipeline

    private func pipelineLoss(_ lossFn: any TokenLoss, inputs: [String: Tensor], labels: Tensor, head: Tensor?) throws -> Tensor {
        let fused = lossFn is any FusedLinearLoss
        let hidden = sequence(inputs, "mtp_per_depth_h"), logits = sequence(inputs, "mtp_per_depth_logits")
        let depths = (hidden?.count ?? 0) + (logits?.count ?? 0)
        let config = try float("model_scaling_factor").map {
            MTPConfig(numLayers: Swift.max(depths, 1), layerPattern: "*", lossScalingFactor: $0)
        }
        let model = LossModel(lmHeadWeight: head, mtpConfig: config, isTraining: try bool("training") ?? true,
                              mtpOutputsAreLogits: try bool("mtp_outputs_are_logits") ?? false)
        let loss = MTPLossConfig(scalingFactor: try float("config_scaling_factor"), ignoreIndex: try int("ignore_index") ?? -100)
            .build(lossFn: lossFn, model: model)
        loss.cuSeqlens = inputs["cu_seqlens"]
        let output: PipelineOutput
        switch metadata["output_form"] ?? "tuple" {
        case "tuple":
            let firstName = fused ? "hidden_states" : "logits"
            var rest = (hidden ?? []) + (logits ?? [])
            if let s = inputs["seq_idx"] { rest.append(s) }
            output = .tuple(first: try require(inputs, firstName), rest: rest)
        case "model_output":
            output = .record(CausalLMOutput(logits: inputs["logits"], hiddenStates: inputs["hidden_states"],
                                            perDepthHidden: hidden, perDepthLogits: logits,
                                            mtpLossScalingFactor: try float("output_scaling_factor")))
        case "hidden":
            output = .tensor(try require(inputs, "hidden_states"))
        case "logits":
            output = .tensor(try require(inputs, "logits"))
        case let other:
            throw MTPError.invalidArgument("unknown output_form '\(other)' (expected tuple, model_output, hidden or logits)")
        }
        return try loss(output, labels: labels).loss
    }

    // MARK: Options

    func makeLossFunction() throws -> any TokenLoss {
        let reductionName = metadata["reduction"] ?? "sum"
        guard let reduction = LossReduction(rawValue: reductionName) else {
            throw MTPError.invalidArgument("unknown reduction '\(reductionName)' (expected sum, mean or none)")
        }
        let ignore = try int("ignore_index") ?? -100
        switch metadata["loss_fn"] ?? "MaskedCrossEntropy" {
        case "MaskedCrossEntropy":
            return MaskedCrossEntropy(fp32Upcast: try bool("fp32_upcast") ?? true, ignoreIndex: ignore, reduction: reduction)
        case "ChunkedCrossEntropy":
            return try ChunkedCrossEntropy(chunkLen: try int("chunk_len") ?? 32, ignoreIndex: ignore, reduction: reduction)
        case "FusedLinearCrossEntropy":
            return FusedLinearCrossEntropy(ignoreIndex: ignore, logitSoftcapping: try float("logit_softcapping") ?? 0,
                                           reduction: reduction,
                                           chunkBudgetFloats: try int("chunk_budget_floats") ?? FusedLinearCrossEntropy.defaultChunkBudgetFloats)
        case let other:
            throw MTPError.invalidArgument("unknown loss_fn '\(other)' (expected MaskedCrossEntropy, ChunkedCrossEntropy or FusedLinearCrossEntropy)")
        }
    }

    private func int(_ key: String) throws -> Int? {
        guard let s = metadata[key] else { return nil }
        guard let v = Int(s.trimmingCharacters(in: .whitespaces)) else { throw MTPError.invalidArgument("metadata \(key)='\(s)' is not an integer") }
        return v
    }

    private func float(_ key: String) throws -> Float? {
        guard let s = metadata[key] else { return nil }
        guard let v = Float(s.trimmingCharacters(in: .whitespaces)) else { throw MTPError.invalidArgument("metadata \(key)='\(s)' is not a number") }
        return v
    }

    private func bool(_ key: String) throws -> Bool? {
        guard let s = metadata[key] else { return nil }
        switch s.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw MTPError.invalidArgument("metadata \(key)='\(s)' is not a boolean (true or false)")
        }
    }

    private func require(_ inputs: [String: Tensor], _ name: String) throws -> Tensor {
        guard let t = inputs[name] else { throw MTPError.missingTensor("case has no '\(name)' tensor") }
        return t
    }

    /// `prefix.0`, `prefix.1`, … while present; nil when there is none.
    private func sequence(_ inputs: [String: Tensor], _ prefix: String) -> [Tensor]? {
        var out: [Tensor] = []
        while let t = inputs["\(prefix).\(out.count)"] { out.append(t) }
        return out.isEmpty ? nil : out
    }
}
