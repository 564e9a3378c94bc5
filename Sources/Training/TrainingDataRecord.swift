// What a checkpoint records about its data beyond the kind and path of
// ``TrainingDataSource``: enough to find the same documents again on resume and to
// notice when they are not the same (a file edited or replaced since).

import Foundation
import Tensors

/// The details of a run's data, stored in ``TrainingOptions/dataRecord``.
public struct TrainingDataRecord: Codable, Equatable, Sendable {
    /// The file's size in bytes (text and token files).
    public var byteCount: Int?
    /// A ``Tensors/ContentChecksum`` of the file's bytes (text and token files).
    public var contentHash: String?
    /// Documents drawn from the built-in corpus.
    public var documents: Int?
    /// The document separator id of a token file, if one was given.
    public var separator: Int32?
    /// How text became tokens (`"bytes"`: byte-level UTF-8).
    public var tokenizer: String?

    /// A record with the given details.
    public init(byteCount: Int? = nil, contentHash: String? = nil, documents: Int? = nil, separator: Int32? = nil,
                tokenizer: String? = nil) {
        self.byteCount = byteCount
        self.contentHash = contentHash
        self.documents = documents
        self.separator = separator
        self.tokenizer = tokenizer
    }

    /// The size and content checksum of the file at `url`.
    /// - Throws: ``TrainingError`` when the file cannot be read.
    public static func fingerprint(of url: URL) throws -> (byteCount: Int, contentHash: String) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw TrainingError("\(url.path): cannot read the data file (\(FileErrorReason.describe(error, path: url.path)))")
        }
        var c = ContentChecksum()
        data.withUnsafeBytes { c.add($0) }
        return (data.count, c.value)
    }

    /// The differences from `recorded` that make these other data, as "what: recorded → now".
    public func differences(from recorded: TrainingDataRecord) -> [String] {
        var out: [String] = []
        func compare<T: Equatable>(_ name: String, _ a: T?, _ b: T?) {
            if let a, a != b { out.append("\(name) \(a) → \(b.map { "\($0)" } ?? "none")") }
        }
        compare("size (bytes)", recorded.byteCount, byteCount)
        compare("content", recorded.contentHash, contentHash)
        compare("--documents", recorded.documents, documents)
        compare("--separator", recorded.separator, separator)
        compare("tokenizer", recorded.tokenizer, tokenizer)
        return out
    }
}
