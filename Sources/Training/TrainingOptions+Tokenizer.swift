// The tokenizer of a run: recorded when the run starts (absolute path and a checksum of the
// file's bytes), read back when the run is resumed, exported or decoded from. A checkpoint
// outlives the working directory it was trained in and the file beside it, so the path is
// absolute and the checksum notices a file edited or replaced since: decoding with another
// vocabulary would print wrong text without any error.
//
// Checkpoints from before the checksum was recorded (their path may be relative to the
// directory training ran in) are read as before, unchecked.

import Data
import Foundation
import Tensors

extension TrainingOptions {
    /// Makes the `tokenizer.json` at `path` the run's tokenizer: reads and parses it, and
    /// records its absolute path in ``tokenizer`` and its checksum in ``tokenizerChecksum``.
    ///
    /// - Parameter path: the file, absolute or relative to the current directory.
    /// - Returns: the tokenizer.
    /// - Throws: ``Data/DataError`` when the file cannot be read or is not a tokenizer this
    ///   package reads.
    @discardableResult
    public mutating func recordTokenizer(at path: String) throws -> BPETokenizer {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let data = try Self.tokenizerBytes(url)
        let parsed = try BPETokenizer(json: data, source: url.path)
        tokenizer = url.path
        tokenizerChecksum = Self.checksum(data)
        return parsed
    }

    /// Records the `tokenizer.json` at `path` as the run's (absolute path and checksum)
    /// without parsing it as a tokenizer this package encodes with: a pretrained directory's
    /// file may be of a kind only its own library reads (WordPiece, Unigram, SentencePiece
    /// BPE), and a run on token files or the built-in corpus never encodes text. The file
    /// must still be a JSON object.
    ///
    /// - Throws: ``Data/DataError`` when the file cannot be read or is not a JSON object.
    public mutating func recordTokenizerFile(at path: String) throws {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let data = try Self.tokenizerBytes(url)
        try Self.checkJSONObject(data, path: url.path)
        tokenizer = url.path
        tokenizerChecksum = Self.checksum(data)
    }

    /// The run's tokenizer file as recorded: read, its checksum checked when one was
    /// recorded, and checked to be a JSON object, but not parsed (for copying it, as
    /// `mtp export` does); nil when the run has none.
    ///
    /// - Throws: as ``loadTokenizer()``, without its parsing and vocabulary checks.
    public func tokenizerFileBytes() throws -> Data? {
        guard let tokenizer else { return nil }
        let data = try Self.tokenizerBytes(URL(fileURLWithPath: tokenizer))
        try checkRecordedChecksum(of: data)
        try Self.checkJSONObject(data, path: tokenizer)
        return data
    }

    /// The run's tokenizer (``tokenizer``), read; nil when the run has none.
    ///
    /// - Throws: ``Data/DataError`` for an unreadable or invalid file; ``TrainingError`` when
    ///   its bytes differ from those recorded at training time (``tokenizerChecksum``) or its
    ///   vocabulary is larger than the model's.
    public func loadTokenizer() throws -> BPETokenizer? {
        guard let tokenizer else { return nil }
        let data = try Self.tokenizerBytes(URL(fileURLWithPath: tokenizer))
        try checkRecordedChecksum(of: data)
        let t = try BPETokenizer(json: data, source: tokenizer)
        guard t.vocabularySize <= model.vocabularySize else {
            throw TrainingError("tokenizer \(tokenizer) has \(t.vocabularySize) ids, more than the model's vocabulary of \(model.vocabularySize)")
        }
        return t
    }

    private func checkRecordedChecksum(of data: Data) throws {
        if let tokenizer, let recorded = tokenizerChecksum, Self.checksum(data) != recorded {
            throw TrainingError("tokenizer \(tokenizer) changed since training (checksum \(Self.checksum(data)), recorded "
                + "\(recorded)); restore the file the run was trained with")
        }
    }

    private static func checkJSONObject(_ data: Data, path: String) throws {
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw DataError.malformedFile("\(path) is not a JSON object (a Hugging Face tokenizer.json)")
        }
    }

    private static func tokenizerBytes(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw DataError.unreadableFile("\(url.path): \(FileErrorReason.describe(error, path: url.path))")
        }
    }

    private static func checksum(_ data: Data) -> String {
        var c = ContentChecksum()
        data.withUnsafeBytes { c.add($0) }
        return c.value
    }
}
