import ArgumentParser

@main
struct MTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mtp",
        abstract: "Multi-Token Prediction: loss, benchmarks and training.",
        subcommands: [LossCommand.self, BenchCommand.self])
}
