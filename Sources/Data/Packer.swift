// Packing documents into rows of length S and batches [B, S].
//
// Letters: B rows per batch, S row length (sequence length).
//
// One row holding documents a (3 tokens), b (2 tokens) and 2 pads, S = 7:
//   inputIds   a0 a1 a2 b0 b1 P  P
//   labels     a1 a2 ×  b1 ×  ×  ×        × = ignoreIndex (−100)
//   seqIdx     0  0  0  1  1  2  2        padding is one more document
//   positions  0  1  2  0  1  0  1
// labels[t] is the next token of the same document, so SPEC §3's rolling with
// seqIdx masking gives depth k the token t + k + 2 of the same document, or ×.

import Tensors

/// The documents one row holds, in order.
public struct PackedRow: Sendable, Equatable {
    /// The documents (each at most the row length), in row order.
    public var documents: [[Int32]]

    /// A row holding `documents`.
    public init(documents: [[Int32]]) { self.documents = documents }

    /// Number of tokens in the row (the rest is padding).
    public var tokenCount: Int { documents.reduce(0) { $0 + $1.count } }
}

/// Packs whole documents into rows of ``sequenceLength`` tokens and rows into
/// batches of ``batchSize``.
///
/// ## Packing rules
/// - A document is never cut between rows, except one longer than `S`: it is
///   first split into consecutive pieces of `S` tokens (the last may be
///   shorter), and each piece is then treated as a separate document (its first
///   token has no context and is no target). Empty documents are skipped.
/// - Greedy best fit: documents are taken in order (after a seeded shuffle when a
///   seed is given); each goes into the open row with the least free room that
///   still holds it (among equals, the one that came to that room last), else
///   opens a new row. Rows come out in the order they were opened.
/// - Batches take rows in order, `B` at a time; the last batch is filled up with
///   all-padding rows (or dropped with `dropLast`).
///
/// The same documents and seed give the same batches, bit for bit. For new
/// orders per epoch pass a different seed (e.g. `seed &+ epoch`).
///
/// ```swift
/// let packer = try Packer(sequenceLength: 64, batchSize: 8, vocabularySize: 64)
/// for batch in try packer.batches(from: documents, seed: 1) { … }
/// ```
public struct Packer: Sendable {
    /// The row length `S`.
    public let sequenceLength: Int
    /// The rows per batch `B`.
    public let batchSize: Int
    /// Token ids must lie in `0 ..< vocabularySize`.
    public let vocabularySize: Int
    /// The id written at padding positions (its labels are `ignoreIndex`).
    public let padId: Int32
    /// The label of a position with no target.
    public let ignoreIndex: Int64

    /// A packer.
    ///
    /// - Parameters:
    ///   - sequenceLength: `S` (≥ 1).
    ///   - batchSize: `B` (≥ 1).
    ///   - vocabularySize: the vocabulary (≥ 1); documents are checked against it.
    ///   - padId: an id in `0 ..< vocabularySize` (default 0).
    ///   - ignoreIndex: a negative label marking "no target" (default −100).
    /// - Throws: ``DataError/invalidArgument(_:)`` naming the value that is out of range.
    public init(sequenceLength: Int, batchSize: Int, vocabularySize: Int, padId: Int32 = 0,
                ignoreIndex: Int64 = -100) throws {
        guard sequenceLength >= 1 else { throw DataError.invalidArgument("Packer: sequence length \(sequenceLength) is not positive") }
        guard batchSize >= 1 else { throw DataError.invalidArgument("Packer: batch size \(batchSize) is not positive") }
        guard vocabularySize >= 1 else { throw DataError.invalidArgument("Packer: vocabulary size \(vocabularySize) is not positive") }
        guard padId >= 0 && Int(padId) < vocabularySize else {
            throw DataError.invalidArgument("Packer: pad id \(padId) is outside the vocabulary 0..<\(vocabularySize)")
        }
        guard ignoreIndex < 0 else {
            throw DataError.invalidArgument("Packer: ignore index \(ignoreIndex) is not negative, so it could be a token id")
        }
        self.sequenceLength = sequenceLength
        self.batchSize = batchSize
        self.vocabularySize = vocabularySize
        self.padId = padId
        self.ignoreIndex = ignoreIndex
    }

    // MARK: Documents → pieces → rows

    /// The documents cut into pieces of at most `S` tokens, in order; empty documents are skipped.
    ///
    /// - Throws: ``DataError/tokenOutOfRange(_:)`` naming the document, position and id of the first id
    ///   outside `0 ..< vocabularySize`.
    public func pieces(of documents: [[Int32]]) throws -> [[Int32]] {
        var out: [[Int32]] = []
        out.reserveCapacity(documents.count)
        for (d, doc) in documents.enumerated() {
            for (p, t) in doc.enumerated() where t < 0 || Int(t) >= vocabularySize {
                throw DataError.tokenOutOfRange(
                    "Packer: document \(d) position \(p) holds token \(t), outside 0..<\(vocabularySize)")
            }
            for start in stride(from: 0, to: doc.count, by: sequenceLength) {
                out.append(Array(doc[start..<min(start + sequenceLength, doc.count)]))
            }
        }
        return out
    }

