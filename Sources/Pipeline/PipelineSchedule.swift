// Pipeline schedules as data: for each stage, the ordered list of forward and
// backward actions it runs on microbatches.
//
// Letters: P stages (s = 0 … P−1), M microbatches (m = 0 … M−1), F = forward,
// B = backward. Stage s may run F(m) once stage s−1 has run F(m), and B(m) once
// stage s+1 has run B(m) (the last stage: once it has run its own F(m)).
//
//   GPipe (P = 2, M = 4)                 1F1B (P = 2, M = 4)
//   stage 0: F0 F1 F2 F3 B0 B1 B2 B3     stage 0: F0 F1 B0 F2 B1 F3 B2 B3
//   stage 1: F0 F1 F2 F3 B0 B1 B2 B3     stage 1: F0 B0 F1 B1 F2 B2 F3 B3
//
// GPipe holds the activations of all M microbatches on every stage; 1F1B (the
// PipeDream-Flush order) warms up with P−1−s forwards, then alternates one
// forward with one backward, then drains, so stage s holds at most P − s.

/// One step of a stage's work on one microbatch.
public enum PipelineAction: Hashable, Sendable, CustomStringConvertible {
    /// Run the stage's forward on microbatch `m` (receiving its input, sending its output).
    case forward(Int)
    /// Run the stage's backward on microbatch `m` (receiving its output gradient, sending its input gradient).
    case backward(Int)

    /// The microbatch the action works on.
    public var microbatch: Int {
        switch self {
        case .forward(let m), .backward(let m): m
        }
    }

    /// Whether the action is a forward.
    public var isForward: Bool {
        if case .forward = self { return true }
        return false
    }

    /// `F3` or `B3`.
    public var description: String { (isForward ? "F" : "B") + String(microbatch) }
}

/// The schedules this module builds.
public enum PipelineScheduleKind: String, CaseIterable, Sendable {
    /// All forwards, then all backwards (Huang et al., 2019).
    case gpipe
    /// One forward, one backward after a warm-up of P−1−s forwards (PipeDream-Flush, Narayanan et al., 2021).
    case oneForwardOneBackward = "1f1b"
}

/// The ordered actions of every stage for one step of P stages over M microbatches.
///
/// A schedule is plain data: build one with ``gpipe(stages:microbatches:)``,
/// ``oneForwardOneBackward(stages:microbatches:)`` or ``init(kind:stages:microbatches:)``,
/// or write the action lists yourself and check them with ``init(actions:microbatches:)``.
/// `description` prints the lists and the unit-time timeline.
public struct PipelineSchedule: Equatable, Sendable, CustomStringConvertible {
    /// P.
    public let stages: Int
    /// M.
    public let microbatches: Int
    /// `actions[s]` is what stage s runs, in order.
    public let actions: [[PipelineAction]]
    /// The name printed in ``description`` (`gpipe`, `1f1b`, or `custom`).
    public let name: String

    /// A checked schedule from explicit action lists.
    ///
    /// - Parameters:
    ///   - actions: one list per stage (at least one stage).
    ///   - microbatches: M (≥ 1).
    ///   - name: the name printed in ``description``.
    /// - Throws: ``PipelineError`` when a stage does not run exactly one forward and one
    ///   backward of every microbatch, runs a backward before its forward, or when the
    ///   stages would wait on each other forever.
    public init(actions: [[PipelineAction]], microbatches: Int, name: String = "custom") throws {
        guard !actions.isEmpty else { throw PipelineError("a schedule needs at least one stage") }
        guard microbatches >= 1 else { throw PipelineError("a schedule needs at least one microbatch, got \(microbatches)") }
        self.stages = actions.count
        self.microbatches = microbatches
        self.actions = actions
        self.name = name
        for (s, list) in actions.enumerated() {
            var forwardDone = Set<Int>(), backwardDone = Set<Int>()
            for a in list {
                guard (0..<microbatches).contains(a.microbatch) else {
                    throw PipelineError("stage \(s): \(a) names a microbatch outside 0..<\(microbatches)")
                }
                if a.isForward {
                    guard forwardDone.insert(a.microbatch).inserted else { throw PipelineError("stage \(s) runs \(a) twice") }
                } else {
                    guard forwardDone.contains(a.microbatch) else { throw PipelineError("stage \(s) runs \(a) before F\(a.microbatch)") }
                    guard backwardDone.insert(a.microbatch).inserted else { throw PipelineError("stage \(s) runs \(a) twice") }
                }
            }
            guard forwardDone.count == microbatches, backwardDone.count == microbatches else {
                throw PipelineError("stage \(s) runs \(forwardDone.count) forwards and \(backwardDone.count) backwards, "
                    + "expected \(microbatches) of each")
            }
        }
        _ = try timeline(forwardTime: 1, backwardTime: 1)
    }

