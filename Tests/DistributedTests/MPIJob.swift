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

    /// Runs `mpirun -np ranks mtp arguments…`, killing the job after `timeout` seconds.
    static func run(ranks: Int, arguments: [String], timeout: TimeInterval, environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun!)
        var args = ["-np", String(ranks), "--oversubscribe",
                    "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo", "--mca", "btl_tcp_if_include", "lo"]
        if getuid() == 0 { args.append("--allow-run-as-root") }
        for (k, v) in environment { args += ["-x", "\(k)=\(v)"] }
        process.arguments = args + [products.appendingPathComponent("mtp").path] + arguments
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
