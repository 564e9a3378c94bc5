// UTF-8 text files as byte-level documents (`mtp train --data FILE`).

import Foundation
import Tensors

/// Reads UTF-8 text as documents of byte tokens (ids 0 … 255), one document per
/// block of lines separated by blank lines.
///
/// ## What is accepted
/// - Strict UTF-8 (RFC 3629: no overlong forms, surrogates or code points past
///   U+10FFFF); a leading byte-order mark (EF BB BF) is skipped.
/// - Lines end with LF or CRLF; the CR of a CRLF is dropped.
/// - A line is blank when it holds only spaces, tabs, CR, VT or FF. A document
///   is a maximal run of non-blank lines; its tokens are the UTF-8 bytes of those
///   lines joined by one LF (no trailing LF). Any number of blank lines separate
///   documents; leading and trailing ones are ignored.
///
/// ```swift
/// let documents = try TextData.documents(fromUTF8File: URL(fileURLWithPath: "input.txt"))
/// ```
public enum TextData {
    /// The number of token ids: one per byte value.
    public static let vocabularySize = 256

    /// The documents of a UTF-8 text file.
    ///
    /// - Parameter url: a file URL.
    /// - Returns: at least one non-empty document of byte ids.
    /// - Throws: ``DataError/unreadableFile(_:)`` when the file cannot be read;
    ///   ``DataError/malformedFile(_:)`` when it is empty, is not valid UTF-8
    ///   (naming the byte offset and value), or holds only blank lines.
    public static func documents(fromUTF8File url: URL) throws -> [[Int32]] {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw DataError.unreadableFile("\(url.path): \(FileErrorReason.describe(error, path: url.path))")
        }
        return try documents(fromUTF8Data: data, source: url.path)
    }

    /// The documents of UTF-8 bytes held in memory.
    ///
    /// - Parameters:
    ///   - data: the text's bytes.
    ///   - source: a name for error messages (a path).
    /// - Returns: at least one non-empty document of byte ids.
    /// - Throws: ``DataError/malformedFile(_:)`` as ``documents(fromUTF8File:)``.
    public static func documents(fromUTF8Data data: Data, source: String = "<data>") throws -> [[Int32]] {
        guard !data.isEmpty else { throw DataError.malformedFile("\(source): the file is empty") }
        return try data.withUnsafeBytes { raw in
            try documents(raw.bindMemory(to: UInt8.self), source: source)
        }
    }

    static func documents(_ bytes: UnsafeBufferPointer<UInt8>, source: String) throws -> [[Int32]] {
        var start = 0
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        if let bad = firstInvalidUTF8(bytes, from: start) {
            let hex = String(bytes[bad], radix: 16, uppercase: true)
            throw DataError.malformedFile("\(source): invalid UTF-8 at byte offset \(bad) (byte 0x\(hex))")
        }
        var docs: [[Int32]] = []
        var current: [Int32] = []
        var lineStart = start
        while lineStart <= bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let blank = (lineStart..<contentEnd).allSatisfy { isBlankByte(bytes[$0]) }
            if blank {
                if !current.isEmpty { docs.append(current); current = [] }
            } else {
                if !current.isEmpty { current.append(0x0A) }
                for i in lineStart..<contentEnd { current.append(Int32(bytes[i])) }
            }
            lineStart = lineEnd + 1
        }
        if !current.isEmpty { docs.append(current) }
        guard !docs.isEmpty else { throw DataError.malformedFile("\(source): holds only blank lines, no documents") }
        return docs
    }

    static func isBlankByte(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C
    }

    /// The offset of the first byte that does not start a well-formed UTF-8
    /// sequence (RFC 3629, table 3-7 of the Unicode standard), or nil.
    static func firstInvalidUTF8(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var i = start
        let n = b.count
        func continuation(_ j: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
            j < n && range.contains(b[j])
        }
        while i < n {
            let c = b[i]
            let length: Int
            switch c {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = continuation(i + 1) ? 2 : 0
            case 0xE0: length = continuation(i + 1, 0xA0...0xBF) && continuation(i + 2) ? 3 : 0
            case 0xE1...0xEC, 0xEE...0xEF: length = continuation(i + 1) && continuation(i + 2) ? 3 : 0
            case 0xED: length = continuation(i + 1, 0x80...0x9F) && continuation(i + 2) ? 3 : 0
            case 0xF0: length = continuation(i + 1, 0x90...0xBF) && continuation(i + 2) && continuation(i + 3) ? 4 : 0
            case 0xF1...0xF3: length = continuation(i + 1) && continuation(i + 2) && continuation(i + 3) ? 4 : 0
            case 0xF4: length = continuation(i + 1, 0x80...0x8F) && continuation(i + 2) && continuation(i + 3) ? 4 : 0
            default: length = 0
            }
            if length == 0 { return i }
            i += length
        }
        return nil
    }
}
