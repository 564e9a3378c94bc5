// Writing safetensors bytes. The layout is a pure function of the input, so
// the same tensors always give the same file (checkpoints can be diffed and
// hashed).

import Foundation

extension SafeTensors {
    static func encodeFile(_ tensors: [String: Tensor], metadata: [String: String]) throws -> Data {
        if tensors[metadataKey] != nil { throw SafeTensorsError.invalidTensorName(metadataKey) }

        // Names compare by their UTF-8 bytes (code-point order, as Python's
        // `sorted`), not by Swift's normalising `<`.
        func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
        let names = tensors.keys.sorted(by: precedes)
        // Larger elements first: the data section starts 8-aligned and every
        // size is a power of two, so each tensor starts at a multiple of its
        // element size and a zero-copy reader can use the bytes in place.
        let dataOrder = names.sorted { a, b in
            let sa = tensors[a]?.dtype.byteSize ?? 0, sb = tensors[b]?.dtype.byteSize ?? 0
            return sa != sb ? sa > sb : precedes(a, b)
        }
        var ranges: [String: (begin: Int, end: Int)] = [:]
        var dataByteCount = 0
        for name in dataOrder {
            let byteCount = tensors[name].map { $0.count * $0.dtype.byteSize } ?? 0
            ranges[name] = (dataByteCount, dataByteCount + byteCount)
            dataByteCount += byteCount
        }

        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted(by: precedes).map { jsonString($0) + ":" + jsonString(metadata[$0] ?? "") }
            fields.append(jsonString(metadataKey) + ":{" + pairs.joined(separator: ",") + "}")
        }
        for name in names {
            guard let t = tensors[name], let r = ranges[name] else { continue }
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append(jsonString(name) + ":{\"dtype\":\"\(SafeTensorsDType(t.dtype).rawValue)\","
                          + "\"shape\":[\(shape)],\"data_offsets\":[\(r.begin),\(r.end)]}")
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var out = Data(capacity: 8 + header.count + dataByteCount)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for name in dataOrder {
            tensors[name]?.withUnsafeBytes { raw in
                if let base = raw.baseAddress, raw.count > 0 {
                    out.append(base.assumingMemoryBound(to: UInt8.self), count: raw.count)
                }
            }
        }
        return out
    }

    /// `s` as a JSON string literal: quotes, backslashes and control
    /// characters escaped, everything else as UTF-8.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
