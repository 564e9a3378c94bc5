import Foundation
import Tensors
import TestSupport
import XCTest

// MARK: - Helpers

/// A safetensors file from a header string and data bytes. The length prefix
/// is the header's UTF-8 byte count unless `declaredLength` overrides it.
private func file(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    let h = Array(header.utf8)
    var bytes = withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { Array($0) }
    bytes += h
    bytes += data
    return Data(bytes)
}

/// A header holding one tensor entry, the fields given as raw JSON.
private func oneEntry(_ name: String = "t", dtype: String = "\"F32\"", shape: String = "[2]",
                      offsets: String = "[0,8]") -> String {
    "{\"\(name)\":{\"dtype\":\(dtype),\"shape\":\(shape),\"data_offsets\":\(offsets)}}"
}

/// The error reading `data` throws; fails the test when it throws nothing or another type.
private func readError(_ data: Data, file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
    do {
        _ = try SafeTensors.read(from: data)
        XCTFail("read succeeded on a hostile file", file: file, line: line)
    } catch let error as SafeTensorsError {
        return error
    } catch {
        XCTFail("threw \(type(of: error)) instead of SafeTensorsError: \(error)", file: file, line: line)
    }
    return nil
}

/// Asserts that reading throws ``SafeTensorsError/invalidHeader(_:)`` whose message contains `fragment`.
private func assertInvalidHeader(_ data: Data, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let error = readError(data, file: file, line: line) else { return }
    guard case .invalidHeader(let message) = error else {
        return XCTFail("expected invalidHeader, got \(error)", file: file, line: line)
    }
    XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
}

private func rawBytes(_ t: Tensor) -> [UInt8] { t.withUnsafeBytes { Array($0) } }

private func assertSameTensors(_ a: [String: Tensor], _ b: [String: Tensor], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(Set(a.keys), Set(b.keys), file: file, line: line)
    for (name, x) in a {
        guard let y = b[name] else { continue }
        XCTAssertEqual(x.dtype, y.dtype, name, file: file, line: line)
        XCTAssertEqual(x.shape, y.shape, name, file: file, line: line)
        XCTAssertEqual(rawBytes(x), rawBytes(y), name, file: file, line: line)
    }
}

private func temporaryURL(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("SafeTensorsTests-\(UUID().uuidString)-\(name)")
}

final class SafeTensorsTests: XCTestCase {
    // MARK: Round trips

