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

    /// The run's tokenizer (``tokenizer``), read; nil when the run has none.
    ///
    /// - Throws: ``Data/DataError`` for an unreadable or invalid file; ``TrainingError`` when
    ///   its bytes differ from those recorded at training time (``tokenizerChecksum``) or its
    ///   vocabulary is larger than the model's.
    public func loadTokenizer() throws -> BPETokenizer? {
        guard let tokenizer else { return nil }
        let data = try Self.tokenizerBytes(URL(fileURLWithPath: tokenizer))
        if let recorded = tokenizerChecksum, Self.checksum(data) != recorded {
            throw TrainingError("tokenizer \(tokenizer) changed since training (checksum \(Self.checksum(data)), recorded "
                + "\(recorded)); restore the file the run was trained with")
        }
        let t = try BPETokenizer(json: data, source: tokenizer)
        guard t.vocabularySize <= model.vocabularySize else {
            throw TrainingError("tokenizer \(tokenizer) has \(t.vocabularySize) ids, more than the model's vocabulary of \(model.vocabularySize)")
        }
        return t
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
