// Text documents encoded with a BPE tokenizer instead of byte ids: the documents are
// split exactly as for byte-level training (TextData: blank lines), then each one's
// text is encoded on its own, so no token spans two documents.

import Foundation

extension TextData {
    /// The documents of a UTF-8 text file, each encoded with `tokenizer` (no special tokens added).
    ///
    /// - Parameters:
    ///   - url: a file URL.
    ///   - tokenizer: the tokenizer.
    /// - Returns: the non-empty encoded documents (at least one).
    /// - Throws: what ``documents(fromUTF8File:)`` throws; the tokenizer's errors;
    ///   ``DataError/malformedFile(_:)`` when every document encodes to nothing.
    public static func documents(fromUTF8File url: URL, tokenizer: BPETokenizer) throws -> [[Int32]] {
        let byteDocuments = try documents(fromUTF8File: url)
        var out: [[Int32]] = []
        for document in byteDocuments {
            // The bytes were validated as UTF-8, so this decoding is lossless.
            let text = String(decoding: document.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
            let ids = try tokenizer.encode(text)
            if !ids.isEmpty { out.append(ids) }
        }
        guard !out.isEmpty else { throw DataError.malformedFile("\(url.path): no document encodes to any token") }
        return out
    }
}
