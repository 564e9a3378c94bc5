import ArgumentParser
import Distributed
import Foundation
import LossCases
import MTP
import Tensors

/// `mtp loss CASE.safetensors [--grads OUT.safetensors]` (SPEC §6).
struct LossCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loss",
        abstract: "Evaluate one MTP/CE loss call described by a safetensors case file.",
        discussion: """
        Prints one JSON object: {"loss": x} (the sum of the rows for reduction none, whose rows \
        follow as "loss_rows"), plus "per_depth" when return_per_depth is true. With --grads, \
        writes Float32 grad.<name> for every floating input that received a gradient. \
        On invalid input: nothing on stdout, "error: …" on stderr, exit code 1.
        """)

    @Argument(help: "The case file (.safetensors).")
    var caseFile: String

    @Option(name: .long, help: "Write the gradients to this safetensors file.")
    var grads: String?

    @Option(name: .long, help: .hidden)
    var tensorParallel: Int = 1

    func run() throws {
        // Under mpirun every rank needs --tensor-parallel: without it each would run the whole case.
        let launchedRanks = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] ?? "") ?? 1
        if tensorParallel != 1 || (ProcessGroup.isDistributed && launchedRanks > 1) { return try runVocabularyParallel() }
        try reportingErrors {
            if grads?.isEmpty == true { throw ValidationError("--grads needs a file path, got an empty string") }
            if caseFile.isEmpty { throw ValidationError("the case file path is empty") }
            if let grads, sameFile(grads, caseFile) {
                throw ValidationError("--grads \(grads) is the case file itself; writing the gradients would overwrite the input")
            }
            let lossCase = try LossCase(contentsOf: URL(fileURLWithPath: caseFile))
            let result = try lossCase.evaluate()
            // Printed only after a successful evaluation: an error stays the one stderr line.
            for warning in lossCase.warnings() { FileHandle.standardError.write(Data("warning: \(printable(warning))\n".utf8)) }
            if let grads {
                var named: [String: Tensor] = [:]
                for (name, g) in result.gradients { named["grad.\(name)"] = g }
                try SafeTensors.write(named, to: URL(fileURLWithPath: grads))
            }
            let rows = result.loss.floats
            var object: [String: Any] = ["loss": JSONOutput.number(rows.reduce(0) { $0 + Double($1) })]
            if result.loss.rank > 0 { object["loss_rows"] = JSONOutput.numbers(rows) }
            if let perDepth = result.perDepth { object["per_depth"] = JSONOutput.numbers(perDepth) }
            try JSONOutput.print(object)
        }
    }
}

/// Whether two paths name one file: the same resolved path, or the same device and inode
/// (a hard link, a second spelling through a symlinked folder).
func sameFile(_ a: String, _ b: String) -> Bool {
    let ua = URL(fileURLWithPath: a).resolvingSymlinksInPath().standardizedFileURL
    let ub = URL(fileURLWithPath: b).resolvingSymlinksInPath().standardizedFileURL
    if ua.path == ub.path { return true }
    var sa = stat(), sb = stat()
    guard stat(ua.path, &sa) == 0, stat(ub.path, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}