    /// The named schedule for P stages and M microbatches.
    ///
    /// - Throws: ``PipelineError`` when `stages < 1` or `microbatches < 1`.
    public init(kind: PipelineScheduleKind, stages: Int, microbatches: Int) throws {
        guard stages >= 1 else { throw PipelineError("a pipeline needs at least one stage, got \(stages)") }
        guard microbatches >= 1 else { throw PipelineError("a pipeline needs at least one microbatch, got \(microbatches)") }
        let lists: [[PipelineAction]]
        switch kind {
        case .gpipe:
            lists = (0..<stages).map { _ in (0..<microbatches).map(PipelineAction.forward) + (0..<microbatches).map(PipelineAction.backward) }
        case .oneForwardOneBackward:
            lists = (0..<stages).map { s in
                let warmUp = Swift.min(stages - 1 - s, microbatches)
                var list = (0..<warmUp).map(PipelineAction.forward)
                var f = warmUp, b = 0
                while f < microbatches {
                    list += [.forward(f), .backward(b)]
                    f += 1
                    b += 1
                }
                list += (b..<microbatches).map(PipelineAction.backward)
                return list
            }
        }
        try self.init(actions: lists, microbatches: microbatches, name: kind.rawValue)
    }

    /// GPipe: every stage runs F0 … F(M−1), then B0 … B(M−1).
    ///
    /// - Throws: ``PipelineError`` when `stages < 1` or `microbatches < 1`.
    public static func gpipe(stages: Int, microbatches: Int) throws -> PipelineSchedule {
        try PipelineSchedule(kind: .gpipe, stages: stages, microbatches: microbatches)
    }

    /// 1F1B: stage s runs min(P−1−s, M) forwards, then alternates F and B, then the remaining Bs.
    ///
    /// - Throws: ``PipelineError`` when `stages < 1` or `microbatches < 1`.
    public static func oneForwardOneBackward(stages: Int, microbatches: Int) throws -> PipelineSchedule {
        try PipelineSchedule(kind: .oneForwardOneBackward, stages: stages, microbatches: microbatches)
    }

    /// The most microbatches whose forward stage `stage` has run but whose backward it has not
    /// (the activations it holds at once).
    public func maximumInFlight(stage: Int) -> Int {
        var live = 0, peak = 0
        for a in actions[stage] {
            live += a.isForward ? 1 : -1
            peak = Swift.max(peak, live)
        }
        return peak
    }

    /// The bubble fraction of an ideal pipeline with equal stages: (P−1)/(M+P−1).
    public var idealBubbleFraction: Double { Double(stages - 1) / Double(microbatches + stages - 1) }

    // MARK: Unit-time simulation

    /// When each action runs if every forward takes `forwardTime` and every backward
    /// `backwardTime`, on every stage, and messages are instantaneous.
    ///
    /// - Returns: `start[s][i]`, the start time of `actions[s][i]`.
    /// - Throws: ``PipelineError`` when the stages would wait on each other forever.
    public func timeline(forwardTime: Double, backwardTime: Double) throws -> [[Double]] {
        var start = actions.map { [Double](repeating: 0, count: $0.count) }
        var next = [Int](repeating: 0, count: stages)
        var free = [Double](repeating: 0, count: stages)
        var finished: [PipelineAction: [Int: Double]] = [:]  // action → stage → end time
        var remaining = actions.reduce(0) { $0 + $1.count }
        while remaining > 0 {
            var progressed = false
            for s in 0..<stages {
                while next[s] < actions[s].count {
                    let a = actions[s][next[s]]
                    let dependency: Double?
                    switch a {
                    case .forward(let m): dependency = s == 0 ? 0 : finished[.forward(m)]?[s - 1]
                    case .backward(let m): dependency = s == stages - 1 ? 0 : finished[.backward(m)]?[s + 1]
                    }
                    guard let ready = dependency else { break }
                    let t = Swift.max(free[s], ready)
                    start[s][next[s]] = t
                    free[s] = t + (a.isForward ? forwardTime : backwardTime)
                    finished[a, default: [:]][s] = free[s]
                    next[s] += 1
                    remaining -= 1
                    progressed = true
                }
            }
            guard progressed else {
                let stuck = (0..<stages).filter { next[$0] < actions[$0].count }.map { "stage \($0) at \(actions[$0][next[$0]])" }
                throw PipelineError("the schedule deadlocks: " + stuck.joined(separator: ", "))
            }
        }
        return start
    }

    /// The action lists, then the unit-time timeline (F and B one slot each; `.` idle),
    /// then the ideal bubble.
    public var description: String {
        var lines = ["schedule \(name): P = \(stages) stages, M = \(microbatches) microbatches, "
            + "at most \((0..<stages).map(maximumInFlight).max() ?? 0) in flight per stage"]
        let width = String(microbatches - 1).count + 1
        func cell(_ s: String) -> String { s + String(repeating: " ", count: Swift.max(0, width - s.count)) }
        func trimmed(_ s: String) -> String { String(s.reversed().drop(while: { $0 == " " }).reversed()) }
        for (s, list) in actions.enumerated() {
            lines.append(trimmed("stage \(s): " + list.map { cell($0.description) }.joined(separator: " ")))
        }
        // The initializers checked the schedule, so the unit-time simulation cannot deadlock.
        if let starts = try? timeline(forwardTime: 1, backwardTime: 1) {
            let slots = Int(starts.flatMap { $0 }.max() ?? 0) + 1
            lines.append("timeline (one column per unit of time):")
            for (s, list) in actions.enumerated() {
                var row = [String](repeating: cell("."), count: slots)
                for (i, a) in list.enumerated() { row[Int(starts[s][i])] = cell(a.description) }
                lines.append(trimmed("stage \(s): " + row.joined(separator: " ")))
            }
        }
        lines.append(String(format: "ideal bubble (P-1)/(M+P-1) = %.3f", idealBubbleFraction))
        return lines.joined(separator: "\n")
    }
}
