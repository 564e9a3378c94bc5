// SyntheticCorpus: the process's parameters, sampling and argument errors.

import Tensors
import XCTest

@testable import Data

final class CorpusProcessTests: XCTestCase {
    private let corpus = try! SyntheticCorpus()

    func testDefaults() {
        XCTAssertEqual(corpus.vocabularySize, 64)
        XCTAssertEqual(corpus.documentLengths, 16...48)
        XCTAssertEqual(corpus.seed, 0)
    }

    func testEveryRowIsADistribution() throws {
        for v in [24, 33, 64, 128] {
            let c = try SyntheticCorpus(vocabularySize: v, seed: 5)
            XCTAssertEqual(c.transitionProbabilities.count, v * v)
            XCTAssertEqual(c.startProbabilities.reduce(0, +), 1, accuracy: 1e-15)
            for x in 0..<v {
                let row = c.transitionProbabilities[x * v..<(x + 1) * v]
                XCTAssert(row.allSatisfy { $0 >= 0 }, "V \(v) row \(x)")
                XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-12, "V \(v) row \(x)")
            }
        }
    }

    func testLayoutOfOpeningsCountdownAndBody() throws {
        let v = 64, n = SyntheticCorpus.openingCount
        let p = corpus.transitionProbabilities
        for x in 0..<n {
            XCTAssertEqual(corpus.startProbabilities[x], 1 / Double(n))
            XCTAssertEqual(try corpus.probability(of: Int32(x + n), after: Int32(x)), 1 - SyntheticCorpus.countdownLeak)
        }
        for x in (n + 1)..<(2 * n) {
            XCTAssertEqual(try corpus.probability(of: Int32(x - 1), after: Int32(x)), 1 - SyntheticCorpus.countdownLeak)
        }
        XCTAssert(corpus.startProbabilities[n...].allSatisfy { $0 == 0 })
        // c₁ and body rows: no mass on openings or countdown, K favoured successors above the leak.
        let leak = SyntheticCorpus.bodyLeak / Double(v - 2 * n)
        for x in [n] + Array(2 * n..<v) {
            XCTAssert(p[x * v..<x * v + 2 * n].allSatisfy { $0 == 0 }, "row \(x)")
            XCTAssertEqual(p[x * v + 2 * n..<(x + 1) * v].filter { $0 > leak }.count, SyntheticCorpus.bodySuccessorCount)
        }
    }

    func testSameSeedSameProcessOtherSeedOtherProcess() throws {
        let again = try SyntheticCorpus(seed: 0), other = try SyntheticCorpus(seed: 1)
        XCTAssertEqual(corpus.transitionProbabilities, again.transitionProbabilities)
        XCTAssertNotEqual(corpus.transitionProbabilities, other.transitionProbabilities)
    }

    func testSamplingIsSeededAndInRange() throws {
        let a = try corpus.documents(count: 200, seed: 9)
        XCTAssertEqual(a, try corpus.documents(count: 200, seed: 9))
        XCTAssertNotEqual(a, try corpus.documents(count: 200, seed: 10))
        XCTAssertEqual(a.count, 200)
        for doc in a {
            XCTAssert(corpus.documentLengths.contains(doc.count))
            XCTAssert(doc[0] < Int32(SyntheticCorpus.openingCount), "starts with an opening")
            XCTAssert(doc.allSatisfy { $0 >= 0 && $0 < 64 })
            for (x, y) in zip(doc, doc.dropFirst()) { XCTAssertGreaterThan(try corpus.probability(of: y, after: x), 0) }
        }
        // Continuing one generator gives fresh documents.
        var g = SplitMix64(seed: 9)
        let first = try corpus.documents(count: 100, generator: &g), second = try corpus.documents(count: 100, generator: &g)
        XCTAssertEqual(first + second, a)
    }

    func testEveryLengthOccurs() throws {
        let c = try SyntheticCorpus(vocabularySize: 24, documentLengths: 2...5, seed: 3)
        let lengths = Set(try c.documents(count: 400, seed: 1).map(\.count))
        XCTAssertEqual(lengths, [2, 3, 4, 5])
        let fixed = try SyntheticCorpus(documentLengths: 7...7)
        XCTAssert(try fixed.documents(count: 20, seed: 2).allSatisfy { $0.count == 7 })
    }

    func testZeroDocuments() throws {
        XCTAssertEqual(try corpus.documents(count: 0, seed: 1), [])
    }

    func testArgumentErrorsNameTheValue() {
        assertThrows(try SyntheticCorpus(vocabularySize: 23), "23")
        assertThrows(try SyntheticCorpus(vocabularySize: 1025), "1025")
        assertThrows(try SyntheticCorpus(documentLengths: 1...8), "1...8")
        assertThrows(try SyntheticCorpus(documentLengths: 16...5000), "16...5000")
        assertThrows(try corpus.documents(count: -3, seed: 1), "-3")
        assertThrows(try corpus.probability(of: 64, after: 0), "64")
        assertThrows(try corpus.probability(of: 0, after: -1), "-1")
        assertThrows(try corpus.floors(depths: -1), "-1")
        assertThrows(try corpus.conditionalEntropy(after: 99), "99")
        assertThrows(try corpus.expectedEntropy(atPosition: 48), "48")
        assertThrows(try corpus.expectedEntropy(atPosition: 0), "0")
    }
}

/// Asserts that `body` throws a ``DataError`` whose description contains `fragment`.
func assertThrows<T>(_ body: @autoclosure () throws -> T, _ fragment: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error mentioning \(fragment)", file: file, line: line)
    } catch let error as DataError {
        XCTAssert(error.description.contains(fragment), "\(error) does not mention \(fragment)", file: file, line: line)
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}
