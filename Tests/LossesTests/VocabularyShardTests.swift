import Losses
import XCTest

/// The row split of a vocabulary over T ranks: contiguous, covering, uneven by at most one row.
final class VocabularyShardTests: XCTestCase {
    func testShardsCoverTheVocabularyInOrderForEverySmallSplit() throws {
        for v in 1...17 {
            for t in 1...v {
                var next = 0
                for r in 0..<t {
                    let s = try VocabularyShard(vocabularySize: v, parts: t, rank: r)
                    XCTAssertEqual(s.offset, next, "V=\(v) T=\(t) r=\(r)")
                    XCTAssertTrue(s.count == v / t || s.count == v / t + 1, "V=\(v) T=\(t) r=\(r)")
                    XCTAssertLessThanOrEqual(s.count, s.maxCount)
                    for id in s.range { XCTAssertEqual(s.owner(of: id), r, "V=\(v) T=\(t) id=\(id)") }
                    next += s.count
                }
                XCTAssertEqual(next, v)
            }
        }
    }

    func testMoreRanksThanRowsAreRefused() {
        XCTAssertThrowsError(try VocabularyShard(vocabularySize: 3, parts: 4, rank: 0)) { error in
            XCTAssertEqual("\(error)", "a vocabulary of 3 rows cannot be split over 4 ranks (need 1 <= T <= V)")
        }
        XCTAssertThrowsError(try VocabularyShard(vocabularySize: 8, parts: 2, rank: 2))
    }
}