    /// Packs documents into rows by greedy best fit (see the type's rules).
    ///
    /// - Parameters:
    ///   - documents: the documents (not modified).
    ///   - seed: shuffles the pieces before packing; nil keeps their order.
    /// - Returns: rows, each holding at most `S` tokens.
    /// - Throws: as ``pieces(of:)``.
    public func rows(from documents: [[Int32]], seed: UInt64? = nil) throws -> [PackedRow] {
        var pieces = try pieces(of: documents)
        if let seed {
            var generator = SplitMix64(seed: seed)
            pieces = shuffledIndices(pieces.count, &generator).map { pieces[$0] }
        }
        let s = sequenceLength
        var rows: [PackedRow] = []
        var room: [Int] = []                       // free tokens per row
        var rowsWithRoom = [[Int]](repeating: [], count: s + 1)  // free room → rows, in the order they got it
        var nonEmpty = RoomSet(capacity: s)
        for piece in pieces {
            let target: Int
            if let r = nonEmpty.first(atLeast: piece.count) {
                target = rowsWithRoom[r].removeLast()
                if rowsWithRoom[r].isEmpty { nonEmpty.remove(r) }
                rows[target].documents.append(piece)
            } else {
                target = rows.count
                rows.append(PackedRow(documents: [piece]))
                room.append(s)
            }
            room[target] -= piece.count
            let left = room[target]
            if left > 0 {
                rowsWithRoom[left].append(target)
                nonEmpty.insert(left)
            }
        }
        return rows
    }

    // MARK: Rows → batches

    /// Packs documents and lays the rows out as batches.
    ///
    /// - Parameters:
    ///   - documents: the documents (not modified).
    ///   - seed: shuffles the pieces before packing; nil keeps their order.
    ///   - dropLast: drop a last batch of fewer than `B` rows instead of filling it with padding rows.
    /// - Returns: batches of `[B, S]` tensors; empty when there are no tokens.
    /// - Throws: as ``pieces(of:)``.
    public func batches(from documents: [[Int32]], seed: UInt64? = nil, dropLast: Bool = false) throws -> [Batch] {
        let rows = try rows(from: documents, seed: seed)
        var out: [Batch] = []
        for start in stride(from: 0, to: rows.count, by: batchSize) {
            let end = min(start + batchSize, rows.count)
            if dropLast && end - start < batchSize { break }
            out.append(try batch(rows: Array(rows[start..<end])))
        }
        return out
    }

    /// One batch from at most `B` rows; missing rows are all padding.
    ///
    /// - Throws: ``DataError/invalidArgument(_:)`` when there are more than `B`
    ///   rows or a row holds more than `S` tokens; as ``pieces(of:)`` for ids
    ///   outside the vocabulary.
    public func batch(rows: [PackedRow]) throws -> Batch {
        guard rows.count <= batchSize else {
            throw DataError.invalidArgument("Packer: \(rows.count) rows exceed the batch size \(batchSize)")
        }
        let s = sequenceLength, n = batchSize * s
        var ids = [Int64](repeating: Int64(padId), count: n)
        var labels = [Int64](repeating: ignoreIndex, count: n)
        var seqIdx = [Int32](repeating: 0, count: n)
        var positions = [Int64](repeating: 0, count: n)
        var rowTokens = [Int](repeating: 0, count: batchSize)
        for (r, row) in rows.enumerated() {
            guard row.tokenCount <= s else {
                throw DataError.invalidArgument("Packer: row \(r) holds \(row.tokenCount) tokens, more than \(s)")
            }
            _ = try pieces(of: row.documents)  // validates the ids
            var t = r * s
            for (d, doc) in row.documents.enumerated() {
                for (p, token) in doc.enumerated() {
                    ids[t] = Int64(token)
                    if p + 1 < doc.count { labels[t] = Int64(doc[p + 1]) }
                    seqIdx[t] = Int32(d)
                    positions[t] = Int64(p)
                    t += 1
                }
            }
            rowTokens[r] = row.tokenCount
            let padIndex = Int32(row.documents.count)
            for (p, u) in (t..<(r + 1) * s).enumerated() {
                seqIdx[u] = padIndex
                positions[u] = Int64(p)
            }
        }
        if rows.count < batchSize {
            for u in rows.count * s..<n { positions[u] = Int64(u % s) }
        }
        let shape = [batchSize, s]
        return try Batch(inputIds: Tensor(ids, shape: shape), labels: Tensor(labels, shape: shape),
                         seqIdx: Tensor(seqIdx, shape: shape), positions: Tensor(positions, shape: shape),
                         rowTokenCounts: rowTokens, ignoreIndex: ignoreIndex)
    }
}

/// The set of free-room values 1 … S that some open row has, as a bitset, with
/// "smallest member ≥ x" in O(S / 64).
struct RoomSet {
    private var words: [UInt64]

    init(capacity: Int) { words = [UInt64](repeating: 0, count: capacity / 64 + 1) }

    mutating func insert(_ x: Int) { words[x >> 6] |= 1 << UInt64(x & 63) }
    mutating func remove(_ x: Int) { words[x >> 6] &= ~(1 << UInt64(x & 63)) }

    func first(atLeast x: Int) -> Int? {
        var w = x >> 6
        guard w < words.count else { return nil }
        var bits = words[w] & (~0 << UInt64(x & 63))
        while true {
            if bits != 0 { return w << 6 + bits.trailingZeroBitCount }
            w += 1
            if w == words.count { return nil }
            bits = words[w]
        }
    }
}
