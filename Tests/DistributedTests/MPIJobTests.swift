import Foundation
import XCTest

/// Real `mpirun` jobs of the `mtp` binary: every collective of ``MPICommunicator`` on
/// rank-dependent input, checked here against closed forms.
final class MPIJobTests: XCTestCase {
    /// Runs `mtp bench comm --dump-collectives` on `ranks` ranks; one JSON object per rank.
    private func collectives(ranks: Int) throws -> [[String: Any]] {
        let result = try MPIJob.run(ranks: ranks, arguments: ["bench", "comm", "--dump-collectives"], timeout: 120)
        XCTAssertEqual(result.status, 0, result.output)
        let objects = result.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        XCTAssertEqual(objects.count, ranks, result.output)
        return objects.sorted { ($0["rank"] as? Int ?? -1) < ($1["rank"] as? Int ?? -1) }
    }

    private func floats(_ any: Any?) -> [Float] { (any as? [NSNumber] ?? []).map(\.floatValue) }

    func testCollectivesOnTwoAndFourRanks() throws {
        try MPIJob.requireMPI()
        for n in [2, 4] {
            let ranks = try collectives(ranks: n)
            guard ranks.count == n else { continue }
            let triangle = Float(10 * n * (n - 1) / 2)
            for (r, object) in ranks.enumerated() {
                XCTAssertEqual(object["size"] as? Int, n)
                XCTAssertEqual(floats(object["all_reduce_sum"]), (0..<4).map { triangle + Float(n * $0) }, "rank \(r) of \(n)")
                XCTAssertEqual(floats(object["all_reduce_max"]), (0..<4).map { Float(10 * (n - 1) + $0) })
                XCTAssertEqual(floats(object["all_gather"]), (0..<n).flatMap { q in (0..<4).map { Float(10 * q + $0) } })
                XCTAssertEqual(floats(object["reduce_scatter"]), [2 * r, 2 * r + 1].map { triangle + Float(n * $0) })
                XCTAssertEqual(floats(object["broadcast"]), (0..<4).map { Float(10 * (n - 1) + $0) })
                XCTAssertEqual(object["broadcast_bytes"] as? String, "rank 0")
                let previous = (r + n - 1) % n
                XCTAssertEqual(floats(object["from_previous"]), (0..<4).map { Float(10 * previous + $0) })
                let sameParity = (0..<n).filter { $0 % 2 == r % 2 }
                XCTAssertEqual(object["split_size"] as? Int, sameParity.count)
                // key −r orders a colour's ranks from the highest world rank down.
                XCTAssertEqual(object["split_rank"] as? Int, sameParity.reversed().firstIndex(of: r))
                XCTAssertEqual(floats(object["split_sum"]), (0..<4).map { i in sameParity.map { Float(10 * $0 + i) }.reduce(0, +) })
            }
        }
    }

    func testBandwidthReportIsValidJSON() throws {
        try MPIJob.requireMPI()
        let result = try MPIJob.run(ranks: 2, arguments: ["bench", "comm", "--sizes", "16,4096", "--repeats", "3", "--model-steps", "0", "--json"],
                                    timeout: 120)
        XCTAssertEqual(result.status, 0, result.output)
        let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], result.output)
        XCTAssertEqual(object["ranks"] as? Int, 2)
        let rows = try XCTUnwrap(object["all_reduce"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["elements"] as? Int }, [16, 4096])
        for row in rows { XCTAssertGreaterThan((row["bus_gbps"] as? NSNumber)?.doubleValue ?? 0, 0) }
    }
}
