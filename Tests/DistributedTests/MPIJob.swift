import Foundation
import XCTest

/// Starts the package's `mtp` binary under `mpirun` on this host only (loopback and
/// shared memory), with a time limit after which the whole job is killed.
enum MPIJob {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
    }

    /// The folder of the built products (the test bundle sits beside `mtp`).
    static var products: URL {
        var url = Bundle.main.bundleURL
        while url.path != "/" && !FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("mtp").path) {
            url.deleteLastPathComponent()
        }
        return url
    }

    static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Skips (with the reason) only when OpenMPI's launcher is not installed; `scripts/test.sh` installs it.
    static func requireMPI() throws {
        guard mpirun != nil else { throw XCTSkip("mpirun is not installed (scripts/ensure-deps.sh installs openmpi-bin)") }
        guard FileManager.default.isExecutableFile(atPath: products.appendingPathComponent("mtp").path) else {
            throw XCTSkip("the mtp binary was not built beside the tests")
        }
    }

    /// The launcher's options: this host only, loopback and shared memory.
    static var launcherOptions: [String] {
        var args = ["--oversubscribe", "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo",
                    "--mca", "btl_tcp_if_include", "lo"]
        if getuid() == 0 { args.append("--allow-run-as-root") }
        return args
    }

    /// The `mtp` binary beside the tests.
    static var mtp: String { products.appendingPathComponent("mtp").path }

    /// Runs `mpirun -np ranks mtp arguments…`, killing the job after `timeout` seconds.
    static func run(ranks: Int, arguments: [String], timeout: TimeInterval, environment: [String: String] = [:]) throws -> Result {
        var args = launcherOptions
        for (k, v) in environment { args += ["-x", "\(k)=\(v)"] }
        return try launch(mpirun!, args + ["-np", String(ranks), mtp] + arguments, timeout: timeout)
    }

    /// Runs `mpirun` with several programs (MPMD: `-np 1 mtp a… : -np 1 mtp b…`), one argument list each.
    static func run(programs: [[String]], timeout: TimeInterval) throws -> Result {
        var args = launcherOptions
        for (i, p) in programs.enumerated() { args += (i > 0 ? [":"] : []) + ["-np", "1", mtp] + p }
        return try launch(mpirun!, args, timeout: timeout)
    }

    /// Runs the `mtp` binary alone (no launcher).
    static func runAlone(_ arguments: [String], timeout: TimeInterval) throws -> Result {
        try launch(mtp, arguments, timeout: timeout)
    }

    /// Runs `executable arguments…` with stdout and stderr captured, killed after `timeout`
    /// seconds; `whileRunning` is called once with the process as soon as it started.
    static func launch(_ executable: String, _ arguments: [String], timeout: TimeInterval,
                       whileRunning: ((Process) -> Void)? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        process.environment = env
        // Files, not pipes: a job that writes much never blocks on a full pipe.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpijob-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outURL = folder.appendingPathComponent("stdout"), errURL = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        whileRunning?(process)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            process.terminate()
            Thread.sleep(forTimeInterval: 2)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Result(status: process.terminationStatus, stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

extension MPIJob {
    /// The process ids whose parent is `pid` (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid
        }
    }
}
