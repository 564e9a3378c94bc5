// Which communicator a process gets: the MPI job's when mpirun started it, else the
// group of one, so every code path runs unchanged in a plain process.

/// The process's view of the job it belongs to.
public enum ProcessGroup {
    /// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`).
    public static var isDistributed: Bool {
        #if canImport(CMPI)
        return MPIRuntime.isLaunchedByMPI
        #else
        return false
        #endif
    }

    /// Every rank of the job: the MPI world under an MPI launcher, else a
    /// ``SingleProcessCommunicator``.
    ///
    /// - Throws: ``DistributedError`` when MPI cannot start.
    public static func world() throws -> any Communicator {
        #if canImport(CMPI)
        if MPIRuntime.isLaunchedByMPI { return try MPIRuntime.worldCommunicator() }
        #endif
        return SingleProcessCommunicator()
    }
}
