// Reading a CausalLM back from a checkpoint: the model's sizes come from the
// `model_config` metadata, its weights from the tensors of the same name.

import Foundation
import Tensors

extension CausalLM {
    /// The `format` metadata value of the checkpoints `mtp train` writes.
    public static let checkpointFormat = "mtp-swift-checkpoint"

    /// The model stored in a checkpoint, and the checkpoint's metadata (the run that wrote
    /// it may record more there: options, step, history).
    ///
    /// - Parameter url: a safetensors file written by `mtp train`.
    /// - Returns: the model with the stored weights, and the file's `__metadata__`.
    /// - Throws: ``ModelError`` when the file is not an mtp checkpoint or its model
    ///   configuration is unreadable; a SafeTensors or ``Tensors/TensorError`` when the
    ///   file is unreadable or its tensors do not fit the model.
    public static func load(checkpoint url: URL) throws -> (model: CausalLM, metadata: [String: String]) {
        let (tensors, metadata) = try SafeTensors.read(contentsOf: url)
        guard metadata["format"] == checkpointFormat, let json = metadata["model_config"] else {
            throw ModelError("\(url.path) is not an mtp checkpoint (missing format/model_config metadata)")
        }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
        } catch {
            throw ModelError("\(url.path): unreadable model_config metadata (\(error))")
        }
        try verifyPayload(tensors, metadata: metadata, source: url.path)
        try config.checkMatches(tensors, source: url.path)
        let model = try CausalLM(config: config, seed: 0)
        try model.loadParameters(tensors)
        return (model, metadata)
    }
}
