// Which library computes BLAS.sgemm's products: the process's CBLAS (OpenBLAS on Linux,
// Accelerate on Apple), or oneDNN's `dnnl_sgemm`, loaded at run time from `libdnnl.so.2`
// (Debian's `libdnnl2`) where it is installed.
//
// Why oneDNN: its JIT-generated f32 GEMM kernels (AVX-512 and AVX2, chosen by the library
// for the CPU it runs on) are faster than OpenBLAS 0.3.21's on the shapes of a training
// step on AVX-512, most of all on the small ones (README, "GEMM engine"). It is loaded with
// dlopen, so the package builds and runs with OpenBLAS alone (its tests expect oneDNN on
// Linux: scripts/test.sh installs it), and one variable picks either.
//
// Threads: Debian builds oneDNN on OpenMP. Each call here runs on the calling thread (its
// OpenMP thread count set to one first), and BLAS.sgemm always splits a oneDNN product over
// our own threads: an OpenMP pool would spin between products on the same cores as the
// step's other parallel work, as OpenBLAS's pool did. Loading libgomp pins the loading
// thread to one CPU when OMP_PROC_BIND, OMP_PLACES or GOMP_CPU_AFFINITY are set (and every
// thread it starts later inherits that), so the load gives the thread its affinity back.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BLAS {
    /// A library that computes ``BLAS/sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:engine:)``'s products.
    public enum Engine: String, Sendable, CaseIterable, CustomStringConvertible {
        /// `cblas_sgemm` of the BLAS the package links: OpenBLAS on Linux, Accelerate on Apple.
        case openBLAS = "openblas"
        /// oneDNN's `dnnl_sgemm`, loaded at run time (Linux; Debian `libdnnl2`).
        case oneDNN = "onednn"

        public var description: String { rawValue }

        /// Whether this process can use the engine (oneDNN: the library loaded).
        public var isAvailable: Bool { self == .openBLAS || OneDNN.loaded != nil }
    }

    /// The environment variable that picks the engine: `openblas` or `onednn`.
    public static let engineVariable = "MTP_GEMM"

    /// A GEMM engine asked for that this process cannot use.
    public struct EngineError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The engine `environment` asks for with ``engineVariable``; nil when unset or empty.
    ///
    /// - Throws: ``EngineError`` naming the value when it is neither `openblas` nor `onednn`
    ///   (any case), or when it is `onednn` and oneDNN could not be loaded (with dlopen's reason).
    public static func requestedEngine(in environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Engine? {
        guard let raw = environment[engineVariable]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else {
            return nil
        }
        guard let engine = Engine(rawValue: raw.lowercased()) else {
            throw EngineError(description: "\(engineVariable)=\(raw): unknown GEMM engine (use openblas or onednn)")
        }
        if engine == .oneDNN, OneDNN.loaded == nil {
            throw EngineError(description: "\(engineVariable)=\(raw), but oneDNN could not be loaded: \(OneDNN.loadFailure) "
                + "(install Debian's libdnnl2, or set \(engineVariable)=openblas)")
        }
        return engine
    }

    /// The engine products go to by default, decided once, at first use:
    /// - ``engineVariable`` when it names an engine this process can use;
    /// - else OpenBLAS when `OPENBLAS_NUM_THREADS` or `MTP_BLAS_SPLIT=0` asks for OpenBLAS's own
    ///   thread pool (see ``BLAS``);
    /// - else oneDNN when it loads, else OpenBLAS.
    ///
    /// An unusable ``engineVariable`` is ignored here; the `mtp` tool refuses it up front with
    /// ``requestedEngine(in:)``'s error.
    public static let engine: Engine = defaultEngine(in: ProcessInfo.processInfo.environment,
                                                     oneDNNLoads: { OneDNN.loaded != nil })

    /// ``engine``'s rule for an environment, given whether oneDNN loads (asked only when it matters).
    static func defaultEngine(in environment: [String: String], oneDNNLoads: () -> Bool) -> Engine {
        if let raw = environment[engineVariable]?.trimmingCharacters(in: .whitespacesAndNewlines).lowercased(),
           let requested = Engine(rawValue: raw), requested == .openBLAS || oneDNNLoads() {
            return requested
        }
        if environment["OPENBLAS_NUM_THREADS"] != nil || environment["MTP_BLAS_SPLIT"] == "0" { return .openBLAS }
        return oneDNNLoads() ? .oneDNN : .openBLAS
    }

    /// The default engine in a few words: `onednn 2.6.3`, `openblas SkylakeX` (OpenBLAS and its
    /// kernel family), or `accelerate`.
    public static var engineName: String {
        switch engine {
        case .oneDNN:
            return "onednn \(OneDNN.loaded?.version ?? "")"
        case .openBLAS:
            #if canImport(Accelerate)
            return "accelerate"
            #else
            return coreName.map { "openblas \($0)" } ?? "openblas"
            #endif
        }
    }

    /// One line naming the default engine and its version (for logs, benchmarks and test output).
    public static func engineReport() -> String {
        switch engine {
        case .oneDNN:
            return "GEMM: oneDNN \(OneDNN.loaded?.version ?? "?") (dnnl_sgemm)"
        case .openBLAS:
            let name = coreName.map { "OpenBLAS (core \($0))" } ?? "the platform BLAS"
            return "GEMM: \(name)" + (OneDNN.loaded == nil ? "; oneDNN not loaded: \(OneDNN.loadFailure)" : "")
        }
    }
}

