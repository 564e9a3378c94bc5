// How this process sets up its BLAS: which OpenBLAS kernels (core type) suit the CPU,
// re-executing an executable so OpenBLAS loads with them, the kernel actually in use,
// and the size of OpenBLAS's thread pool. The one place that knows these knobs, for the
// library, the CLI and the tests alike.
//
// Why a relaunch: OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and falls
// back to its generic Prescott kernels, 3–4× slower than the AVX2/AVX-512 ones. It reads
// `OPENBLAS_CORETYPE` once, when the library loads (before `main`), so the only way to
// choose the kernels from inside a process is to set the variable and exec again.
//
// The OpenBLAS-only entry points are looked up with dlsym, so nothing here fails to link
// against another BLAS (Accelerate): they then report nil / false.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BLAS {
    /// The environment variable OpenBLAS reads, when it loads, to force a kernel family.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// Set (to any value) to keep OpenBLAS's own kernel choice in ``relaunchWithPreferredCoreTypeIfNeeded()``.
    public static let keepCoreTypeVariable = "MTP_KEEP_BLAS_CORETYPE"

    // MARK: Core type

    /// The OpenBLAS core type for a CPU, from the text of `/proc/cpuinfo`.
    ///
    /// Only the first `flags` line is read (all cores of a host are alike).
    /// - Parameter cpuinfo: the contents of `/proc/cpuinfo` (or just its `flags` line).
    /// - Returns: `"SkylakeX"` with AVX-512 (F, BW, VL and DQ), `"Haswell"` with AVX2 and
    ///   FMA, else nil (let OpenBLAS decide).
    ///
    /// Edge cases: no `flags` line, or an empty string, gives nil.
    public static func preferredCoreType(cpuinfo: String) -> String? {
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// The OpenBLAS core type for this machine's CPU; nil where `/proc/cpuinfo` is
    /// unreadable (not Linux) or the CPU has neither AVX2 + FMA nor AVX-512.
    public static func preferredCoreType() -> String? {
        #if os(Linux)
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        return preferredCoreType(cpuinfo: cpuinfo)
        #else
        return nil
        #endif
    }

    /// Re-executes the running program with ``coreTypeVariable`` set to ``preferredCoreType()``,
    /// so OpenBLAS loads its fast kernels. Call it first thing in an executable's `main`,
    /// before any BLAS call; it returns only when nothing needs doing or the exec failed.
    ///
    /// Does nothing when ``coreTypeVariable`` is already set (the user's choice wins), when
    /// ``keepCoreTypeVariable`` is set (which it also sets before the exec, so it never
    /// loops), when there is no preferred core type, or off Linux.
    public static func relaunchWithPreferredCoreTypeIfNeeded() {
        #if os(Linux)
        let env = ProcessInfo.processInfo.environment
        guard env[coreTypeVariable] == nil, env[keepCoreTypeVariable] == nil, let core = preferredCoreType() else { return }
        setenv(coreTypeVariable, core, 1)
        setenv(keepCoreTypeVariable, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure: carry on with OpenBLAS's own choice.
        #endif
    }

    /// The name of the kernel family OpenBLAS runs (`openblas_get_corename`, e.g. `"Haswell"`,
    /// `"SkylakeX"`, `"Prescott"`), or nil when the BLAS is not OpenBLAS.
    public static var coreName: String? {
        guard let symbol = openBLASSymbol("openblas_get_corename") else { return nil }
        let getName = unsafeBitCast(symbol, to: (@convention(c) () -> UnsafePointer<CChar>?).self)
        guard let name = getName() else { return nil }
        return String(cString: name).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// One line saying which kernels this process runs and, when they are not the preferred
    /// ones for the CPU, why and how to get them (for logs and test output).
    public static func kernelReport() -> String {
        guard let core = coreName else { return "BLAS: not OpenBLAS (no openblas_get_corename); kernel choice is the library's" }
        let preferred = preferredCoreType()
        let forced = ProcessInfo.processInfo.environment[coreTypeVariable]
        guard let preferred, core.lowercased() != preferred.lowercased() else {
            let how = forced.map { "\(coreTypeVariable)=\($0)" } ?? "OpenBLAS's own choice"
            return "BLAS: OpenBLAS core \(core) (\(how))" + (preferred == nil ? "" : ", the preferred one for this CPU")
        }
        if let forced {
            return "BLAS: OpenBLAS core \(core), not the preferred \(preferred): \(coreTypeVariable)=\(forced) asked for it"
        }
        return "BLAS: OpenBLAS core \(core), not the preferred \(preferred) for this CPU: \(coreTypeVariable) is read "
            + "when the library loads, so start the process with \(coreTypeVariable)=\(preferred) (scripts/test.sh does)"
    }

    // MARK: Threads

    /// Sets the size of OpenBLAS's thread pool (`openblas_set_num_threads`).
    ///
    /// - Parameter count: threads, at least 1 (smaller values are raised to 1).
    /// - Returns: false when the BLAS is not OpenBLAS (nothing changed).
    @discardableResult
    public static func setThreads(_ count: Int) -> Bool {
        guard let symbol = openBLASSymbol("openblas_set_num_threads") else { return false }
        let set = unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Void).self)
        set(Int32(Swift.max(1, count)))
        return true
    }

    /// The size of OpenBLAS's thread pool, or nil when the BLAS is not OpenBLAS.
    public static var threads: Int? {
        guard let symbol = openBLASSymbol("openblas_get_num_threads") else { return nil }
        return Int(unsafeBitCast(symbol, to: (@convention(c) () -> Int32).self)())
    }

    /// BLAS threads each of `callers` concurrent callers gets when they share `cores`:
    /// `cores / callers`, at least 1.
    ///
    /// OpenBLAS has one thread pool per process: P threads calling a multi-threaded pool at
    /// once contend for it (2 pipeline stages, 8 microbatches on 2 cores ran 7× slower).
    public static func threadsPerCaller(callers: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        Swift.max(1, cores / Swift.max(1, callers))
    }

    /// Gives each of `callers` concurrent callers (pipeline stages, ranks on one host) its
    /// share of the cores: the blocks ``BLAS/sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:engine:)``
    /// splits a product into (``Split/maximumWays``), or, where OpenBLAS keeps its own pool
    /// (``Split/enabled`` false), that pool's threads. An `OPENBLAS_NUM_THREADS` in the
    /// environment wins, and one caller keeps all the cores.
    /// - Returns: the threads set, or nil when nothing was changed.
    @discardableResult
    public static func shareThreads(among callers: Int) -> Int? {
        guard callers > 1, ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil else { return nil }
        let n = threadsPerCaller(callers: callers)
        if Split.enabled {
            Split.maximumWays = n
            return n
        }
        return setThreads(n) ? n : nil
    }

    /// A symbol of the process's BLAS, looked up at run time (nil when absent).
    private static func openBLASSymbol(_ name: String) -> UnsafeMutableRawPointer? {
        #if os(Linux)
        guard let process = dlopen(nil, RTLD_NOW) else { return nil }
        return dlsym(process, name)
        #else
        // Accelerate has no OpenBLAS entry points; dlsym(RTLD_DEFAULT) would find a
        // separately loaded OpenBLAS that this module does not call.
        return nil
        #endif
    }
}
