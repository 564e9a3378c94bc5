// A seeded held-out split by document.

import Tensors

/// Documents split into a training part and a held-out part, by whole document.
///
/// The held-out part has `round(heldOutFraction · count)` documents (at least
/// one and at most `count − 1` when the fraction is positive), chosen by a
/// seeded Fisher–Yates shuffle of the indices; both parts keep the documents'
/// original order. The same documents, fraction and seed give the same split.
///
/// ```swift
/// let split = try DocumentSplit(documents, heldOutFraction: 0.1, seed: 7)
/// ```
public struct DocumentSplit: Sendable, Equatable {
    /// The documents to train on.
    public let train: [[Int32]]
    /// The documents held out for evaluation.
    public let heldOut: [[Int32]]

    /// Splits `documents` (not modified).
    ///
    /// - Parameters:
    ///   - documents: the documents to split.
    ///   - heldOutFraction: the share to hold out, in `[0, 1)`.
    ///   - seed: chooses which documents are held out.
    /// - Throws: ``DataError/invalidArgument(_:)`` naming the fraction when it is
    ///   outside `[0, 1)` (or not finite), or naming the count when a positive
    ///   fraction is asked of fewer than two documents.
    ///
    /// Edge cases: fraction 0 holds nothing out (any count, even zero documents).
    public init(_ documents: [[Int32]], heldOutFraction: Double, seed: UInt64) throws {
        guard heldOutFraction.isFinite, heldOutFraction >= 0, heldOutFraction < 1 else {
            throw DataError.invalidArgument("held-out fraction \(heldOutFraction) is outside [0, 1)")
        }
        let n = documents.count
        guard heldOutFraction > 0 else {
            train = documents
            heldOut = []
            return
        }
        guard n >= 2 else {
            throw DataError.invalidArgument(
                "a held-out fraction of \(heldOutFraction) needs at least 2 documents, got \(n)")
        }
        let count = min(n - 1, max(1, Int((heldOutFraction * Double(n)).rounded())))
        var generator = SplitMix64(seed: seed)
        let order = shuffledIndices(n, &generator)
        var held = [Bool](repeating: false, count: n)
        for i in order.prefix(count) { held[i] = true }
        train = documents.indices.filter { !held[$0] }.map { documents[$0] }
        heldOut = documents.indices.filter { held[$0] }.map { documents[$0] }
    }
}

/// `0 ..< n` in a seeded Fisher–Yates order (position i swaps with `i + next() % (n − i)`).
func shuffledIndices(_ n: Int, _ generator: inout SplitMix64) -> [Int] {
    var order = Array(0..<n)
    if n < 2 { return order }
    for i in 0..<(n - 1) {
        order.swapAt(i, i + Int(generator.next() % UInt64(n - i)))
    }
    return order
}
