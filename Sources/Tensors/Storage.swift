// Tensor storage: one heap block per tensor, shared copy-on-write, and the
// allocation meter that counts every live block.

import Foundation

/// Counts the bytes of live tensor storage, current and peak.
///
/// Every ``Tensor`` buffer (and every scratch buffer a kernel takes through
/// ``ScratchBuffer``) registers here, so a test or benchmark can prove that a
/// computation never held, say, an `[N, V]` logits buffer.
public enum AllocationMeter {
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var current = 0
        var peak = 0
    }
    private static let state = State()

    /// Bytes of tensor storage alive now.
    public static var currentBytes: Int {
        state.lock.lock(); defer { state.lock.unlock() }
        return state.current
    }

    /// The largest value ``currentBytes`` reached since the last ``resetPeak()``.
    public static var peakBytes: Int {
        state.lock.lock(); defer { state.lock.unlock() }
        return state.peak
    }

    /// Sets the peak to the current live bytes.
    public static func resetPeak() {
        state.lock.lock(); defer { state.lock.unlock() }
        state.peak = state.current
    }

    /// Runs `body` and returns its result with the peak live bytes it added
    /// above the live bytes at its start.
    public static func measure<R>(_ body: () throws -> R) rethrows -> (result: R, peakBytes: Int) {
        resetPeak()
        let before = currentBytes
        let r = try body()
        return (r, peakBytes - before)
    }

    static func allocated(_ n: Int) {
        state.lock.lock(); defer { state.lock.unlock() }
        state.current += n
        if state.current > state.peak { state.peak = state.current }
    }

    static func freed(_ n: Int) {
        state.lock.lock(); defer { state.lock.unlock() }
        state.current -= n
    }
}

/// A raw, 64-byte aligned, metered heap block.
final class TensorStorage: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int, zeroed: Bool = true) {
        self.byteCount = byteCount
        bytes = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        if zeroed { bytes.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount) }
        AllocationMeter.allocated(byteCount)
    }

    deinit {
        bytes.deallocate()
        AllocationMeter.freed(byteCount)
    }

    func copy() -> TensorStorage {
        let s = TensorStorage(byteCount: byteCount, zeroed: false)
        s.bytes.copyMemory(from: bytes, byteCount: byteCount)
        return s
    }
}

/// A metered Float32 scratch buffer for kernels (freed when it goes out of scope).
public final class ScratchBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Allocates `count` uninitialised floats, counted by ``AllocationMeter``.
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        AllocationMeter.allocated(count * 4)
    }

    deinit {
        pointer.deallocate()
        AllocationMeter.freed(count * 4)
    }
}
