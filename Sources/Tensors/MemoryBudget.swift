// Sizes checked before allocation. A size that comes from a user (a flag, a case file,
// checkpoint metadata) is multiplied out with overflow checks and compared with the
// machine's physical memory before anything of that size is allocated, so a hostile
// size becomes an error naming it instead of a trap or an allocation of terabytes.

import Foundation

/// Overflow-checked size arithmetic and the check against physical memory.
public enum MemoryBudget {
    /// The bytes a process may plan to hold: the machine's physical memory.
    public static var availableBytes: Int {
        Int(clamping: ProcessInfo.processInfo.physicalMemory)
    }

    /// The product of `factors`, or nil when it overflows `Int` (or a factor is negative).
    public static func product(_ factors: [Int]) -> Int? {
        var p = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (r, overflow) = p.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            p = r
        }
        return p
    }

    /// The sum of `terms`, or nil when it overflows (or a term is nil or negative).
    public static func sum(_ terms: [Int?]) -> Int? {
        var s = 0
        for t in terms {
            guard let t, t >= 0 else { return nil }
            let (r, overflow) = s.addingReportingOverflow(t)
            if overflow { return nil }
            s = r
        }
        return s
    }

    /// Throws unless `bytes` (nil: overflowed) fits in ``availableBytes``.
    ///
    /// - Parameters:
    ///   - bytes: the estimate; nil when computing it overflowed.
    ///   - what: what would be allocated, naming the flag or tensor it comes from.
    /// - Throws: ``MemoryBudgetError``.
    public static func check(bytes: Int?, for what: String) throws {
        let available = availableBytes
        guard let bytes, bytes <= available else {
            throw MemoryBudgetError(what: what, bytes: bytes, availableBytes: available)
        }
    }

    /// Throws unless `elements` items of `bytesPerElement` bytes (their product) fit.
    public static func check(elements factors: [Int], bytesPerElement: Int, for what: String) throws {
        try check(bytes: product(factors + [bytesPerElement]), for: what)
    }

    /// `bytes` for people: "1.5 GB", "200.0 TB".
    public static func describe(_ bytes: Int) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var v = Double(bytes), u = 0
        while v >= 1000, u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", v, units[u])
    }
}

/// A size that does not fit in this machine's memory (or overflows).
public struct MemoryBudgetError: Error, CustomStringConvertible, Equatable {
    /// What would be allocated (names the flag or tensor).
    public let what: String
    /// The bytes it would take; nil when the size overflows 64-bit arithmetic.
    public let bytes: Int?
    /// The machine's physical memory in bytes.
    public let availableBytes: Int

    /// The error for `what`.
    public init(what: String, bytes: Int?, availableBytes: Int) {
        self.what = what
        self.bytes = bytes
        self.availableBytes = availableBytes
    }

    /// "X would take 200.0 GB, more than this machine's 24.0 GB of memory".
    public var description: String {
        let size = bytes.map { "would take \(MemoryBudget.describe($0))" } ?? "would take more than 2^63 bytes"
        return "\(what) \(size), more than this machine's \(MemoryBudget.describe(availableBytes)) of memory"
    }
}
