// Reading safetensors bytes that may be hostile. Every length, offset and
// extent comes from the file, so each is checked before it is used: the
// header length against the file, the header as strict UTF-8 JSON, each
// entry against the data section, and the entries against each other.
//
// The JSON parser is our own rather than JSONSerialization: it keeps integers
// exact (no NSNumber bool/int/double ambiguity, no silent rounding of huge
// values), rejects duplicate keys, bounds nesting depth, and behaves the same
// on every platform.

extension SafeTensors {
    /// One tensor's header entry, validated against the data section.
    struct Entry {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        /// Byte range in the data section.
        let begin: Int, end: Int
    }

    /// Parses and validates a whole file held in memory.
    static func decode(_ file: UnsafeRawBufferPointer) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard file.count >= 8 else { throw SafeTensorsError.fileTooShort(byteCount: file.count) }
        let declared = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        let available = file.count - 8
        guard declared <= UInt64(available), declared <= UInt64(maxHeaderByteCount) else {
            throw SafeTensorsError.headerLengthOutOfRange(declared: declared, available: available)
        }
        let headerEnd = 8 + Int(declared)
        let header = UnsafeRawBufferPointer(rebasing: file[8..<headerEnd])
        let data = UnsafeRawBufferPointer(rebasing: file[headerEnd...])

        if let bad = firstInvalidUTF8Offset(header) {
            throw SafeTensorsError.invalidHeader("not valid UTF-8 (byte \(bad) is 0x\(hex(header[bad])))")
        }
        guard case .object(let members) = try HeaderJSONParser.parse(header) else {
            throw SafeTensorsError.invalidHeader("the top level is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for (key, value) in members {
            if key == metadataKey {
                metadata = try parseMetadata(value)
            } else {
                entries.append(try parseEntry(named: key, value, dataByteCount: data.count))
            }
        }
        try checkDisjoint(entries)

        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            tensors[entry.name] = try loadTensor(entry, from: UnsafeRawBufferPointer(rebasing: data[entry.begin..<entry.end]))
        }
        return (tensors, metadata)
    }

    static func parseMetadata(_ value: HeaderValue) throws -> [String: String] {
        switch value {
        case .null:
            return [:]
        case .object(let members):
            var map: [String: String] = [:]
            for (key, v) in members {
                guard case .string(let s) = v else {
                    throw SafeTensorsError.invalidMetadata("value of \(quoted(key)) is \(v.summary), expected a string")
                }
                map[key] = s
            }
            return map
        default:
            throw SafeTensorsError.invalidMetadata("is \(value.summary), expected an object of strings")
        }
    }

    static func parseEntry(named name: String, _ value: HeaderValue, dataByteCount: Int) throws -> Entry {
        func invalid(_ reason: String) -> SafeTensorsError { .invalidEntry(name: name, reason: reason) }
        guard case .object(let members) = value else {
            throw invalid("entry is \(value.summary), expected an object with dtype, shape and data_offsets")
        }
        // Keys are unique (the parser rejects duplicates); unknown keys are ignored.
        let fields = Dictionary(members, uniquingKeysWith: { first, _ in first })
        func field(_ key: String) throws -> HeaderValue {
            guard let v = fields[key] else { throw invalid("missing \"\(key)\"") }
            return v
        }

        let dtypeValue = try field("dtype")
        guard case .string(let code) = dtypeValue else { throw invalid("\"dtype\" is \(dtypeValue.summary), expected a string") }
        guard let dtype = SafeTensorsDType(rawValue: code) else { throw SafeTensorsError.unknownDType(name: name, dtype: code) }

        let shapeValue = try field("shape")
        guard case .array(let extents) = shapeValue else { throw invalid("\"shape\" is \(shapeValue.summary), expected an array of integers") }
        var shape: [Int] = []
        shape.reserveCapacity(extents.count)
        for (axis, extent) in extents.enumerated() {
            guard case .integer(let n) = extent, n >= 0 else {
                throw SafeTensorsError.invalidShape(name: name, reason: "extent \(axis) is \(extent.summary), expected a non-negative integer")
            }
            shape.append(n)
        }
        // Bounding the product of the non-zero extents keeps every partial
        // product in range, so code that multiplies extents in any order
        // (element counts, strides) cannot overflow on this shape.
        var nonZeroBytes = dtype.byteSize
        for n in shape where n != 0 {
            let (p, overflow) = nonZeroBytes.multipliedReportingOverflow(by: n)
            guard !overflow else {
                throw SafeTensorsError.invalidShape(name: name, reason: "\(shape) of \(code) is more bytes than Int can count")
            }
            nonZeroBytes = p
        }
        let byteCount = shape.contains(0) ? 0 : nonZeroBytes

        let offsetsValue = try field("data_offsets")
        guard case .array(let offsets) = offsetsValue else {
            throw invalid("\"data_offsets\" is \(offsetsValue.summary), expected [begin, end]")
        }
        func offset(_ i: Int, _ label: String) throws -> Int {
            guard case .integer(let n) = offsets[i], n >= 0 else {
                throw SafeTensorsError.invalidDataOffsets(name: name, reason: "\(label) is \(offsets[i].summary), expected a non-negative integer")
            }
            return n
        }
        guard offsets.count == 2 else {
            throw SafeTensorsError.invalidDataOffsets(name: name, reason: "has \(offsets.count) values, expected [begin, end]")
        }
        let begin = try offset(0, "begin"), end = try offset(1, "end")
        guard begin <= end else {
            throw SafeTensorsError.invalidDataOffsets(name: name, reason: "begin \(begin) is after end \(end)")
        }
        guard end <= dataByteCount else {
            throw SafeTensorsError.invalidDataOffsets(name: name, reason: "end \(end) is beyond the \(dataByteCount)-byte data section")
        }
        guard end - begin == byteCount else {
            throw SafeTensorsError.byteCountMismatch(name: name, expected: byteCount, actual: end - begin)
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Throws when two non-empty byte ranges intersect.
    static func checkDisjoint(_ entries: [Entry]) throws {
        let sorted = entries.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var previous: Entry?
        // Accepted ranges are disjoint, so the last non-empty one has the largest end.
        for e in sorted where e.begin < e.end {
            if let p = previous, e.begin < p.end {
                throw SafeTensorsError.overlappingTensors(
                    first: p.name, second: e.name, reason: "bytes [\(p.begin), \(p.end)) and [\(e.begin), \(e.end))")
            }
            previous = e
        }
    }

    /// Copies one tensor out of its (already size-checked) byte range.
    static func loadTensor(_ e: Entry, from bytes: UnsafeRawBufferPointer) throws -> Tensor {
        let n = bytes.count / e.dtype.byteSize
        switch e.dtype {
        case .F32, .F16, .BF16, .I32, .I64:
            return try Tensor(rawBytes: bytes, shape: e.shape, dtype: e.dtype.tensorDType)
        case .BOOL:
            if bytes.allSatisfy({ $0 <= 1 }) { return try Tensor(rawBytes: bytes, shape: e.shape, dtype: .bool) }
            return try Tensor(bytes.map { $0 != 0 }, shape: e.shape)
        case .U8:
            return try Tensor(bytes.map { Int32($0) }, shape: e.shape)
        case .I8:
            return try Tensor(bytes.map { Int32(Int8(bitPattern: $0)) }, shape: e.shape)
        case .U16:
            let values = (0..<n).map { Int32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            return try Tensor(values, shape: e.shape)
        case .F64:
            let values = (0..<n).map {
                Float(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))))
            }
            return try Tensor(values, shape: e.shape, dtype: .float32)
        }
    }

    /// The offset of the first byte that starts an invalid UTF-8 sequence, or nil.
    static func firstInvalidUTF8Offset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}

