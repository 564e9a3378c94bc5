// Schedules as data: the action lists of GPipe and 1F1B, their in-flight bounds,
// the unit-time timeline and its bubble, and the checks on hand-written schedules.

import Pipeline
import XCTest

final class ScheduleTests: XCTestCase {
    private func names(_ s: PipelineSchedule) -> [String] {
        s.actions.map { $0.map(\.description).joined(separator: " ") }
    }

    func testGPipeRunsAllForwardsThenAllBackwards() throws {
        let s = try PipelineSchedule.gpipe(stages: 2, microbatches: 4)
        XCTAssertEqual(names(s), ["F0 F1 F2 F3 B0 B1 B2 B3", "F0 F1 F2 F3 B0 B1 B2 B3"])
        XCTAssertEqual(s.maximumInFlight(stage: 0), 4)
    }

    func testOneForwardOneBackwardWarmsUpThenAlternates() throws {
        let s = try PipelineSchedule.oneForwardOneBackward(stages: 3, microbatches: 4)
        XCTAssertEqual(names(s), ["F0 F1 F2 B0 F3 B1 B2 B3",
                                  "F0 F1 B0 F2 B1 F3 B2 B3",
                                  "F0 B0 F1 B1 F2 B2 F3 B3"])
        XCTAssertEqual((0..<3).map(s.maximumInFlight), [3, 2, 1])
        // Fewer microbatches than the warm-up: it degenerates to GPipe.
        XCTAssertEqual(names(try .oneForwardOneBackward(stages: 3, microbatches: 1)), ["F0 B0", "F0 B0", "F0 B0"])
    }

    func testAtMostPMicrobatchesInFlightPerStage() throws {
        for p in 1...5 {
            for m in 1...9 {
                let s = try PipelineSchedule.oneForwardOneBackward(stages: p, microbatches: m)
                for stage in 0..<p {
                    XCTAssertLessThanOrEqual(s.maximumInFlight(stage: stage), Swift.min(p - stage, m), "P=\(p) M=\(m) stage \(stage)")
                }
                XCTAssertEqual(try PipelineSchedule.gpipe(stages: p, microbatches: m).maximumInFlight(stage: 0), m)
            }
        }
    }

    func testUnitTimeBubbleIsTheIdealOne() throws {
        for kind in PipelineScheduleKind.allCases {
            for p in 1...4 {
                for m in 1...8 {
                    let s = try PipelineSchedule(kind: kind, stages: p, microbatches: m)
                    for (f, b) in [(1.0, 1.0), (1.0, 2.0)] {
                        let starts = try s.timeline(forwardTime: f, backwardTime: b)
                        let end = zip(s.actions, starts).map { actions, t in
                            zip(actions, t).map { $1 + ($0.isForward ? f : b) }.max()!
                        }.max()!
                        let bubble = 1 - Double(m) * (f + b) / end
                        XCTAssertEqual(bubble, s.idealBubbleFraction, accuracy: 1e-12, "\(kind) P=\(p) M=\(m) f=\(f) b=\(b)")
                    }
                }
            }
        }
    }

    func testDescriptionPrintsListsTimelineAndIdealBubble() throws {
        let text = try PipelineSchedule.oneForwardOneBackward(stages: 2, microbatches: 2).description
        XCTAssertEqual(text, """
            schedule 1f1b: P = 2 stages, M = 2 microbatches, at most 2 in flight per stage
            stage 0: F0 F1 B0 B1
            stage 1: F0 B0 F1 B1
            timeline (one column per unit of time):
            stage 0: F0 F1 .  B0 .  B1
            stage 1: .  F0 B0 F1 B1 .
            ideal bubble (P-1)/(M+P-1) = 0.333
            """)
    }

    func testHandWrittenSchedulesAreChecked() throws {
        let ok = try PipelineSchedule(actions: [[.forward(0), .forward(1), .backward(1), .backward(0)],
                                                [.forward(0), .forward(1), .backward(1), .backward(0)]], microbatches: 2)
        XCTAssertEqual(ok.name, "custom")
        let bad: [(actions: [[PipelineAction]], microbatches: Int, fragment: String)] = [
            ([[.backward(0), .forward(0)]], 1, "before F0"),
            ([[.forward(0), .forward(0), .backward(0)]], 1, "twice"),
            ([[.forward(0)]], 1, "expected 1 of each"),
            ([[.forward(3), .backward(3)]], 1, "outside"),
            // Stage 0 waits in B0 for stage 1, which waits in F1 for stage 0.
            ([[.forward(0), .backward(0), .forward(1), .backward(1)],
              [.forward(0), .forward(1), .backward(0), .backward(1)]], 2, "deadlock"),
        ]
        for (actions, m, fragment) in bad {
            XCTAssertThrowsError(try PipelineSchedule(actions: actions, microbatches: m)) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error) should mention '\(fragment)'")
            }
        }
        XCTAssertThrowsError(try PipelineSchedule.gpipe(stages: 0, microbatches: 1))
        XCTAssertThrowsError(try PipelineSchedule.gpipe(stages: 1, microbatches: 0))
    }
}