/// oneDNN's `dnnl_sgemm` and the OpenMP call that keeps it on the calling thread.
struct OneDNN: Sendable {
    typealias SGEMM = @convention(c) (CChar, CChar, Int64, Int64, Int64, Float, UnsafePointer<Float>?, Int64,
                                      UnsafePointer<Float>?, Int64, Float, UnsafeMutablePointer<Float>?, Int64) -> Int32
    typealias SetThreads = @convention(c) (Int32) -> Void

    let sgemm: SGEMM
    let setThreads: SetThreads?
    /// `major.minor.patch`.
    let version: String

    /// The library, or nil when it is absent or unusable (``loadFailure`` says why).
    static let loaded: OneDNN? = { if case .success(let library) = attempt { return library } else { return nil } }()

    /// Why ``loaded`` is nil (empty when it loaded).
    static var loadFailure: String { if case .failure(let reason) = attempt { return reason.description } else { return "" } }

    private struct Failure: Error, CustomStringConvertible { let description: String }

    private static let attempt: Result<OneDNN, Failure> = {
        #if os(Linux)
        let name = "libdnnl.so.2"
        guard let handle = keepingAffinity({ dlopen(name, RTLD_NOW | RTLD_LOCAL) }) else {
            return .failure(Failure(description: dlerror().map { String(cString: $0) } ?? "\(name) not found"))
        }
        guard let gemm = dlsym(handle, "dnnl_sgemm"), let versionSymbol = dlsym(handle, "dnnl_version") else {
            return .failure(Failure(description: "\(name) has no dnnl_sgemm or dnnl_version"))
        }
        // dnnl_version_t: int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime.
        typealias Version = @convention(c) () -> UnsafeRawPointer?
        guard let info = unsafeBitCast(versionSymbol, to: Version.self)() else {
            return .failure(Failure(description: "dnnl_version returned nothing"))
        }
        let numbers = info.assumingMemoryBound(to: Int32.self)
        let version = "\(numbers[0]).\(numbers[1]).\(numbers[2])"
        // hash sits at offset 16 (three ints, padded to the pointer's alignment: 64-bit Linux,
        // the only platform this branch builds for), cpu_runtime after it.
        let cpuRuntime = info.load(fromByteOffset: 16 + MemoryLayout<UnsafeRawPointer>.size, as: UInt32.self)
        // DNNL_RUNTIME_SEQ = 1 (nothing to set), DNNL_RUNTIME_OMP = 2 (one OpenMP thread per call).
        var setThreads: SetThreads?
        switch cpuRuntime {
        case 1:
            break
        case 2:
            // Looked up through oneDNN's handle: its own OpenMP runtime, whichever that is.
            guard let symbol = dlsym(handle, "omp_set_num_threads") else {
                return .failure(Failure(description: "oneDNN \(version) runs on OpenMP, but omp_set_num_threads was not found"))
            }
            setThreads = unsafeBitCast(symbol, to: SetThreads.self)
        default:
            return .failure(Failure(description: "oneDNN \(version) has CPU runtime \(cpuRuntime), neither sequential nor OpenMP"))
        }
        return .success(OneDNN(sgemm: unsafeBitCast(gemm, to: SGEMM.self), setThreads: setThreads, version: version))
        #else
        return .failure(Failure(description: "oneDNN is loaded on Linux only"))
        #endif
    }()

    /// `C = alpha · op(A) · op(B) + beta · C` (row-major, as ``BLAS/sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:engine:)``)
    /// on the calling thread alone.
    /// - Returns: false when oneDNN refused the arguments (C is then untouched).
    func product(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        setThreads?(1)
        let t: CChar = 0x54, n0: CChar = 0x4E  // "T", "N"
        return sgemm(transA ? t : n0, transB ? t : n0, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda),
                     b, Int64(ldb), beta, c, Int64(ldc)) == 0
    }
}

#if os(Linux)
/// `body`'s result, with the calling thread's CPU affinity as it was before `body` ran
/// (sched_getaffinity / sched_setaffinity, looked up at run time: Glibc does not export them
/// to Swift). Does nothing more when they are absent or fail.
private func keepingAffinity<T>(_ body: () -> T) -> T {
    typealias Affinity = @convention(c) (Int32, Int, UnsafeMutableRawPointer?) -> Int32
    guard let libc = dlopen(nil, RTLD_NOW), let get = dlsym(libc, "sched_getaffinity"),
          let set = dlsym(libc, "sched_setaffinity") else { return body() }
    let bytes = 1024  // room for 8,192 CPUs
    let mask = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
    defer { mask.deallocate() }
    let saved = unsafeBitCast(get, to: Affinity.self)(0, bytes, mask) == 0
    let result = body()
    if saved { _ = unsafeBitCast(set, to: Affinity.self)(0, bytes, mask) }
    return result
}
#endif
