// Every case under Tests/Fixtures/cases, evaluated through `LossCase` (the code
// behind `mtp loss`) and compared with the float64 NumPy reference
// (scripts/reference/): loss, per-row losses, per-depth losses, gradients, and
// the error substring of invalid cases.

import LossCases
import Foundation
import Losses
import MTP
import Tensors
import TestSupport
import XCTest

/// An `.expected.safetensors` file read in float64 without going through `SafeTensors`
/// (which rounds F64 to Float32), so the comparison keeps the reference's precision.
struct ExpectedCase {
    var tensors: [String: (shape: [Int], values: [Double])] = [:]
    var metadata: [String: String] = [:]

    init(contentsOf url: URL) throws {
        let data = try Data(contentsOf: url)
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let body = data.subdata(in: (8 + headerLength)..<data.count)
        for (name, entry) in header {
            if name == "__metadata__" {
                metadata = entry as! [String: String]
                continue
            }
            let e = entry as! [String: Any]
            precondition(e["dtype"] as! String == "F64", "\(url.lastPathComponent): \(name) is not F64")
            let shape = e["shape"] as! [Int], offsets = e["data_offsets"] as! [Int]
            let values = body.subdata(in: offsets[0]..<offsets[1]).withUnsafeBytes { raw in
                (0..<(raw.count / 8)).map { Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian) }
            }
            tensors[name] = (shape, values)
        }
    }

    func tolerance(_ key: String) -> Double { Double(metadata[key]!)! }
}

