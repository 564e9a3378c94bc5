// A polite stop: SIGINT or SIGTERM asks the run to finish its current step, save a
// checkpoint and return, so that Ctrl-C or a cluster's pre-emption loses nothing. A second
// signal means "now": the process exits at once (the last checkpoint written stays valid,
// since checkpoints are replaced atomically).

import Dispatch
import Foundation

/// A flag that a signal (or a caller) sets and a ``TrainingRun`` polls after each step.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var signalNumber: Int32?
    private var requested = false
    private var sources: [any DispatchSourceSignal] = []

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

    /// Routes SIGINT and SIGTERM to this request: the first calls `onFirst` (on a
    /// background queue) and sets the flag; a second one exits the process with status
    /// 128 + signal, as the default action would.
    public func handleTerminationSignals(onFirst: @escaping @Sendable (Int32) -> Void = { _ in }) {
        for s in [SIGINT, SIGTERM] {
            Foundation.signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler { [unowned self] in
                if self.isRequested { exit(128 + s) }
                self.request(signal: s)
                onFirst(s)
            }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }
}
