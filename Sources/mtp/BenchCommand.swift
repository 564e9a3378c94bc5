import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (release build).",
        subcommands: [BenchLossCommand.self, BenchMatmulCommand.self, BenchGenerateCommand.self, BenchCommCommand.self,
                      BenchTrainCommand.self, BenchAttentionCommand.self])
}