    /// One tensor per writable dtype, with edge values, at ranks 0, 1 and 2, plus empty shapes.
    private func everyDTypeTensors() throws -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        let floats: [Float] = [0, -0.0, 1.5, -2.25, .infinity, -.infinity, .nan, 65504, 1e-7, 3.0e38, .leastNonzeroMagnitude, 7]
        let ints: [Int64] = [0, 1, -1, 42, -42, Int64(Int32.max), Int64(Int32.min), 7, 8, 9, 10, 11]
        for dtype in DType.allCases {
            let values: Tensor
            switch dtype {
            case .float32, .float16, .bfloat16: values = try Tensor(floats, shape: [3, 4], dtype: dtype)
            case .int32: values = try Tensor(ints, shape: [3, 4], dtype: .int32)
            case .int64: values = try Tensor(ints.map { $0 &* 3_000_000_000 }, shape: [3, 4], dtype: .int64)
            case .bool: values = try Tensor(ints.map { $0 % 3 == 0 }, shape: [3, 4])
            }
            tensors["\(dtype).matrix"] = values
            tensors["\(dtype).scalar"] = Tensor(scalar: Int64(5), dtype: dtype)
            tensors["\(dtype).empty"] = Tensor.zeros([0], dtype: dtype)
            tensors["\(dtype).empty3d"] = Tensor.zeros([2, 0, 3], dtype: dtype)
        }
        tensors["int64.extremes"] = try Tensor([Int64.min, Int64.max, -1], shape: [3])
        return tensors
    }

    func testRoundTripEveryDTypeInMemory() throws {
        let tensors = try everyDTypeTensors()
        let metadata = ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t bell \u{7} é 😀", "": "empty key"]
        let (read, readMetadata) = try SafeTensors.read(from: SafeTensors.encode(tensors, metadata: metadata))
        assertSameTensors(tensors, read)
        XCTAssertEqual(readMetadata, metadata)
        XCTAssertEqual(read["bfloat16.scalar"]?.floats, [5])
        XCTAssertEqual(read["float32.matrix"]?.floats[2], 1.5)
    }

    func testRoundTripThroughAFile() throws {
        let url = temporaryURL("roundtrip.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let tensors = try everyDTypeTensors()
        try SafeTensors.write(tensors, metadata: ["step": "12"], to: url)
        let (read, metadata) = try SafeTensors.read(contentsOf: url)
        assertSameTensors(tensors, read)
        XCTAssertEqual(metadata, ["step": "12"])
    }

    func testRoundTripWithoutTensorsOrMetadata() throws {
        let data = try SafeTensors.encode([:])
        XCTAssertEqual(Array(data), [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let (tensors, metadata) = try SafeTensors.read(from: data)
        XCTAssertTrue(tensors.isEmpty)
        XCTAssertTrue(metadata.isEmpty)
    }

    func testRoundTripOfUnusualNames() throws {
        let names = ["", " ", "a.b.c", "quote\"", "back\\slash", "ctl\u{1}\u{1f}", "ünï", "😀", "model.layers.0.mlp.up_proj.weight"]
        var tensors: [String: Tensor] = [:]
        for (i, name) in names.enumerated() { tensors[name] = Tensor([Float(i)]) }
        let (read, _) = try SafeTensors.read(from: SafeTensors.encode(tensors))
        assertSameTensors(tensors, read)
    }

    func testEncodingIsDeterministicAndPadded() throws {
        var a: [String: Tensor] = [:], b: [String: Tensor] = [:]
        let names = (0..<20).map { "t\(($0 * 7) % 20)" + String(repeating: "x", count: $0 % 5) }
        for name in names { a[name] = Tensor([Float(name.count)]) }
        for name in names.reversed() { b[name] = Tensor([Float(name.count)]) }
        XCTAssertEqual(try SafeTensors.encode(a), try SafeTensors.encode(b))

        for length in 0..<16 {
            let data = try SafeTensors.encode([String(repeating: "n", count: length): Tensor([Float(1)])])
            let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            XCTAssertEqual(headerLength % 8, 0, "name length \(length)")
            XCTAssertEqual(data.count, 8 + headerLength + 4)
        }
    }

    /// The whole file for a known small case, byte by byte (written out by hand).
    func testWrittenBytesOfAKnownCase() throws {
        let tensors = ["b": Tensor([Float(1), -2]), "a": Tensor([true, false])]
        let data = try SafeTensors.encode(tensors, metadata: ["k": "v"])
        // Header keys sorted by name; data by element size (F32 "b" before BOOL "a").
        let header = #"{"__metadata__":{"k":"v"},"# + #""a":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"# + "  "  // 134 bytes + 2 spaces = 136
        var expected: [UInt8] = [0x88, 0, 0, 0, 0, 0, 0, 0]  // 136, little-endian
        expected += Array(header.utf8)
        expected += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]  // 1.0f, -2.0f
        expected += [0x01, 0x00]  // true, false
        XCTAssertEqual(Array(data), expected)
    }

    func testWritingTheMetadataKeyAsATensorNameThrows() {
        XCTAssertThrowsError(try SafeTensors.encode(["__metadata__": Tensor([Float(1)])])) { error in
            XCTAssertEqual(error as? SafeTensorsError, .invalidTensorName("__metadata__"))
        }
    }

    func testFileErrorsAreTyped() {
        let missing = temporaryURL("does-not-exist.safetensors")
        XCTAssertThrowsError(try SafeTensors.read(contentsOf: missing)) { error in
            guard case .unreadableFile(let path, _) = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, missing.path)
        }
        let unwritable = missing.appendingPathComponent("no-such-directory/x.safetensors")
        XCTAssertThrowsError(try SafeTensors.write([:], to: unwritable)) { error in
            guard case .unwritableFile = error as? SafeTensorsError else { return XCTFail("\(error)") }
        }
    }

    // MARK: Reading files written by others

    /// Every value of a file written by Python's `safetensors` package
    /// (scripts/make_safetensors_fixture.py), against the JSON written beside it.
    func testReadsPythonWrittenFixture() throws {
        let (tensors, metadata) = try SafeTensors.read(contentsOf: fixtureURL("safetensors/python_written.safetensors"))
        let expected = try JSONDecoder().decode(
            PythonFixture.self, from: Data(contentsOf: fixtureURL("safetensors/python_written.json")))
        XCTAssertEqual(metadata, expected.metadata)
        XCTAssertEqual(Set(tensors.keys), Set(expected.tensors.map(\.name)))
        let dtypeRead: [String: DType] = [
            "F32": .float32, "F16": .float16, "I32": .int32, "I64": .int64, "BOOL": .bool,
            "U8": .int32, "I8": .int32, "U16": .int32, "F64": .float32,
        ]
        for entry in expected.tensors {
            let t = try XCTUnwrap(tensors[entry.name], entry.name)
            XCTAssertEqual(t.dtype, dtypeRead[entry.dtype], entry.name)
            XCTAssertEqual(t.shape, entry.shape, entry.name)
            switch t.dtype {
            case .float32, .float16, .bfloat16:
                // F64 rounds to the nearest Float; the other values are exact.
                XCTAssertEqual(t.floats, entry.values.map { Float($0.number) }, entry.name)
            case .int32, .int64:
                XCTAssertEqual(t.int64s, entry.values.map { Int64($0.number) }, entry.name)
            case .bool:
                XCTAssertEqual(t.scalars(as: Bool.self), entry.values.map(\.bool), entry.name)
            }
        }
        XCTAssertEqual(tensors.count, 10)
    }

    /// A known F64 value that does not fit Float: it rounds to nearest, and
    /// out-of-range magnitudes become infinities.
    func testF64RoundsToNearestFloat() throws {
        let doubles: [Double] = [1.0 / 3.0, 1e300, -1e300, .nan, 1 + 0x1p-24]
        let data = doubles.flatMap { d in withUnsafeBytes(of: d.bitPattern.littleEndian) { Array($0) } }
        let (tensors, _) = try SafeTensors.read(from: file(oneEntry(dtype: "\"F64\"", shape: "[5]", offsets: "[0,40]"), data: data))
        let t = try XCTUnwrap(tensors["t"])
        XCTAssertEqual(t.dtype, .float32)
        let f = t.floats
        XCTAssertEqual(f[0], Float(1.0 / 3.0))
        XCTAssertEqual(f[1], .infinity)
        XCTAssertEqual(f[2], -.infinity)
        XCTAssertTrue(f[3].isNaN)
        XCTAssertEqual(f[4], 1)  // a tie, rounded to even
    }

    func testBoolBytesOtherThanZeroAreTrue() throws {
        let (tensors, _) = try SafeTensors.read(from: file(oneEntry(dtype: "\"BOOL\"", shape: "[3]", offsets: "[0,3]"), data: [0, 2, 255]))
        let t = try XCTUnwrap(tensors["t"])
        XCTAssertEqual(t.scalars(as: Bool.self), [false, true, true])
        XCTAssertEqual(rawBytes(t), [0, 1, 1])
    }

    func testToleratedLayouts() throws {
        // Gaps, trailing data bytes, padding, leading whitespace, unknown entry keys, escapes, null metadata.
        let header = #" { "__metadata__" : null , "a\u00e9\ud83d\ude00" : { "dtype" : "I8", "shape" : [ 2 ], "#
            + #""data_offsets" : [ 1 , 3 ], "extra": {"x": [true, null, 1.5e3]} }, "z": {"dtype":"U8","shape":[0],"#
            + #""data_offsets":[2,2]} }    "#
        let (tensors, metadata) = try SafeTensors.read(from: file(header, data: [9, 0xFF, 0x80, 7, 7]))
        XCTAssertTrue(metadata.isEmpty)
        XCTAssertEqual(tensors["aé😀"]?.int64s, [-1, -128])
        XCTAssertEqual(tensors["z"]?.shape, [0])
    }

    // MARK: Hostile files: the length prefix

    func testFileShorterThanTheLengthPrefix() {
        for n in 0..<8 {
            XCTAssertEqual(readError(Data(repeating: 0, count: n)), .fileTooShort(byteCount: n))
        }
    }

    func testHeaderLengthBeyondTheFile() {
        XCTAssertEqual(readError(file("{}", declaredLength: 3)), .headerLengthOutOfRange(declared: 3, available: 2))
        XCTAssertEqual(readError(file("{}", data: [1, 2], declaredLength: 100)), .headerLengthOutOfRange(declared: 100, available: 4))
    }

    func testHeaderLengthAbsurdOrBeyondInt() {
        for declared: UInt64 in [UInt64.max, 1 << 63, UInt64(Int.max), UInt64(SafeTensors.maxHeaderByteCount) + 1] {
            let error = readError(file("{}", declaredLength: declared))
            XCTAssertEqual(error, .headerLengthOutOfRange(declared: declared, available: 2))
            XCTAssertTrue(error?.description.contains("\(declared)") ?? false)
        }
    }

    // MARK: Hostile files: the header as JSON

    func testHeaderThatIsNotUTF8() {
        assertInvalidHeader(file("{\"\u{FF}\":1}").withPatchedByte(at: 10, to: 0xFF), "not valid UTF-8")
        // An overlong encoding of '/', and an encoded surrogate.
        assertInvalidHeader(Data([6, 0, 0, 0, 0, 0, 0, 0] + Array("{\"".utf8) + [0xC0, 0xAF] + Array("\"}".utf8)), "byte 2 is 0xC0")
        assertInvalidHeader(Data([7, 0, 0, 0, 0, 0, 0, 0] + Array("{\"".utf8) + [0xED, 0xA0, 0x80] + Array("\"}".utf8)), "not valid UTF-8")
        assertInvalidHeader(Data([3, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8) + [0x80]), "byte 2 is 0x80")
    }

    func testHeaderThatIsNotJSON() {
        let cases: [(String, String)] = [
            ("", "found end of header"),
            ("{", "expected a string key"),
            ("{\"a\":}", "expected a value, found '}'"),
            ("{\"a\":1,}", "expected a string key, found '}'"),
            ("{} x", "'x' after the JSON value"),
            ("{}{}", "'{' after the JSON value"),
            ("{\"a\":NaN}", "expected a value, found 'N'"),
            ("{\"a\":01}", "leading zero"),
            ("{\"a\":1.}", "a digit after '.'"),
            ("{\"a\":1e}", "a digit in the exponent"),
            ("{\"a\":-}", "expected a digit"),
            ("{\"a\":tru}", "expected true"),
            ("{\"a\":nul", "expected null"),
            ("{'a':1}", "expected a string key, found '''"),
            ("{\"a\" 1}", "expected ':'"),
            ("{\"a\":[1 2]}", "expected ',' or ']'"),
            ("{\"a\":1 \"b\":2}", "expected ',' or '}'"),
            ("{\"a", "unterminated string"),
            ("{\"a\\", "unterminated string"),
            ("{\"\\x\":1}", "invalid escape: 'x'"),
            ("{\"\\u12g4\":1}", "expected a hex digit, found 'g'"),
            ("{\"\\ud800\":1}", "without a low surrogate"),
            ("{\"\\ud800\\u0041\":1}", "followed by"),
            ("{\"\\udc00\":1}", "lone low surrogate"),
            ("{\"a\tb\":1}", "unescaped control character 0x09"),
            ("/* c */{}", "expected a value, found '/'"),
            ("\u{FEFF}{}", "found byte 0xEF"),
        ]
        for (header, fragment) in cases {
            assertInvalidHeader(file(header), fragment)
        }
    }

    func testHeaderThatIsNotAnObject() {
        for header in ["[]", "\"x\"", "1", "null", "true"] {
            XCTAssertEqual(readError(file(header)), .invalidHeader("the top level is not a JSON object"), header)
        }
    }

    func testDuplicateKeys() {
        assertInvalidHeader(file(#"{"t":{},"t":{}}"#), "duplicate key \"t\" at byte 8")
        assertInvalidHeader(file(#"{"__metadata__":{"k":"1","k":"2"}}"#), "duplicate key \"k\"")
    }

    func testNestingDeeperThanTheLimit() {
        // Within the limit is fine (ignored entry field); beyond it throws; far beyond it must not overflow the stack.
        let ok = String(repeating: "[", count: SafeTensors.maxJSONDepth - 2) + String(repeating: "]", count: SafeTensors.maxJSONDepth - 2)
        XCTAssertNoThrow(try SafeTensors.read(from: file(#"{"t":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":"# + ok + "}}", data: [0, 0, 0, 0])))
        let deep = String(repeating: "[", count: SafeTensors.maxJSONDepth - 1)
        assertInvalidHeader(file(#"{"t":{"x":"# + deep), "nest deeper than \(SafeTensors.maxJSONDepth)")
        assertInvalidHeader(file(String(repeating: "[", count: 100_000)), "nest deeper")
        assertInvalidHeader(file(String(repeating: "{\"a\":", count: 20_000)), "nest deeper")
    }

    // MARK: Hostile files: fields

    func testMetadataThatIsNotAStringMap() {
        XCTAssertEqual(readError(file(#"{"__metadata__":{"a":"x","b":1}}"#)),
                       .invalidMetadata("value of \"b\" is 1, expected a string"))
        XCTAssertEqual(readError(file(#"{"__metadata__":["a"]}"#)),
                       .invalidMetadata("is an array of 1 values, expected an object of strings"))
        XCTAssertEqual(readError(file(#"{"__metadata__":"a"}"#)),
                       .invalidMetadata("is the string \"a\", expected an object of strings"))
        XCTAssertEqual(readError(file(#"{"__metadata__":{"a":null}}"#)),
                       .invalidMetadata("value of \"a\" is null, expected a string"))
    }

    func testEntryMissingAField() {
        XCTAssertEqual(readError(file(#"{"t":{"shape":[],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])),
                       .invalidEntry(name: "t", reason: "missing \"dtype\""))
        XCTAssertEqual(readError(file(#"{"t":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])),
                       .invalidEntry(name: "t", reason: "missing \"shape\""))
        XCTAssertEqual(readError(file(#"{"t":{"dtype":"F32","shape":[]}}"#, data: [0, 0, 0, 0])),
                       .invalidEntry(name: "t", reason: "missing \"data_offsets\""))
    }

    func testEntryFieldsOfTheWrongJSONType() {
        XCTAssertEqual(readError(file(#"{"t":[1]}"#)),
                       .invalidEntry(name: "t", reason: "entry is an array of 1 values, expected an object with dtype, shape and data_offsets"))
        XCTAssertEqual(readError(file(oneEntry(dtype: "1"))),
                       .invalidEntry(name: "t", reason: "\"dtype\" is 1, expected a string"))
        XCTAssertEqual(readError(file(oneEntry(shape: "\"[2]\""))),
                       .invalidEntry(name: "t", reason: "\"shape\" is the string \"[2]\", expected an array of integers"))
        XCTAssertEqual(readError(file(oneEntry(offsets: "{}"))),
                       .invalidEntry(name: "t", reason: "\"data_offsets\" is an object, expected [begin, end]"))
    }

    func testUnknownDTypeIsNamed() {
        for code in ["U32", "f32", "F8_E4M3", ""] {
            let error = readError(file(oneEntry("w", dtype: "\"\(code)\"")))
            XCTAssertEqual(error, .unknownDType(name: "w", dtype: code))
            XCTAssertTrue(error?.description.contains("unknown dtype \"\(code)\"") ?? false, error?.description ?? "")
        }
    }

    func testNegativeOrNonIntegerExtents() {
        let cases: [(String, String)] = [
            ("[-1]", "extent 0 is -1"), ("[2,-3]", "extent 1 is -3"), ("[1.5]", "extent 0 is 1.5"),
            ("[2e0]", "extent 0 is 2e0"), ("[true]", "extent 0 is true"), ("[null]", "extent 0 is null"),
            ("[\"2\"]", "extent 0 is the string \"2\""), ("[[2]]", "extent 0 is an array of 1 values"),
            ("[99999999999999999999]", "extent 0 is 99999999999999999999"),
            ("[-9223372036854775809]", "extent 0 is -9223372036854775809"),
        ]
        for (shape, fragment) in cases {
            XCTAssertEqual(readError(file(oneEntry(shape: shape))),
                           .invalidShape(name: "t", reason: fragment + ", expected a non-negative integer"), shape)
        }
    }

    func testShapesWhoseSizeOverflows() {
        let max = Int.max
        for shape in ["[\(max)]", "[\(max / 4 + 1)]", "[4294967296,4294967296]", "[\(max),\(max),0]", "[0,3037000500,3037000500]"] {
            guard case .invalidShape(let name, let reason) = readError(file(oneEntry(shape: shape, offsets: "[0,0]"))) else {
                XCTFail(shape); continue
            }
            XCTAssertEqual(name, "t")
            XCTAssertTrue(reason.contains("more bytes than Int can count"), reason)
        }
        // A large but representable empty shape is fine.
        XCTAssertNoThrow(try SafeTensors.read(from: file(oneEntry(shape: "[0,\(max / 4)]", offsets: "[0,0]"))))
    }

    func testDataOffsetsThatAreNotTwoNonNegativeIntegers() {
        let cases: [(String, String)] = [
            ("[]", "has 0 values, expected [begin, end]"), ("[0]", "has 1 values, expected [begin, end]"),
            ("[0,4,8]", "has 3 values, expected [begin, end]"),
            ("[-1,7]", "begin is -1, expected a non-negative integer"),
            ("[0,8.0]", "end is 8.0, expected a non-negative integer"),
            ("[false,8]", "begin is false, expected a non-negative integer"),
            ("[0,18446744073709551616]", "end is 18446744073709551616, expected a non-negative integer"),
        ]
        for (offsets, reason) in cases {
            XCTAssertEqual(readError(file(oneEntry(offsets: offsets), data: Array(repeating: 0, count: 8))),
                           .invalidDataOffsets(name: "t", reason: reason), offsets)
        }
    }

    func testDataOffsetsOutOfOrderOrBeyondTheData() {
        XCTAssertEqual(readError(file(oneEntry(offsets: "[8,0]"), data: Array(repeating: 0, count: 8))),
                       .invalidDataOffsets(name: "t", reason: "begin 8 is after end 0"))
        XCTAssertEqual(readError(file(oneEntry(offsets: "[0,8]"), data: Array(repeating: 0, count: 7))),
                       .invalidDataOffsets(name: "t", reason: "end 8 is beyond the 7-byte data section"))
        XCTAssertEqual(readError(file(oneEntry(offsets: "[\(Int.max - 7),\(Int.max)]"), data: [0])),
                       .invalidDataOffsets(name: "t", reason: "end \(Int.max) is beyond the 1-byte data section"))
    }

    func testByteRangeOfTheWrongSize() {
        let data = [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(readError(file(oneEntry(shape: "[2]", offsets: "[0,4]"), data: data)),
                       .byteCountMismatch(name: "t", expected: 8, actual: 4))
        XCTAssertEqual(readError(file(oneEntry(dtype: "\"BF16\"", shape: "[2,2]", offsets: "[0,16]"), data: data)),
                       .byteCountMismatch(name: "t", expected: 8, actual: 16))
        XCTAssertEqual(readError(file(oneEntry(shape: "[2,0]", offsets: "[0,8]"), data: data)),
                       .byteCountMismatch(name: "t", expected: 0, actual: 8))
        XCTAssertEqual(readError(file(oneEntry(shape: "[]", offsets: "[0,0]"), data: data)),
                       .byteCountMismatch(name: "t", expected: 4, actual: 0))
    }

    func testOverlappingByteRanges() {
        let data = [UInt8](repeating: 0, count: 16)
        func header(_ a: String, _ b: String) -> String {
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":\#(a)},"b":{"dtype":"F32","shape":[2],"data_offsets":\#(b)}}"#
        }
        XCTAssertEqual(readError(file(header("[0,8]", "[4,12]"), data: data)),
                       .overlappingTensors(first: "a", second: "b", reason: "bytes [0, 8) and [4, 12)"))
        XCTAssertEqual(readError(file(header("[4,12]", "[0,8]"), data: data)),
                       .overlappingTensors(first: "b", second: "a", reason: "bytes [0, 8) and [4, 12)"))
        XCTAssertEqual(readError(file(header("[8,16]", "[8,16]"), data: data)),
                       .overlappingTensors(first: "a", second: "b", reason: "bytes [8, 16) and [8, 16)"))
        // Disjoint neighbours, and an empty range inside another tensor's bytes, are fine.
        XCTAssertNoThrow(try SafeTensors.read(from: file(header("[8,16]", "[0,8]"), data: data)))
        let withEmpty = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
        XCTAssertNoThrow(try SafeTensors.read(from: file(withEmpty, data: data)))
    }

    func testOverlapAmongManyTensorsIsFound() {
        // Ranges listed out of order; only [40, 48) and [44, 52) collide.
        let ranges = [(24, 32), (0, 8), (44, 52), (8, 16), (40, 48), (16, 24)]
        let entries = ranges.enumerated().map { i, r in
            "\"t\(i)\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[\(r.0),\(r.1)]}"
        }
        XCTAssertEqual(readError(file("{" + entries.joined(separator: ",") + "}", data: Array(repeating: 0, count: 52))),
                       .overlappingTensors(first: "t4", second: "t2", reason: "bytes [40, 48) and [44, 52)"))
    }

    func testHostileNamesAreShortenedInMessages() {
        let name = String(repeating: "n", count: 10_000)
        let message = readError(file(oneEntry(name, dtype: "\"X\"")))?.description ?? ""
        XCTAssertLessThan(message.count, 400)
        XCTAssertTrue(message.contains("\"X\""), message)
    }

    // MARK: Hostile sample files

    /// Every file under Fixtures/safetensors/hostile (hand-made cases and any
    /// inputs the fuzzer once crashed on) throws a SafeTensorsError.
    func testHostileSampleFilesThrow() throws {
        let folder = fixtureURL("safetensors/hostile")
        let urls = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "safetensors" }
        XCTAssertFalse(urls.isEmpty)
        for url in urls {
            XCTAssertThrowsError(try SafeTensors.read(contentsOf: url), url.lastPathComponent) { error in
                XCTAssertTrue(error is SafeTensorsError, "\(url.lastPathComponent): \(error)")
            }
        }
    }
}

/// python_written.json: what the Python script wrote, value by value.
private struct PythonFixture: Decodable {
    struct Entry: Decodable {
        let name: String, dtype: String, shape: [Int], values: [Scalar]
    }
    /// A JSON number or boolean (the values are exact in Double).
    struct Scalar: Decodable {
        let number: Double, bool: Bool
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) {
                (number, bool) = (b ? 1 : 0, b)
            } else {
                number = try c.decode(Double.self)
                bool = number != 0
            }
        }
    }
    let metadata: [String: String]
    let tensors: [Entry]
}

private extension Data {
    func withPatchedByte(at index: Int, to value: UInt8) -> Data {
        var copy = self
        copy[copy.startIndex + index] = value
        return copy
    }
}