final class CaseFixtureTests: XCTestCase {
    /// Case names (without `.safetensors`) under Tests/Fixtures/cases.
    private func caseNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: fixtureURL("cases").path)
            .filter { $0.hasSuffix(".safetensors") && !$0.hasSuffix(".expected.safetensors") }
            .map { String($0.dropLast(".safetensors".count)) }
            .sorted()
    }

    func testEveryCaseMatchesTheFloat64Reference() throws {
        let folder = fixtureURL("cases")
        let names = try caseNames()
        XCTAssertGreaterThanOrEqual(names.count, 129, "fixture cases missing from \(folder.path)")

        // Worst relative errors over cases whose floating inputs are all Float32.
        var worstLoss = (0.0, ""), worstGradElement = (0.0, ""), worstGradNorm = (0.0, "")
        var float32Cases = 0
        for name in names {
            let expected = try ExpectedCase(contentsOf: folder.appendingPathComponent("\(name).expected.safetensors"))
            let caseURL = folder.appendingPathComponent("\(name).safetensors")

            if let substring = expected.metadata["error"] {
                do {
                    _ = try LossCase(contentsOf: caseURL).evaluate()
                    XCTFail("\(name): expected an error containing \"\(substring)\", got a result")
                } catch {
                    XCTAssert("\(error)".contains(substring), "\(name): error \"\(error)\" lacks \"\(substring)\"")
                }
                continue
            }

            let lossCase = try LossCase(contentsOf: caseURL)
            let result: LossCase.Result
            do { result = try lossCase.evaluate() } catch {
                XCTFail("\(name): \(error)")
                continue
            }
            let isFloat32 = lossCase.tensors.values.allSatisfy { !$0.dtype.isFloatingPoint || $0.dtype == .float32 }
            if isFloat32 { float32Cases += 1 }
            let rtol = expected.tolerance("rtol"), atol = expected.tolerance("atol")
            let gradRtol = expected.tolerance("grad_rtol"), gradAtol = expected.tolerance("grad_atol")

            // Loss: the sum of the rows for reduction none, whose rows are `loss_rows`.
            let rows = result.loss.floats
            let loss = rows.reduce(0) { $0 + Double($1) }
            let wantLoss = expected.tensors["loss"]!.values[0]
            XCTAssertLessThanOrEqual(abs(loss - wantLoss), atol + rtol * abs(wantLoss), "\(name): loss \(loss) vs \(wantLoss)")
            if isFloat32 {
                let rel = abs(loss - wantLoss) / max(abs(wantLoss), 1e-6)
                if rel > worstLoss.0 { worstLoss = (rel, name) }
            }
            if let wantRows = expected.tensors["loss_rows"] {
                XCTAssertEqual(result.loss.shape, wantRows.shape, "\(name): loss_rows shape")
                if let m = closeness(rows, wantRows.values, rtol: rtol, atol: atol) { XCTFail("\(name): loss_rows \(m)") }
            } else {
                XCTAssertEqual(result.loss.rank, 0, "\(name): a scalar loss was expected")
            }

            if let wantPerDepth = expected.tensors["per_depth"] {
                guard let perDepth = result.perDepth else {
                    XCTFail("\(name): per_depth expected")
                    continue
                }
                if let m = closeness(perDepth, wantPerDepth.values, rtol: rtol, atol: atol) { XCTFail("\(name): per_depth \(m)") }
            } else {
                XCTAssertNil(result.perDepth, "\(name): per_depth not expected")
            }

            // Gradients: an absent expected gradient means absent or all zero.
            for (key, want) in expected.tensors where key.hasPrefix("grad.") {
                let input = String(key.dropFirst("grad.".count))
                guard let got = result.gradients[input] else {
                    XCTAssert(want.values.allSatisfy { $0 == 0 }, "\(name): missing \(key)")
                    continue
                }
                XCTAssertEqual(got.shape, want.shape, "\(name): \(key) shape")
                XCTAssertEqual(got.dtype, .float32, "\(name): \(key) dtype")
                let g = got.floats
                if let m = closeness(g, want.values, rtol: gradRtol, atol: gradAtol) { XCTFail("\(name): \(key) \(m)") }
                if isFloat32 {
                    let scale = want.values.reduce(0) { max($0, abs($1)) }
                    let maxDiff = zip(g, want.values).reduce(0) { max($0, abs(Double($1.0) - $1.1)) }
                    let normRel = scale == 0 ? maxDiff : maxDiff / scale
                    if normRel > worstGradNorm.0 { worstGradNorm = (normRel, "\(name) \(key)") }
                    let elementRel = maxRelativeError(g, want.values, floor: gradAtol)
                    if elementRel > worstGradElement.0 { worstGradElement = (elementRel, "\(name) \(key)") }
                }
            }
            for (input, got) in result.gradients where expected.tensors["grad.\(input)"] == nil {
                XCTAssert(got.floats.allSatisfy { $0 == 0 }, "\(name): unexpected non-zero grad.\(input)")
            }
        }

        print("CaseFixtureTests: \(names.count) cases, \(float32Cases) float32 successes; worst relative error: "
            + "loss \(worstLoss.0) (\(worstLoss.1)), gradient max|Δ|/max|ref| \(worstGradNorm.0) (\(worstGradNorm.1)), "
            + "gradient elementwise |Δ|/max(|ref|, grad_atol) \(worstGradElement.0) (\(worstGradElement.1))")
        // The bar for float32 inputs.
        XCTAssertLessThanOrEqual(worstLoss.0, 1e-5, "loss relative error over float32 cases")
        XCTAssertLessThanOrEqual(worstGradNorm.0, 1e-4, "gradient relative error over float32 cases")
    }

    /// A case file whose header is cut short is bad input: `LossCase(contentsOf:)` throws.
    func testTruncatedHeaderThrows() throws {
        let source = fixtureURL("cases/mtp_masked_logits_bshd.safetensors")
        let data = try Data(contentsOf: source)
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        // The length prefix promises the whole header; keep only half of it.
        let truncated = data.prefix(8 + headerLength / 2)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mtp-truncated-\(UUID().uuidString).safetensors")
        try truncated.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try LossCase(contentsOf: url)) { error in
            XCTAssert(error is SafeTensorsError, "expected a SafeTensorsError, got \(type(of: error)): \(error)")
        }
        // A header cut mid-JSON with a consistent length prefix is malformed too.
        var rewritten = Data()
        let cut = data.subdata(in: 8..<(8 + headerLength / 2))
        withUnsafeBytes(of: UInt64(cut.count).littleEndian) { rewritten.append(contentsOf: $0) }
        rewritten.append(cut)
        try rewritten.write(to: url)
        XCTAssertThrowsError(try LossCase(contentsOf: url))
    }
}
