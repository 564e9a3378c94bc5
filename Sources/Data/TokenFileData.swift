// Flat token files as nanoGPT and llm.c write them (`mtp train --tokens FILE --vocab N`).

import Foundation
import Tensors

/// Reads flat files of little-endian token ids as documents.
///
/// ## What is accepted
/// - **Raw** (nanoGPT's `train.bin`, `np.array(ids, dtype=np.uint16).tofile`):
///   the file is nothing but ids, 2 bytes each (4 for uint32).
/// - **llm.c** (`dev/data/data_common.py`, `write_datafile`): a 1024-byte header
///   of 256 little-endian int32 — `[0]` magic, `[1]` version, `[2]` token count —
///   then the ids. Magic 20240520 / version 1 marks uint16 ids (GPT-2), magic
///   20240801 / version 7 uint32 ids (Llama 3). A file of at least 1024 bytes whose
///   first int32 is one of these magics is read as llm.c; its version and token
///   count must then match, and the width must be the one the magic names.
///   (So a raw uint16 file whose first two ids are 54984, 308 is misread as a
///   header; such a file is rejected rather than silently reinterpreted.) A header
///   whose version and token count fit but whose magic is unknown is rejected too,
///   rather than read as tokens.
///
/// ## Documents
/// With a `separator` id, documents are the maximal runs of non-separator ids:
/// separators are dropped, as are the empty runs between adjacent separators or
/// at either end — this reads both llm.c's layout (EOT before each document) and
/// nanoGPT's (EOT after each). Without one, the ids are cut into consecutive
/// chunks of `chunkLength` (the last may be shorter). A ``Packer`` splits
/// documents longer than its row length further.
public enum TokenFileData {
    /// The width of a token id on disk.
    public enum Width: Int, Sendable {
        /// 2-byte ids (nanoGPT, llm.c GPT-2 files).
        case uint16 = 2
        /// 4-byte ids (llm.c Llama 3 files).
        case uint32 = 4
    }

    /// The size of an llm.c header in bytes (256 int32).
    public static let headerByteCount = 1024
    /// llm.c's magic number for uint16 ids, with its version.
    public static let uint16Header = (magic: Int32(20_240_520), version: Int32(1))
    /// llm.c's magic number for uint32 ids, with its version.
    public static let uint32Header = (magic: Int32(20_240_801), version: Int32(7))

    /// The documents of a file of little-endian uint16 ids (raw or with an llm.c header).
    ///
    /// - Parameters:
    ///   - url: a file URL.
    ///   - vocabularySize: ids must lie in `0 ..< vocabularySize` (1 … 65536).
    ///   - separator: the id that separates documents (e.g. GPT-2's 50256), or nil.
    ///   - chunkLength: the document length when there is no separator (≥ 1).
    /// - Returns: at least one non-empty document.
    /// - Throws: ``DataError/unreadableFile(_:)`` when the file cannot be read;
    ///   ``DataError/malformedFile(_:)`` when it is empty, its byte count is odd,
    ///   its llm.c header does not match, or it holds only separators;
    ///   ``DataError/tokenOutOfRange(_:)`` naming the first id ≥ `vocabularySize`
    ///   with its index and byte offset; ``DataError/invalidArgument(_:)`` for a
    ///   bad vocabulary size, separator or chunk length.
    public static func documents(fromUInt16File url: URL, vocabularySize: Int, separator: Int32? = nil,
                                 chunkLength: Int = 1024) throws -> [[Int32]] {
        try documents(fromFile: url, width: .uint16, vocabularySize: vocabularySize, separator: separator,
                      chunkLength: chunkLength)
    }

    /// The documents of a file of little-endian uint32 ids (raw or with an llm.c header).
    ///
    /// Parameters, result and errors as ``documents(fromUInt16File:vocabularySize:separator:chunkLength:)``,
    /// with `vocabularySize` in 1 … 2³¹ − 1 and a byte count that is a multiple of 4.
    public static func documents(fromUInt32File url: URL, vocabularySize: Int, separator: Int32? = nil,
                                 chunkLength: Int = 1024) throws -> [[Int32]] {
        try documents(fromFile: url, width: .uint32, vocabularySize: vocabularySize, separator: separator,
                      chunkLength: chunkLength)
    }

