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
        /// Whether ``start(byShape:)`` asked for the per-shape breakdown.
        @usableFromInline nonisolated(unsafe) static var byShape = false
        nonisolated(unsafe) static var shapes: [Shape: (calls: Int, nanoseconds: UInt64)] = [:]

        /// The operands of one GEMM call: transposes and sizes.
        public struct Shape: Hashable, Sendable, CustomStringConvertible {
            public let transA: Bool, transB: Bool, m: Int, n: Int, k: Int
            @usableFromInline init(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int) {
                (self.transA, self.transB, self.m, self.n, self.k) = (transA, transB, m, n, k)
            }
            /// `NT 1024x96x96`: op(A) transposed or not, op(B), then m × n × k.
            public var description: String { "\(transA ? "T" : "N")\(transB ? "T" : "N") \(m)x\(n)x\(k)" }
            /// Floating-point operations of one call, 2·m·n·k.
            public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
        }

        /// Time and calls of one GEMM shape.
        public struct ShapeTotal: Sendable {
            public let shape: Shape
            public let calls: Int
            public let seconds: Double
            /// Achieved GFLOP/s over the calls.
            public var gflops: Double { shape.flops * Double(calls) / Swift.max(seconds, 1e-12) / 1e9 }
        }

        /// Starts counting from zero; with `byShape`, also per operand shape (``shapeTotals()``).
        public static func start(byShape: Bool = false) {
            lock.lock()
            nanoseconds = 0
            calls = 0
            shapes = [:]
            self.byShape = byShape
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

        /// The per-shape totals since ``start(byShape:)`` with `byShape`, most time first.
        public static func shapeTotals() -> [ShapeTotal] {
            lock.lock()
            defer { lock.unlock() }
            return shapes.map { ShapeTotal(shape: $0.key, calls: $0.value.calls, seconds: Double($0.value.nanoseconds) * 1e-9) }
                .sorted { ($0.seconds, $0.shape.description) > ($1.seconds, $1.shape.description) }
        }

        @usableFromInline
        static func add(since start: UInt64, shape: Shape?) {
            let elapsed = DispatchTime.now().uptimeNanoseconds &- start
            lock.lock()
            nanoseconds &+= elapsed
            calls += 1
            if let shape {
                let old = shapes[shape] ?? (0, 0)
                shapes[shape] = (old.calls + 1, old.nanoseconds &+ elapsed)
            }
            lock.unlock()
        }
    }
}
