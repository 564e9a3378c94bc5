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

/// Freed large blocks kept for reuse, as PyTorch's caching allocator keeps device blocks:
/// a training step allocates the same sizes every step, and a fresh block of a few MB
/// costs the kernel's page faults (and zeroing) each time it is touched, a reused one
/// nothing. Blocks of at least ``minimumBytes`` are rounded up to a size class (4 KiB
/// granules below 1 MiB, then eight classes per power of two) and kept on a free list per
/// class, up to ``limitBytes`` in all (then freed as before). Live-byte counts
/// (``AllocationMeter``) are unchanged: a cached block is not live.
public enum BlockCache {
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var free: [Int: [UnsafeMutableRawPointer]] = [:]
        var cached = 0
    }
    private static let state = State()

    /// Blocks smaller than this go straight to the system allocator.
    public static let minimumBytes = 1 << 16
    /// The most bytes kept for reuse: an eighth of physical memory, at most 4 GiB.
    public static let limitBytes = Int(min(ProcessInfo.processInfo.physicalMemory / 8, 4 << 30))

    /// Bytes held for reuse now.
    public static var cachedBytes: Int {
        state.lock.lock(); defer { state.lock.unlock() }
        return state.cached
    }

    /// The size class of a request: the bytes a block for it really has.
    static func sizeClass(_ bytes: Int) -> Int {
        guard bytes >= minimumBytes else { return max(bytes, 1) }
        if bytes <= 1 << 20 { return (bytes + 4095) & ~4095 }
        let top = Int.bitWidth - 1 - bytes.leadingZeroBitCount   // 2^top ≤ bytes
        let step = 1 << (top - 3)
        return (bytes + step - 1) / step * step
    }

    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = sizeClass(bytes)
        if size >= minimumBytes {
            state.lock.lock()
            if let block = state.free[size]?.popLast() {
                state.cached -= size
                state.lock.unlock()
                return block
            }
            state.lock.unlock()
        }
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    }

    static func release(_ block: UnsafeMutableRawPointer, bytes: Int) {
        let size = sizeClass(bytes)
        if size >= minimumBytes {
            state.lock.lock()
            if state.cached + size <= limitBytes {
                state.free[size, default: []].append(block)
                state.cached += size
                state.lock.unlock()
                return
            }
            state.lock.unlock()
        }
        block.deallocate()
    }

    /// Returns every cached block to the system.
    public static func empty() {
        state.lock.lock()
        let blocks = state.free.values.flatMap { $0 }
        state.free = [:]
        state.cached = 0
        state.lock.unlock()
        for block in blocks { block.deallocate() }
    }
}

/// A raw, 64-byte aligned, metered heap block (large ones through ``BlockCache``).
final class TensorStorage: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int, zeroed: Bool = true) {
        self.byteCount = byteCount
        bytes = BlockCache.allocate(byteCount)
        if zeroed { bytes.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount) }
        AllocationMeter.allocated(byteCount)
    }

    deinit {
        BlockCache.release(bytes, bytes: byteCount)
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
        pointer = BlockCache.allocate(count * 4).bindMemory(to: Float.self, capacity: max(count, 1))
        AllocationMeter.allocated(count * 4)
    }

    deinit {
        BlockCache.release(UnsafeMutableRawPointer(pointer), bytes: count * 4)
        AllocationMeter.freed(count * 4)
    }
}