    static func documents(fromFile url: URL, width: Width, vocabularySize: Int, separator: Int32?,
                          chunkLength: Int) throws -> [[Int32]] {
        try checkArguments(width: width, vocabularySize: vocabularySize, separator: separator, chunkLength: chunkLength)
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw DataError.unreadableFile("\(url.path): \(FileErrorReason.describe(error, path: url.path))")
        }
        return try documents(fromTokenData: data, width: width, vocabularySize: vocabularySize,
                             separator: separator, chunkLength: chunkLength, source: url.path)
    }

    /// The documents of token-file bytes held in memory.
    ///
    /// - Parameters:
    ///   - data: the file's bytes.
    ///   - width: the id width.
    ///   - source: a name for error messages (a path).
    ///   - vocabularySize, separator, chunkLength: as ``documents(fromUInt16File:vocabularySize:separator:chunkLength:)``.
    /// - Throws: as ``documents(fromUInt16File:vocabularySize:separator:chunkLength:)``.
    public static func documents(fromTokenData data: Data, width: Width, vocabularySize: Int, separator: Int32? = nil,
                                 chunkLength: Int = 1024, source: String = "<data>") throws -> [[Int32]] {
        try checkArguments(width: width, vocabularySize: vocabularySize, separator: separator, chunkLength: chunkLength)
        guard !data.isEmpty else { throw DataError.malformedFile("\(source): the file is empty") }
        let ids = try data.withUnsafeBytes { raw in
            try decode(raw, width: width, vocabularySize: vocabularySize, source: source)
        }
        if let separator {
            let docs = ids.split(separator: separator, omittingEmptySubsequences: true).map { Array($0) }
            guard !docs.isEmpty else {
                throw DataError.malformedFile("\(source): holds only separator ids (\(separator)), no documents")
            }
            return docs
        }
        return stride(from: 0, to: ids.count, by: chunkLength).map { Array(ids[$0..<min($0 + chunkLength, ids.count)]) }
    }

    static func checkArguments(width: Width, vocabularySize: Int, separator: Int32?, chunkLength: Int) throws {
        let limit = width == .uint16 ? 65_536 : Int(Int32.max)
        guard (1...limit).contains(vocabularySize) else {
            throw DataError.invalidArgument("vocabulary size \(vocabularySize) is outside 1...\(limit) for \(width) ids")
        }
        if let separator, separator < 0 || Int(separator) >= vocabularySize {
            throw DataError.invalidArgument("separator id \(separator) is outside the vocabulary 0..<\(vocabularySize)")
        }
        guard chunkLength >= 1 else { throw DataError.invalidArgument("chunk length \(chunkLength) is not positive") }
    }

    /// The ids of a file: the payload after an llm.c header if there is one, else every byte.
    static func decode(_ raw: UnsafeRawBufferPointer, width: Width, vocabularySize: Int,
                       source: String) throws -> [Int32] {
        let w = width.rawValue
        var payloadStart = 0
        if raw.count >= headerByteCount {
            let magic = int32(raw, at: 0)
            if magic == uint16Header.magic || magic == uint32Header.magic {
                let expected = width == .uint16 ? uint16Header : uint32Header
                guard magic == expected.magic else {
                    let other: Width = width == .uint16 ? .uint32 : .uint16
                    throw DataError.malformedFile(
                        "\(source): llm.c header magic \(magic) marks \(other) ids, but \(width) ids were asked for")
                }
                let version = int32(raw, at: 4), count = int32(raw, at: 8)
                guard version == expected.version else {
                    throw DataError.malformedFile(
                        "\(source): llm.c header version \(version) is not \(expected.version) (magic \(magic))")
                }
                let payload = raw.count - headerByteCount
                guard count >= 0, Int(count) * w == payload else {
                    throw DataError.malformedFile(
                        "\(source): llm.c header declares \(count) tokens but \(payload) bytes follow it (\(w) per token)")
                }
                payloadStart = headerByteCount
            } else if looksLikeHeader(raw, width: width) {
                throw DataError.malformedFile(
                    "\(source): starts with an llm.c header (version \(int32(raw, at: 4)), \(int32(raw, at: 8)) tokens) whose magic "
                    + "\(magic) is neither \(uint16Header.magic) (uint16) nor \(uint32Header.magic) (uint32); it is not read as tokens")
            }
        }
        let payload = raw.count - payloadStart
        guard payload > 0 else { throw DataError.malformedFile("\(source): holds no tokens") }
        guard payload % w == 0 else {
            throw DataError.malformedFile(
                "\(source): \(payload) bytes of ids is not a multiple of \(w) (\(width) ids)")
        }
        let n = payload / w
        var ids = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            let offset = payloadStart + i * w
            let id: UInt32 = width == .uint16
                ? UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
                : UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            guard id < UInt32(vocabularySize) else {
                throw DataError.tokenOutOfRange(
                    "\(source): token id \(id) at index \(i) (byte offset \(offset)) is outside the vocabulary 0..<\(vocabularySize)")
            }
            ids[i] = Int32(id)
        }
        return ids
    }

    /// Whether the first 1024 bytes are an llm.c header but for its magic: a known version
    /// and a token count that matches the bytes after it exactly. Ids of a raw file match
    /// that only by a coincidence of three values, so such a file is refused, not misread.
    static func looksLikeHeader(_ raw: UnsafeRawBufferPointer, width: Width) -> Bool {
        let version = int32(raw, at: 4), count = int32(raw, at: 8)
        let versions = [uint16Header.version, uint32Header.version]
        return versions.contains(version) && count > 0 && Int(count) * width.rawValue == raw.count - headerByteCount
    }

    static func int32(_ raw: UnsafeRawBufferPointer, at offset: Int) -> Int32 {
        Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))
    }
}
