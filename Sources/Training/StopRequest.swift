// A polite stop: SIGINT or SIGTERM asks the run to finish its current step, save a
// checkpoint and return, so that Ctrl-C or a cluster's pre-emption loses nothing. A second
// signal means "now": the process exits at once (the last checkpoint written stays valid,
// since checkpoints are replaced atomically).

import CRowKernels
import Dispatch
import Foundation

/// A flag that a signal (or a caller) sets and a ``TrainingRun`` polls after each step.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var signalNumber: Int32?
    private var requested = false

    /// A request not yet made.
    public init() {}

    /// Whether a stop was asked for.
    public var isRequested: Bool { lock.withLock { requested } }

    /// The signal that asked, if one did.
    public var signal: Int32? { lock.withLock { signalNumber } }

    /// Asks the run to stop after its current step.
    public func request(signal: Int32? = nil) {
        lock.withLock {
            requested = true
            signalNumber = signal ?? signalNumber
        }
    }

    /// Routes SIGINT and SIGTERM to this request: the first calls `onFirst` (on a watcher
    /// thread) and sets the flag; a second one ends the process at once (`_exit`) with
    /// status 128 + signal, as the default action would.
    ///
    /// The signal handler itself (C, `stop_signals.c`) only writes the signal number to a
    /// pipe; a dedicated thread reads it and does the rest. The signals are blocked on the
    /// calling thread and the threads it starts afterwards, so the handler never interrupts
    /// a GEMM (oneDNN's JIT kernels cannot take a signal frame). Call it from the thread that
    /// computes, before it starts any other.
    public func handleTerminationSignals(onFirst: @escaping @Sendable (Int32) -> Void = { _ in }) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        let readEnd = fds[0], writeEnd = fds[1]
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        // A full pipe (hundreds of signals unread) must not block the handler.
        _ = fcntl(writeEnd, F_SETFL, fcntl(writeEnd, F_GETFL) | O_NONBLOCK)
        // The signals are blocked on this thread (and so on every thread it starts from now
        // on) and unblocked on the watcher alone: no handler runs inside a GEMM (stop_signals.c).
        _ = mtp_stop_signals_block_here(1)
        let watcher = Thread { [self] in
            _ = mtp_stop_signals_block_here(0)
            var byte: UInt8 = 0
            while true {
                let n = read(readEnd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                guard n == 1 else { return }
                let s = Int32(byte)
                // _exit, not exit: the main thread may be inside exit() already (the first
                // signal's run has saved and is ending), or computing in oneDNN's JIT code,
                // whose pages exit()'s destructors would unmap under it.
                if isRequested { _exit(128 + s) }
                request(signal: s)
                onFirst(s)
            }
        }
        watcher.name = "mtp-stop-signals"
        watcher.start()
        _ = mtp_stop_signals_install(writeEnd)
    }
}
