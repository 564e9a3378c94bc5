// The Communicator over OpenMPI. MPI is started once per process (thread level
// MPI_THREAD_MULTIPLE, since pipeline stages call it from their own threads) and
// finalised at exit; errors return codes (MPI_ERRORS_RETURN) that become thrown
// DistributedErrors naming the call, instead of MPI's default of aborting the job.

#if canImport(CMPI)
import CMPI
import Foundation

/// The MPI runtime of this process.
public enum MPIRuntime {
    /// Whether this process was started by `mpirun`/`mpiexec` (OpenMPI or PMIx sets these).
    public static var isLaunchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    nonisolated(unsafe) private static var world: MPICommunicator?
    private static let lock = NSLock()

    /// The communicator of every rank of the job, starting MPI on first use.
    ///
    /// - Throws: ``DistributedError`` when MPI cannot start or lacks thread support.
    public static func worldCommunicator() throws -> MPICommunicator {
        lock.lock()
        defer { lock.unlock() }
        if let world { return world }
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, mtp_mpi_thread_multiple(), &provided), "MPI_Init_thread")
        guard provided >= mtp_mpi_thread_multiple() else {
            throw DistributedError("this MPI library does not provide MPI_THREAD_MULTIPLE (level \(provided))")
        }
        try check(MPI_Comm_set_errhandler(mtp_mpi_comm_world(), mtp_mpi_errors_return()), "MPI_Comm_set_errhandler")
        atexit { MPIRuntime.finalize() }
        let made = try MPICommunicator(handle: mtp_mpi_comm_world())
        world = made
        return made
    }

    /// Ends MPI if it was started and not yet ended (called at exit).
    static func finalize() {
        var started: Int32 = 0, finished: Int32 = 0
        MPI_Initialized(&started)
        MPI_Finalized(&finished)
        if started != 0 && finished == 0 { MPI_Finalize() }
    }

    /// Throws a ``DistributedError`` naming `call` and MPI's own text unless `code` is MPI_SUCCESS.
    static func check(_ code: Int32, _ call: String) throws {
        guard code != mtp_mpi_success() else { return }
        var text = [CChar](repeating: 0, count: Int(mtp_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        let message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw DistributedError("\(call) failed: \(message) (code \(code))")
    }
}

/// A ``Communicator`` over an MPI communicator handle.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    let handle: MPI_Comm
    public let rank: Int
    public let size: Int

    init(handle: MPI_Comm) throws {
        self.handle = handle
        var r: Int32 = 0, n: Int32 = 0
        try MPIRuntime.check(MPI_Comm_rank(handle, &r), "MPI_Comm_rank")
        try MPIRuntime.check(MPI_Comm_size(handle, &n), "MPI_Comm_size")
        rank = Int(r)
        size = Int(n)
    }

    public func split(color: Int, key: Int) throws -> any Communicator {
        guard color >= 0, color <= Int(Int32.max), key >= Int(Int32.min), key <= Int(Int32.max) else {
            throw DistributedError("split colour must be in 0...\(Int32.max) and key an Int32, got \(color), \(key)")
        }
        var sub: MPI_Comm? = mtp_mpi_comm_null()
        try MPIRuntime.check(MPI_Comm_split(handle, Int32(color), Int32(key), &sub), "MPI_Comm_split")
        guard let made = sub else { throw DistributedError("MPI_Comm_split gave no communicator for colour \(color)") }
        try MPIRuntime.check(MPI_Comm_set_errhandler(made, mtp_mpi_errors_return()), "MPI_Comm_set_errhandler")
        return try MPICommunicator(handle: made)
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try MPIRuntime.check(MPI_Allreduce(mtp_mpi_in_place(), base, try count(buffer.count), mtp_mpi_float(),
                                           Self.op(operation), handle), "MPI_Allreduce")
    }

    public func allGather(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws {
        guard output.count == input.count * size else {
            throw DistributedError("all-gather output has \(output.count) elements, expected \(input.count) × \(size) ranks")
        }
        guard input.count > 0, let source = input.baseAddress, let target = output.baseAddress else { return }
        try MPIRuntime.check(MPI_Allgather(source, try count(input.count), mtp_mpi_float(),
                                           target, try count(input.count), mtp_mpi_float(), handle), "MPI_Allgather")
    }

    public func reduceScatter(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>,
                              _ operation: ReduceOperation) throws {
        guard input.count == output.count * size else {
            throw DistributedError("reduce-scatter input has \(input.count) elements, expected \(output.count) × \(size) ranks")
        }
        guard output.count > 0, let source = input.baseAddress, let target = output.baseAddress else { return }
        try MPIRuntime.check(MPI_Reduce_scatter_block(source, target, try count(output.count), mtp_mpi_float(),
                                                      Self.op(operation), handle), "MPI_Reduce_scatter_block")
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        try checkRank(root, "broadcast root")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try MPIRuntime.check(MPI_Bcast(base, try count(buffer.count), mtp_mpi_float(), Int32(root), handle), "MPI_Bcast")
    }

    public func broadcast(bytes: inout [UInt8], root: Int) throws {
        try checkRank(root, "broadcast root")
        var length = [Float(bytes.count)]
        // Counts up to 2^24 are exact in a Float; the options and hashes this carries are far smaller.
        guard bytes.count < 1 << 24 else { throw DistributedError("byte broadcast of \(bytes.count) bytes is over 16 MiB") }
        try broadcast(&length, root: root)
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(length[0])) }
        guard !bytes.isEmpty else { return }
        let n = try count(bytes.count)
        try bytes.withUnsafeMutableBytes { raw in
            try MPIRuntime.check(MPI_Bcast(raw.baseAddress, n, mtp_mpi_byte(), Int32(root), handle), "MPI_Bcast")
        }
    }

    public func send(_ buffer: UnsafeBufferPointer<Float>, to destination: Int, tag: Int) throws {
        try checkRank(destination, "destination")
        try MPIRuntime.check(MPI_Send(buffer.baseAddress, try count(buffer.count), mtp_mpi_float(), Int32(destination),
                                      try Self.tag(tag), handle), "MPI_Send")
    }

    public func receive(into buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int) throws {
        try checkRank(source, "source")
        var status = MPI_Status()
        try MPIRuntime.check(MPI_Recv(buffer.baseAddress, try count(buffer.count), mtp_mpi_float(), Int32(source),
                                      try Self.tag(tag), handle, &status), "MPI_Recv")
        var received: Int32 = 0
        try MPIRuntime.check(MPI_Get_count(&status, mtp_mpi_float(), &received), "MPI_Get_count")
        guard Int(received) == buffer.count else {
            throw DistributedError("receive from rank \(source) with tag \(tag) expected \(buffer.count) elements, got \(received)")
        }
    }

    public func send(bytes: [UInt8], to destination: Int, tag: Int) throws {
        try checkRank(destination, "destination")
        let n = try count(bytes.count)
        try bytes.withUnsafeBytes { raw in
            try MPIRuntime.check(MPI_Send(raw.baseAddress, n, mtp_mpi_byte(), Int32(destination), try Self.tag(tag), handle), "MPI_Send")
        }
    }

    public func startSend(bytes: [UInt8], to destination: Int, tag: Int) throws -> any PendingSend {
        try checkRank(destination, "destination")
        return try MPIPendingSend(bytes: bytes, destination: Int32(destination), tag: try Self.tag(tag), communicator: handle)
    }

    public func receiveBytes(from source: Int, tag: Int) throws -> [UInt8] {
        try checkRank(source, "source")
        let t = try Self.tag(tag)
        var status = MPI_Status()
        try MPIRuntime.check(MPI_Probe(Int32(source), t, handle, &status), "MPI_Probe")
        var length: Int32 = 0
        try MPIRuntime.check(MPI_Get_count(&status, mtp_mpi_byte(), &length), "MPI_Get_count")
        var bytes = [UInt8](repeating: 0, count: Int(length))
        try bytes.withUnsafeMutableBytes { raw in
            try MPIRuntime.check(MPI_Recv(raw.baseAddress, length, mtp_mpi_byte(), Int32(source), t, handle, &status), "MPI_Recv")
        }
        return bytes
    }

    public func barrier() throws {
        try MPIRuntime.check(MPI_Barrier(handle), "MPI_Barrier")
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(handle, code)
        exit(code)  // MPI_Abort does not return; this satisfies the type checker.
    }

    private func count(_ n: Int) throws -> Int32 {
        guard n <= Int(Int32.max) else { throw DistributedError("a message of \(n) elements is over MPI's Int32 count") }
        return Int32(n)
    }

    private static func tag(_ t: Int) throws -> Int32 {
        // MPI guarantees tags up to 32767 (MPI_TAG_UB is at least that).
        guard t >= 0 && t <= 32_767 else { throw DistributedError("message tag must be in 0...32767, got \(t)") }
        return Int32(t)
    }

    private static func op(_ operation: ReduceOperation) -> MPI_Op {
        switch operation {
        case .sum: mtp_mpi_sum()
        case .max: mtp_mpi_max()
        case .min: mtp_mpi_min()
        }
    }
}
/// An MPI_Isend with the buffer it reads, kept alive until the send completes.
final class MPIPendingSend: PendingSend {
    private let buffer: UnsafeMutableRawBufferPointer
    private var request = MPI_Request(bitPattern: 0)
    private var done = false

    init(bytes: [UInt8], destination: Int32, tag: Int32, communicator: MPI_Comm) throws {
        guard bytes.count <= Int(Int32.max) else { throw DistributedError("a message of \(bytes.count) bytes is over MPI's Int32 count") }
        buffer = .allocate(byteCount: Swift.max(1, bytes.count), alignment: 16)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        try MPIRuntime.check(MPI_Isend(buffer.baseAddress, Int32(bytes.count), mtp_mpi_byte(), destination, tag, communicator, &request),
                             "MPI_Isend")
    }

    func isComplete() throws -> Bool {
        if done { return true }
        var flag: Int32 = 0
        try MPIRuntime.check(MPI_Test(&request, &flag, mtp_mpi_status_ignore()), "MPI_Test")
        done = flag != 0
        return done
    }

    func wait() throws {
        if done { return }
        try MPIRuntime.check(MPI_Wait(&request, mtp_mpi_status_ignore()), "MPI_Wait")
        done = true
    }

    deinit {
        // A request still in flight keeps reading the buffer: finish it first.
        if !done { MPI_Wait(&request, mtp_mpi_status_ignore()) }
        buffer.deallocate()
    }
}
#endif
