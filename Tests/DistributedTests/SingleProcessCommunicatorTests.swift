import Distributed
import XCTest

/// The group of one: collectives are identities or copies, messages to self wait in a mailbox.
final class SingleProcessCommunicatorTests: XCTestCase {
    func testCollectivesLeaveOrCopyTheInput() throws {
        let group = SingleProcessCommunicator()
        XCTAssertEqual(group.rank, 0)
        XCTAssertEqual(group.size, 1)
        var values: [Float] = [1, -2, 3]
        try group.allReduce(&values, .sum)
        XCTAssertEqual(values, [1, -2, 3])
        XCTAssertEqual(try group.allGather([4, 5]), [4, 5])
        XCTAssertEqual(try group.reduceScatter([6, 7], .max), [6, 7])
        try group.broadcast(&values, root: 0)
        XCTAssertEqual(values, [1, -2, 3])
        XCTAssertTrue(try group.allAgree(on: [1, 2, 3]))
        XCTAssertEqual(try group.split(color: 3, key: 0).size, 1)
    }

    func testMessagesToSelfArriveInOrderPerTag() throws {
        let group = SingleProcessCommunicator()
        try [Float(1), 2].withUnsafeBufferPointer { try group.send($0, to: 0, tag: 5) }
        try [Float(3), 4].withUnsafeBufferPointer { try group.send($0, to: 0, tag: 5) }
        try [Float(9)].withUnsafeBufferPointer { try group.send($0, to: 0, tag: 6) }
        var two = [Float](repeating: 0, count: 2), one: [Float] = [0]
        try one.withUnsafeMutableBufferPointer { try group.receive(into: $0, from: 0, tag: 6) }
        try two.withUnsafeMutableBufferPointer { try group.receive(into: $0, from: 0, tag: 5) }
        XCTAssertEqual(one, [9])
        XCTAssertEqual(two, [1, 2])
        try two.withUnsafeMutableBufferPointer { try group.receive(into: $0, from: 0, tag: 5) }
        XCTAssertEqual(two, [3, 4])
    }

    func testMisuseThrowsNamingTheValues() {
        let group = SingleProcessCommunicator()
        var buffer: [Float] = [0]
        XCTAssertThrowsError(try buffer.withUnsafeMutableBufferPointer { try group.receive(into: $0, from: 0, tag: 1) }) {
            XCTAssertTrue("\($0)".contains("tag 1"), "\($0)")
        }
        XCTAssertThrowsError(try buffer.withUnsafeBufferPointer { try group.send($0, to: 1, tag: 0) }) {
            XCTAssertTrue("\($0)".contains("rank 1"), "\($0)")
        }
        XCTAssertThrowsError(try group.split(color: -1, key: 0)) { XCTAssertTrue("\($0)".contains("-1"), "\($0)") }
        XCTAssertThrowsError(try group.broadcast(&buffer, root: 2)) { XCTAssertTrue("\($0)".contains("2"), "\($0)") }
    }
}
