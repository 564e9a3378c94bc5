// Runs that start from, or end as, Hugging Face models: the options of a run initialised
// from a pretrained directory (`mtp train --init-from`), and loading a model for decoding
// from either of our checkpoints or a Hugging Face directory (`mtp generate --checkpoint`).
// The run's tokenizer is recorded and read in TrainingOptions+Tokenizer.swift.

import Data
import Foundation
import Model

extension TrainingOptions {
    /// A run that fine-tunes the Hugging Face model in `directory`.
    ///
    /// The model's sizes and constants come from the directory's `config.json`; its MTP
    /// depths from the directory or, when it has none and `depths` is positive, fresh ones
    /// (``Model/CausalLM/initializeFreshDepths()``). The directory's `tokenizer.json`, when
    /// present, is the run's tokenizer unless `tokenizer` names another.
    ///
    /// - Parameters:
    ///   - directory: the Hugging Face model directory.
    ///   - depths: MTP depths wanted; nil keeps the directory's.
    ///   - mtpLossScalingFactor: σ of the MTP loss.
    ///   - freezeTrunk: train the MTP depths alone.
    ///   - tokenizer: a `tokenizer.json` overriding the directory's.
    /// - Returns: the loaded model and the run's options (other settings at their defaults).
    /// - Throws: ``Model/ModelError`` for an unsupported or unreadable directory.
    public static func pretrained(from directory: URL, depths: Int?, mtpLossScalingFactor: Float = 0.3,
                                  freezeTrunk: Bool = false, tokenizer: URL? = nil) throws
        -> (model: CausalLM, options: TrainingOptions) {
        let model = try CausalLM.load(huggingFace: directory, depths: depths, mtpLossScalingFactor: mtpLossScalingFactor)
        var options = TrainingOptions(model: model.config)
        options.initFrom = directory.path
        options.freezeTrunk = freezeTrunk ? true : nil
        let bundled = directory.appendingPathComponent(HuggingFaceDirectory.tokenizerFile)
        options.tokenizer = (tokenizer ?? (FileManager.default.fileExists(atPath: bundled.path) ? bundled : nil))?
            .standardizedFileURL.path
        return (model, options)
    }
}

extension Trainer {
    /// The model of an `mtp train` checkpoint file or of a Hugging Face model directory, with
    /// the options of the run that made it (for a Hugging Face directory: the model's
    /// configuration, no data source, and its `tokenizer.json` when present).
    ///
    /// - Parameter url: a checkpoint file, or a Hugging Face model directory (any directory is read as one).
    /// - Returns: the model, the options, and whether `url` was a Hugging Face directory.
    /// - Throws: what ``loadModel(checkpoint:)`` or ``Model/CausalLM/load(huggingFace:depths:mtpLossScalingFactor:)`` throw.
    public static func loadModel(checkpointOrDirectory url: URL) throws
        -> (model: CausalLM, options: TrainingOptions, isHuggingFace: Bool) {
        guard HuggingFaceDirectory.isModelDirectory(url) else {
            let (model, options) = try loadModel(checkpoint: url)
            return (model, options, false)
        }
        let (model, options) = try TrainingOptions.pretrained(from: url, depths: nil)
        return (model, options, true)
    }
}
