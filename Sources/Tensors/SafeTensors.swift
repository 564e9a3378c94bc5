// The safetensors file format (https://github.com/huggingface/safetensors):
//
//   [8 bytes: N, UInt64 little-endian] [N bytes: JSON header] [data section]
//
// The header is a JSON object mapping each tensor name to
// `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`, offsets
// relative to the start of the data section, plus an optional
// `"__metadata__"` object of string → string. Elements are little-endian and
// row-major.
//
// The public entry points live here; validation of hostile input is in
// SafeTensors+Reader.swift, the writer in SafeTensors+Writer.swift.

import Foundation

/// Reads and writes tensors in the safetensors format.
///
/// ```swift
/// try SafeTensors.write(["w": weight], metadata: ["format": "pt"], to: url)
/// let (tensors, metadata) = try SafeTensors.read(contentsOf: url)
/// ```
///
/// ## Element types
/// The six ``DType`` cases are read and written natively (`F32`, `F16`,
/// `BF16`, `I32`, `I64`, `BOOL`). Four more file dtypes are read and converted,
/// because ``Tensor`` has no such dtype:
/// - `U8`, `I8`, `U16` become ``DType/int32`` tensors (exact: every value fits);
/// - `F64` becomes ``DType/float32`` (rounded to nearest; magnitudes beyond
///   Float32's range become ±infinity, NaN stays NaN).
///
/// `BOOL` bytes other than 0 are read as `true` (stored as 1).
///
/// ## Hostile files
/// A malformed file throws a ``SafeTensorsError``; the reader never traps and
/// never reads outside the bytes it was given. Every header field is checked:
/// the header length against the file, the header as strict UTF-8 JSON (no
/// duplicate keys, nesting at most ``maxJSONDepth`` deep), each entry's dtype,
/// shape (non-negative extents whose byte count fits in `Int`) and
/// `data_offsets` (two non-negative integers, inside the data section, exactly
/// as long as the shape needs), and that no two tensors share a byte. Gaps
/// between tensors and trailing bytes after the last one are allowed.
///
/// Memory-mapped reading assumes the file does not shrink while it is read;
/// the tensors returned own copies of their bytes and do not keep the mapping.
public enum SafeTensors {
    /// The largest header accepted, in bytes (the limit of the reference
    /// implementation): a larger declared length is treated as hostile.
    public static let maxHeaderByteCount = 100_000_000

    /// How deeply JSON arrays and objects may nest in a header. A valid
    /// header needs 3 levels.
    public static let maxJSONDepth = 64

    /// The key of the optional string → string map in the header.
    public static let metadataKey = "__metadata__"

    // MARK: Reading

    /// Reads every tensor and the metadata of a safetensors file, memory-mapping it.
    ///
    /// - Parameter url: a file URL.
    /// - Returns: the tensors by name, and the `__metadata__` map (empty when absent).
    /// - Throws: ``SafeTensorsError/unreadableFile(path:reason:)`` when the file
    ///   cannot be opened; any other ``SafeTensorsError`` when its content is malformed.
    public static func read(contentsOf url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafeTensorsError.unreadableFile(path: url.path, reason: FileErrorReason.describe(error, path: url.path))
        }
        return try read(from: data)
    }

    /// Reads every tensor and the metadata from the bytes of a safetensors file.
    ///
    /// - Parameter data: the whole file.
    /// - Returns: the tensors by name, and the `__metadata__` map (empty when absent).
    /// - Throws: a ``SafeTensorsError`` naming the first malformed field found.
    public static func read(from data: Data) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try data.withUnsafeBytes { try decode($0) }
    }

    // MARK: Writing

    /// Writes tensors and metadata to a safetensors file, replacing it atomically.
    ///
    /// See ``encode(_:metadata:)`` for the layout.
    ///
    /// - Parameters:
    ///   - tensors: the tensors by name.
    ///   - metadata: the `__metadata__` map; omitted from the header when empty.
    ///   - url: a file URL.
    /// - Throws: ``SafeTensorsError/invalidTensorName(_:)`` for the name
    ///   `__metadata__`; ``SafeTensorsError/unwritableFile(path:reason:)`` when
    ///   the file cannot be written.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let data = try encode(tensors, metadata: metadata)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw SafeTensorsError.unwritableFile(path: url.path, reason: FileErrorReason.describe(error, path: url.path))
        }
    }

    /// The bytes of a safetensors file holding `tensors` and `metadata`.
    ///
    /// The output is deterministic: header keys are sorted (`__metadata__`
    /// first, then tensor names in code-point order), the JSON has no
    /// whitespace and is padded with spaces to a multiple of 8 bytes, and the
    /// data section holds tensors by decreasing element size, then by name, so
    /// each tensor's bytes start at a multiple of its element size in the file.
    ///
    /// - Parameters:
    ///   - tensors: the tensors by name (any name but `__metadata__`).
    ///   - metadata: the `__metadata__` map; omitted from the header when empty.
    /// - Returns: the file's bytes.
    /// - Throws: ``SafeTensorsError/invalidTensorName(_:)`` for the name `__metadata__`.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        try encodeFile(tensors, metadata: metadata)
    }
}

