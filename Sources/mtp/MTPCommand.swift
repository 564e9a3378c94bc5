import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@main
struct MTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mtp",
        abstract: "Multi-Token Prediction: training, generation, loss evaluation and benchmarks.",
        subcommands: [TrainCommand.self, GenerateCommand.self, LossCommand.self, BenchCommand.self])

    static func main() {
        BLASCoreType.selectAndRelaunchIfNeeded()
        main(nil)
    }
}

/// OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and falls back to its
/// generic Prescott kernels, 3–4× slower than the AVX2/AVX-512 ones. It reads
/// `OPENBLAS_CORETYPE` once, when the library loads, so `mtp` sets it from the CPU's
/// flags and re-executes itself before any BLAS call. A value already in the
/// environment is respected; `MTP_KEEP_BLAS_CORETYPE=1` turns the selection off.
enum BLASCoreType {
    static func selectAndRelaunchIfNeeded() {
        #if os(Linux)
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["MTP_KEEP_BLAS_CORETYPE"] == nil,
              let core = coreType(cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "") else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("MTP_KEEP_BLAS_CORETYPE", "1", 1)  // never loop
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure: carry on with OpenBLAS's own choice.
        #endif
    }

    /// The OpenBLAS core for the first CPU's flags: SkylakeX with AVX-512 (F, BW, VL, DQ),
    /// Haswell with AVX2 and FMA, else nil (let OpenBLAS decide).
    static func coreType(cpuinfo: String) -> String? {
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }
}
