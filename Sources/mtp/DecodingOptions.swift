import ArgumentParser

/// The options `mtp generate` and `mtp bench generate` share: the checkpoint, the
/// held-out set it came from, and the sampler.
struct DecodingOptions: ParsableArguments {
    @Option(help: "Checkpoint written by `mtp train`.") var checkpoint = "runs/default/checkpoint.safetensors"
    @Option(help: "Documents `mtp train` drew from the built-in corpus (for the held-out split).") var documents = 6000
    @Option(help: "Tokens to generate per prompt.") var maxTokens = 40
    @Option(help: "Sampling temperature (0 = greedy).") var temperature = 0.0
    @Option(help: "Nucleus sampling mass in (0, 1].") var topP = 1.0
    @Option(help: "Sampler seed (in a benchmark, prompt i uses seed + i).") var seed: UInt64 = 0
    @Flag(inversion: .prefixedNo, help: "Draft each step only with the depths that pay (else with all of them).")
    var adaptive = true
}