private func hex(_ byte: UInt8) -> String {
    let s = String(byte, radix: 16, uppercase: true)
    return byte < 16 ? "0" + s : s
}

// MARK: - Strict JSON

/// A JSON value from a safetensors header. Integers that fit `Int` are kept
/// exactly; any other number keeps its text, for error messages.
enum HeaderValue {
    case object([(key: String, value: HeaderValue)])
    case array([HeaderValue])
    case string(String)
    case integer(Int)
    case otherNumber(String)
    case bool(Bool)
    case null

    /// The value as an error message shows it.
    var summary: String {
        switch self {
        case .object: "an object"
        case .array(let a): "an array of \(a.count) values"
        case .string(let s): "the string \(SafeTensors.quoted(s))"
        case .integer(let n): "\(n)"
        case .otherNumber(let text): text.count > 40 ? String(text.prefix(40)) + "…" : text
        case .bool(let b): "\(b)"
        case .null: "null"
        }
    }
}

/// RFC 8259 JSON over bytes already known to be valid UTF-8, without
/// extensions: no comments, trailing commas, NaN, leading zeros or lone
/// surrogates; duplicate object keys are an error; nesting is bounded by
/// ``SafeTensors/maxJSONDepth``. Every failure throws ``SafeTensorsError/invalidHeader(_:)``
/// with the byte offset.
struct HeaderJSONParser {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses one JSON value surrounded by optional whitespace (the format pads with spaces).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> HeaderValue {
        var parser = HeaderJSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("\(parser.currentDescription) after the JSON value") }
        return value
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private var currentDescription: String {
        guard let c = current else { return "end of header" }
        return (0x20..<0x7F).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(hex(c))"
    }

