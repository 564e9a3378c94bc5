// DocumentSplit: a seeded held-out split by whole document.

import XCTest

@testable import Data

final class DocumentSplitTests: XCTestCase {
    private let docs: [[Int32]] = (0..<20).map { [Int32($0), Int32($0)] }

    func testSizesAndDisjointCover() throws {
        let split = try DocumentSplit(docs, heldOutFraction: 0.25, seed: 4)
        XCTAssertEqual(split.heldOut.count, 5)
        XCTAssertEqual(split.train.count, 15)
        XCTAssertEqual(Set(split.train.map { $0[0] }).union(split.heldOut.map { $0[0] }), Set(0..<20))
        XCTAssert(Set(split.train.map { $0[0] }).isDisjoint(with: split.heldOut.map { $0[0] }))
    }

    func testOrderIsKeptAndTheSeedDecides() throws {
        let a = try DocumentSplit(docs, heldOutFraction: 0.3, seed: 1)
        XCTAssertEqual(a.train, a.train.sorted { $0[0] < $1[0] })
        XCTAssertEqual(a.heldOut, a.heldOut.sorted { $0[0] < $1[0] })
        XCTAssertEqual(a, try DocumentSplit(docs, heldOutFraction: 0.3, seed: 1))
        XCTAssertNotEqual(a.heldOut, try DocumentSplit(docs, heldOutFraction: 0.3, seed: 2).heldOut)
    }

    func testRoundingAndClamping() throws {
        XCTAssertEqual(try DocumentSplit(docs, heldOutFraction: 0.001, seed: 1).heldOut.count, 1, "at least one")
        XCTAssertEqual(try DocumentSplit(docs, heldOutFraction: 0.999, seed: 1).train.count, 1, "at least one to train on")
        XCTAssertEqual(try DocumentSplit(docs, heldOutFraction: 0.1, seed: 1).heldOut.count, 2)
        XCTAssertEqual(try DocumentSplit(Array(docs.prefix(2)), heldOutFraction: 0.5, seed: 1).heldOut.count, 1)
        let none = try DocumentSplit([], heldOutFraction: 0, seed: 1)
        XCTAssertEqual(none.train.count + none.heldOut.count, 0)
        XCTAssertEqual(try DocumentSplit(docs, heldOutFraction: 0, seed: 1).train, docs)
    }

    func testErrorsNameTheValue() {
        assertThrows(try DocumentSplit(docs, heldOutFraction: 1, seed: 1), "1.0")
        assertThrows(try DocumentSplit(docs, heldOutFraction: -0.5, seed: 1), "-0.5")
        assertThrows(try DocumentSplit(docs, heldOutFraction: .nan, seed: 1), "nan")
        assertThrows(try DocumentSplit([[1]], heldOutFraction: 0.5, seed: 1), "got 1")
    }
}
