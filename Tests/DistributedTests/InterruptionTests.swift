// SIGINT to `mpirun`: the launcher forwards it (as SIGTERM) to every rank; the ranks agree
// after each step (all-reduce MAX of their stop flags), stop at the same step, rank 0 saves
// the checkpoint, and no rank aborts the job. The checkpoint then resumes in one process.

import Foundation
import XCTest

final class InterruptionTests: XCTestCase {
    func testSIGINTStopsEveryRankAtTheSameStepWithACheckpoint() throws {
        try MPIJob.requireMPI()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpi-sigint-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let flags = ["--layers", "1", "--hidden", "8", "--heads", "2", "--intermediate", "16", "--depths", "1",
                     "--documents", "40", "--batch-size", "2", "--seq-len", "8", "--eval-every", "100000", "--steps", "100000",
                     "--save-every", "0"]
        let r = try MPIJob.launch(MPIJob.mpirun!, MPIJob.launcherOptions + ["-np", "2", MPIJob.mtp, "train", "--data-parallel", "2"]
                                  + flags + ["--out", folder.path], timeout: 120) { process in
            // Past the start-up (data, floors, signal handlers) and into the steps, then interrupt the launcher.
            Thread.sleep(forTimeInterval: 8)
            kill(process.processIdentifier, SIGINT)
        }
        XCTAssertFalse(r.stderr.contains("MPI_ABORT"), r.output)
        XCTAssertTrue(r.stderr.contains("resume with: mtp train --resume"), r.output)
        let stopped = r.stderr.components(separatedBy: "stopped at step ").dropFirst().first?.split(separator: " ").first
        let step = try XCTUnwrap(stopped.flatMap { Int($0) }, r.output)
        let resumed = try MPIJob.runAlone(["train", "--resume", folder.appendingPathComponent("checkpoint.safetensors").path,
                                           "--steps", "\(step + 2)"], timeout: 120)
        XCTAssertEqual(resumed.status, 0, resumed.output)
    }
}
