// Time spent inside the BLAS, measured at its one call site (BLAS.sgemm), for the
// benchmarks' "fraction of the step in GEMM". Off by default: the only cost then is one
// load of a flag per GEMM.

import Dispatch
import Foundation

extension BLAS {
    /// Wall-clock seconds spent in `sgemm` while ``Timing`` is on (calls from several
    /// threads add up, so with threads calling at once it can exceed the wall time).
    public enum Timing {
        @usableFromInline nonisolated(unsafe) static var enabled = false
        @usableFromInline static let lock = NSLock()
        @usableFromInline nonisolated(unsafe) static var nanoseconds: UInt64 = 0
        @usableFromInline nonisolated(unsafe) static var calls = 0

        /// Starts counting from zero.
        public static func start() {
            lock.lock()
            nanoseconds = 0
            calls = 0
            enabled = true
            lock.unlock()
        }

        /// Stops counting and returns the seconds and the number of GEMM calls since ``start()``.
        @discardableResult
        public static func stop() -> (seconds: Double, calls: Int) {
            lock.lock()
            defer { lock.unlock() }
            enabled = false
            return (Double(nanoseconds) * 1e-9, calls)
        }

        @usableFromInline
        static func add(since start: UInt64) {
            let elapsed = DispatchTime.now().uptimeNanoseconds &- start
            lock.lock()
            nanoseconds &+= elapsed
            calls += 1
            lock.unlock()
        }
    }
}