// MARK: - Errors

/// Why a safetensors file could not be read or written. Each message names
/// the offending tensor and value.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case unreadableFile(path: String, reason: String)
    /// The file could not be written.
    case unwritableFile(path: String, reason: String)
    /// The file is shorter than the 8-byte header length.
    case fileTooShort(byteCount: Int)
    /// The declared header length exceeds the bytes after it, or ``SafeTensors/maxHeaderByteCount``.
    case headerLengthOutOfRange(declared: UInt64, available: Int)
    /// The header is not UTF-8, not JSON, or not a JSON object.
    case invalidHeader(String)
    /// `__metadata__` is not an object of string values.
    case invalidMetadata(String)
    /// A tensor entry is not an object, or lacks a field or has one of the wrong JSON type.
    case invalidEntry(name: String, reason: String)
    /// A tensor's dtype is not one this reader knows.
    case unknownDType(name: String, dtype: String)
    /// A tensor's shape has a negative extent or a byte count beyond `Int`.
    case invalidShape(name: String, reason: String)
    /// A tensor's `data_offsets` are not two ordered integers inside the data section.
    case invalidDataOffsets(name: String, reason: String)
    /// A tensor's byte range does not have the size its shape and dtype need.
    case byteCountMismatch(name: String, expected: Int, actual: Int)
    /// Two tensors share bytes of the data section.
    case overlappingTensors(first: String, second: String, reason: String)
    /// A tensor name that cannot be written (`__metadata__`).
    case invalidTensorName(String)

    /// A one-line message naming the file, tensor and value at fault.
    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            "safetensors: cannot read \(path): \(reason)"
        case .unwritableFile(let path, let reason):
            "safetensors: cannot write \(path): \(reason)"
        case .fileTooShort(let n):
            "safetensors: file is \(n) bytes, shorter than the 8-byte header length"
        case .headerLengthOutOfRange(let declared, let available):
            "safetensors: header length \(declared) exceeds the \(available) bytes after it"
                + (declared > UInt64(SafeTensors.maxHeaderByteCount) ? " (limit \(SafeTensors.maxHeaderByteCount))" : "")
        case .invalidHeader(let m):
            "safetensors: invalid header: \(m)"
        case .invalidMetadata(let m):
            "safetensors: invalid __metadata__: \(m)"
        case .invalidEntry(let name, let reason):
            "safetensors: tensor \(SafeTensors.quoted(name)): \(reason)"
        case .unknownDType(let name, let dtype):
            "safetensors: tensor \(SafeTensors.quoted(name)): unknown dtype \(SafeTensors.quoted(dtype)) (readable: "
                + SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case .invalidShape(let name, let reason):
            "safetensors: tensor \(SafeTensors.quoted(name)): invalid shape: \(reason)"
        case .invalidDataOffsets(let name, let reason):
            "safetensors: tensor \(SafeTensors.quoted(name)): invalid data_offsets: \(reason)"
        case .byteCountMismatch(let name, let expected, let actual):
            "safetensors: tensor \(SafeTensors.quoted(name)): data_offsets span \(actual) bytes, its dtype and shape need \(expected)"
        case .overlappingTensors(let first, let second, let reason):
            "safetensors: tensors \(SafeTensors.quoted(first)) and \(SafeTensors.quoted(second)) overlap: \(reason)"
        case .invalidTensorName(let name):
            "safetensors: \(SafeTensors.quoted(name)) is reserved and cannot name a tensor"
        }
    }
}

extension SafeTensors {
    /// A string for an error message: quoted, with hostile lengths cut short.
    static func quoted(_ s: String, limit: Int = 80) -> String {
        let body = s.count > limit ? String(s.prefix(limit)) + "…" : s
        return "\"" + body + "\""
    }
}

// MARK: - File dtypes

/// The dtype codes this package reads, with their size and the ``DType`` they load as.
enum SafeTensorsDType: String, CaseIterable {
    case F32, F16, BF16, I32, I64, BOOL, U8, I8, U16, F64

    /// Bytes per element in the file.
    var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8: 1
        case .F16, .BF16, .U16: 2
        case .F32, .I32: 4
        case .I64, .F64: 8
        }
    }

    /// The dtype of the tensor the reader returns.
    var tensorDType: DType {
        switch self {
        case .F32, .F64: .float32
        case .F16: .float16
        case .BF16: .bfloat16
        case .I32, .U8, .I8, .U16: .int32
        case .I64: .int64
        case .BOOL: .bool
        }
    }

    /// The code a ``DType`` is written with.
    init(_ dtype: DType) {
        switch dtype {
        case .float32: self = .F32
        case .float16: self = .F16
        case .bfloat16: self = .BF16
        case .int32: self = .I32
        case .int64: self = .I64
        case .bool: self = .BOOL
        }
    }
}
