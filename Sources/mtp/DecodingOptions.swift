import ArgumentParser
import Foundation

/// The options `mtp generate` and `mtp bench generate` share: the checkpoint, the
/// held-out set it came from, and the sampler.
struct DecodingOptions: ParsableArguments {
    @Option(help: "Checkpoint written by `mtp train` (default: the newest of runs/default and runs/default-N, where `mtp train` writes without --out).")
    var checkpoint: String?
    @Option(help: "Documents `mtp train` drew from the built-in corpus (for the held-out split).") var documents = 6000
    @Option(help: "Tokens to generate per prompt.") var maxTokens = 40
    @Option(help: "Sampling temperature (0 = greedy).") var temperature = 0.0
    @Option(help: "Nucleus sampling mass in (0, 1].") var topP = 1.0
    @Option(help: "Sampler seed (in a benchmark, prompt i uses seed + i).") var seed: UInt64 = 0
    @Flag(inversion: .prefixedNo, help: "Draft each step only with the depths that pay (else with all of them).")
    var adaptive = true
}

extension DecodingOptions {
    /// `--checkpoint`, or the newest checkpoint (by modification time) of the folders
    /// `mtp train` writes without --out: runs/default, runs/default-2, … A run other than
    /// runs/default is announced on stderr.
    var checkpointPath: String {
        if let checkpoint { return checkpoint }
        let fallback = "runs/default/checkpoint.safetensors"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "runs") else { return fallback }
        var newest: (path: String, date: Date)? = nil
        for name in names where name == "default" || (name.hasPrefix("default-") && Int(name.dropFirst(8)) != nil) {
            let path = "runs/\(name)/checkpoint.safetensors"
            guard let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { continue }
            if newest.map({ date > $0.date }) ?? true { newest = (path, date) }
        }
        guard let newest else { return fallback }
        if newest.path != fallback {
            FileHandle.standardError.write(Data("checkpoint: \(newest.path) (the newest run under runs/)\n".utf8))
        }
        return newest.path
    }
}