    private func error(_ message: String) -> SafeTensorsError {
        .invalidHeader("JSON: \(message) at byte \(position)")
    }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard current == byte else { throw error("expected \(what), found \(currentDescription)") }
        position += 1
    }

    /// `depth` is the number of arrays and objects that enclose the value.
    private mutating func parseValue(depth: Int) throws -> HeaderValue {
        guard let c = current else { throw error("expected a value, found end of header") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("expected a value, found \(currentDescription)")
        }
    }

    private mutating func checkDepth(_ depth: Int) throws {
        guard depth <= SafeTensors.maxJSONDepth else {
            throw error("arrays and objects nest deeper than \(SafeTensors.maxJSONDepth)")
        }
    }

    private mutating func parseObject(depth: Int) throws -> HeaderValue {
        try checkDepth(depth)
        position += 1  // {
        var members: [(key: String, value: HeaderValue)] = []
        var keys = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a string key, found \(currentDescription)") }
            let keyStart = position
            let key = try parseString()
            guard keys.insert(key).inserted else {
                throw SafeTensorsError.invalidHeader("JSON: duplicate key \(SafeTensors.quoted(key)) at byte \(keyStart)")
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            members.append((key, try parseValue(depth: depth)))
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}'")
            return .object(members)
        }
    }

    private mutating func parseArray(depth: Int) throws -> HeaderValue {
        try checkDepth(depth)
        position += 1  // [
        var elements: [HeaderValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']'")
            return .array(elements)
        }
    }

    private mutating func parseLiteral(_ word: StaticString) throws {
        let start = position
        let count = word.utf8CodeUnitCount
        guard bytes.count - position >= count,
              (0..<count).allSatisfy({ bytes[position + $0] == word.utf8Start[$0] }) else {
            throw error("expected \(word)")
        }
        position = start + count
    }

    /// Integers that fit `Int` become `.integer`; fractions, exponents and
    /// out-of-range integers become `.otherNumber` with their text.
    private mutating func parseNumber() throws -> HeaderValue {
        let start = position
        let negative = current == UInt8(ascii: "-")
        if negative { position += 1 }
        guard let first = current, isDigit(first) else { throw error("expected a digit, found \(currentDescription)") }
        var value = 0
        var overflow = false
        if first == UInt8(ascii: "0") {
            position += 1
            if let c = current, isDigit(c) { throw error("number with a leading zero") }
        } else {
            while let c = current, isDigit(c) {
                let digit = Int(c - UInt8(ascii: "0"))
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (next, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
                overflow = overflow || o1 || o2
                value = next
                position += 1
            }
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            position += 1
            try skipDigits("a digit after '.'")
            isInteger = false
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            try skipDigits("a digit in the exponent")
            isInteger = false
        }
        if isInteger && !overflow { return .integer(value) }
        return .otherNumber(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private mutating func skipDigits(_ what: String) throws {
        guard let c = current, isDigit(c) else { throw error("expected \(what), found \(currentDescription)") }
        while let c = current, isDigit(c) { position += 1 }
    }

    /// Parses a string starting at its opening quote. Raw bytes are copied
    /// as they are: the caller has checked the whole header is valid UTF-8,
    /// and no byte of a multi-byte sequence can be a quote or a backslash.
    private mutating func parseString() throws -> String {
        position += 1  // "
        var utf8: [UInt8] = []
        while true {
            guard let c = current else { throw error("unterminated string") }
            switch c {
            case UInt8(ascii: "\""):
                position += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                position += 1
                try parseEscape(into: &utf8)
            case 0x00..<0x20:
                throw error("unescaped control character 0x\(hex(c)) in a string")
            default:
                utf8.append(c)
                position += 1
            }
        }
    }

    /// Parses the escape after a backslash and appends its UTF-8.
    private mutating func parseEscape(into utf8: inout [UInt8]) throws {
        guard let e = current else { throw error("unterminated string") }
        position += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try parseHex4())
            if (0xD800..<0xDC00).contains(scalar) {
                guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("high surrogate \\u\(String(scalar, radix: 16)) without a low surrogate")
                }
                position += 2
                let low = UInt32(try parseHex4())
                guard (0xDC00..<0xE000).contains(low) else {
                    throw error("high surrogate \\u\(String(scalar, radix: 16)) followed by \\u\(String(low, radix: 16))")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw error("lone low surrogate \\u\(String(scalar, radix: 16))")
            }
            guard let s = Unicode.Scalar(scalar) else { throw error("invalid code point \(scalar)") }
            utf8.append(contentsOf: String(Character(s)).utf8)
        default:
            position -= 1
            throw error("invalid escape: \(currentDescription) after a backslash")
        }
    }

    private mutating func parseHex4() throws -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let c = current else { throw error("unterminated \\u escape") }
            let digit: UInt16
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt16(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt16(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt16(c - UInt8(ascii: "A") + 10)
            default: throw error("expected a hex digit, found \(currentDescription)")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }
}
