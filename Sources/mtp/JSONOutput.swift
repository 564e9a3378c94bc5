import Foundation

/// The `--json` lines of every command: one object built from Foundation values and written
/// by `JSONSerialization`, so strings (paths) are escaped and the line is always valid JSON.
///
/// Numbers go through ``number(_:)``: JSON has no NaN or infinities, so a non-finite value
/// (a diverged loss, say) is written as `null` rather than a bare word a parser rejects.
/// Finite doubles are written in their shortest round-tripping form, so a Float32 widened
/// to Double reads back as the same Float32.
enum JSONOutput {
    /// `x`, or `null` when it is NaN or infinite.
    static func number(_ x: Double) -> Any { x.isFinite ? x : NSNull() }

    /// `x` widened to Double, or `null` when it is NaN or infinite.
    static func number(_ x: Float) -> Any { number(Double(x)) }

    /// Each of `xs` through ``number(_:)-(Double)``.
    static func numbers(_ xs: [Double]) -> [Any] { xs.map(number) }

    /// Each of `xs` widened to Double through ``number(_:)-(Double)``.
    static func numbers(_ xs: [Float]) -> [Any] { xs.map { number(Double($0)) } }

    /// `object` as one line of JSON, keys sorted.
    /// - Throws: when `object` holds something that is not a JSON value (a programming error
    ///   here, since every caller builds it from numbers, strings, arrays and dictionaries).
    static func line(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Prints `object` as one line of JSON on stdout.
    static func print(_ object: [String: Any]) throws {
        Swift.print(try line(object))
    }
}
