import ArgumentParser
import Foundation
import Model
import Tensors
import Training

/// `mtp export CHECKPOINT --hf DIR`: a checkpoint as a Hugging Face model directory.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a checkpoint as a Hugging Face directory (LlamaForCausalLM trunk, DeepSeek-V3 MTP layers).",
        discussion: """
        Writes config.json (a LlamaForCausalLM config with rms_norm_eps, rope_theta, key/value heads and \
        tying, plus num_nextn_predict_layers = D), generation_config.json, model.safetensors (metadata \
        format pt, the weights alone, no optimizer state) and, when the run had one, tokenizer.json. The \
        MTP depths are the layers model.layers.{L+k} in the Hugging Face DeepSeek-V3 layout (enorm, \
        hnorm, eh_proj, the block, shared_head.norm, and copies of embed_tokens and shared_head.head); \
        LlamaForCausalLM leaves them aside when it loads the directory.

        Nothing is overwritten: DIR must not exist (missing parent folders are created) or be an \
        empty directory, so it can never be the input. The files are written into a hidden \
        folder beside DIR and renamed into place at the end; a failed export leaves nothing behind.
        """)

    @Argument(help: "A checkpoint written by `mtp train` (or a Hugging Face directory to rewrite elsewhere).") var checkpoint: String
    @Option(help: ArgumentHelp("The output directory: a new path or an empty directory.", valueName: "dir")) var hf: String
    @Option(help: "Weight dtype: f32, f16 or bf16.") var dtype = "f32"

    func run() throws {
        try reportingErrors {
            let types: [String: DType] = ["f32": .float32, "f16": .float16, "bf16": .bfloat16]
            guard let type = types[dtype] else { throw ValidationError("--dtype must be f32, f16 or bf16, got '\(dtype)'") }
            guard !hf.isEmpty else { throw ValidationError("--hf must name the output directory, got ''") }
            if sameFile(hf, checkpoint) {
                throw ValidationError("--hf \(hf) is the input \(checkpoint) itself; the export writes a new directory")
            }
            // Checked before the model is loaded, and again by the export itself.
            do { _ = try HuggingFaceDirectory.exportTarget(URL(fileURLWithPath: hf)) } catch let error as ModelError {
                throw ValidationError("--hf \(error.message)")
            }
            let (model, options, _) = try Trainer.loadModel(checkpointOrDirectory: URL(fileURLWithPath: checkpoint))
            // The tokenizer is read (its checksum checked, a JSON object) before it is copied beside the
            // weights; it is not parsed: a pretrained model's own tokenizer may be of a kind only its library reads.
            _ = try options.tokenizerFileBytes()
            let tokenizer = options.tokenizer.map { URL(fileURLWithPath: $0) }
            // A signal during the export is held until the files are in place or cleaned up, so an
            // interrupted export leaves the complete directory or nothing (a second signal quits at once).
            let stop = StopRequest()
            stop.handleTerminationSignals { signal in
                FileHandle.standardError.write(Data("\n\(signal == SIGINT ? "SIGINT" : "SIGTERM"): finishing the export, then exiting (send it again to quit at once)\n".utf8))
            }
            let files = try model.exportHuggingFace(to: URL(fileURLWithPath: hf),
                                                    options: HuggingFaceExportOptions(dtype: type, tokenizer: tokenizer))
            for file in files { print(file.path) }
            if let signal = stop.signal { throw ExitCode(128 + signal) }
        }
    }
}
