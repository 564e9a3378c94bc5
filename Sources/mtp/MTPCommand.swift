import ArgumentParser
import Foundation
import Tensors

@main
struct MTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mtp",
        abstract: "Multi-Token Prediction: training, generation, loss evaluation and benchmarks.",
        subcommands: [TrainCommand.self, GenerateCommand.self, ExportCommand.self, LossCommand.self, BenchCommand.self])

    static func main() {
        // Before any BLAS call: OpenBLAS picks its kernels when it loads (see BLAS+Configuration).
        BLAS.relaunchWithPreferredCoreTypeIfNeeded()
        runReportingErrors(Array(CommandLine.arguments.dropFirst()))
    }
}
