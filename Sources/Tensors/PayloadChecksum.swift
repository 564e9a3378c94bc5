// A checksum of a set of tensors' contents, stored in a checkpoint's metadata and
// verified when it is loaded: a file whose bytes were damaged (zeroed, truncated and
// padded, flipped) after it was written is refused instead of resumed.
//
// The hash is FNV-1a taken over 64-bit little-endian words (then the tail bytes), one
// tensor after another in code-point order of their names, each preceded by its name,
// dtype and shape. It detects accidents, not adversaries (it is not cryptographic).

/// FNV-1a over 64-bit little-endian words, then the tail bytes: fast, deterministic,
/// for detecting accidental damage or change (not cryptographic).
public struct ContentChecksum: Sendable {
    private var h: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// An empty checksum.
    public init() {}

    /// Mixes `bytes` in.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        let words = bytes.count / 8
        for i in 0..<words {
            h = (h ^ UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) &* Self.prime
        }
        for i in (8 * words)..<bytes.count { h = (h ^ UInt64(bytes[i])) &* Self.prime }
    }

    /// `"fnv1a64w:<16 hex digits>"`.
    public var value: String {
        let hex = String(h, radix: 16)
        return SafeTensors.payloadChecksumAlgorithm + ":" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

extension SafeTensors {
    /// The prefix that names the checksum's algorithm in the stored string.
    public static let payloadChecksumAlgorithm = "fnv1a64w"

    /// A ``ContentChecksum`` over the names, dtypes, shapes and bytes of `tensors`, one after
    /// another in code-point order of their names.
    public static func payloadChecksum(_ tensors: [String: Tensor]) -> String {
        var c = ContentChecksum()
        for name in tensors.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard let t = tensors[name] else { continue }
            Array("\(name)\u{0}\(t.dtype)\u{0}\(t.shape)\u{0}".utf8).withUnsafeBytes { c.add($0) }
            t.withUnsafeBytes { c.add($0) }
        }
        return c.value
    }
}
