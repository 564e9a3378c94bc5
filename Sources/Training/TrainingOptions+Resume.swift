// What `--resume` means: continue the recorded run. The checkpoint's options win; the
// flags that only say how long to go on, how often to look and save, or how to lay out the
// work (`--steps` to extend, `--eval-every`, `--save-every`, `--stop-at`, `--out`, the
// parallel layout, `--recompute`) may change; any other flag that contradicts the
// checkpoint is refused with a list of all of them, never silently dropped. Other data
// need `--allow-data-change`.

extension TrainingOptions {
    /// The options a resumed run continues with.
    ///
    /// - Parameters:
    ///   - requested: these (recorded) options with the command line's flags applied.
    ///   - step: the checkpoint's step (`--steps` may extend the run, not end it before that).
    /// - Returns: the recorded options with `steps`, `evalEvery` and `recompute` from `requested`.
    /// - Throws: ``TrainingError`` listing every flag whose value contradicts the checkpoint.
    public func resumed(as requested: TrainingOptions, atStep step: Int) throws -> TrainingOptions {
        var problems: [String] = []
        func check<T: Equatable>(_ flag: String, _ path: KeyPath<TrainingOptions, T>) {
            let a = self[keyPath: path], b = requested[keyPath: path]
            if a != b { problems.append("\(flag) \(b) (checkpoint: \(a))") }
        }
        check("--vocab", \.model.vocabularySize)
        check("--hidden", \.model.hiddenSize)
        check("--layers", \.model.layers)
        check("--heads", \.model.heads)
        check("--intermediate", \.model.intermediateSize)
        check("--depths", \.model.mtpDepths)
        check("--mtp-scale", \.model.mtpLossScalingFactor)
        check("--batch-size", \.batchSize)
        check("--seq-len", \.sequenceLength)
        check("--lr", \.learningRate)
        check("--warmup", \.warmupSteps)
        check("--weight-decay", \.weightDecay)
        check("--clip", \.gradientClip)
        check("--grad-accum", \.gradientAccumulation)
        check("--loss", \.loss.rawValue)
        check("--seed", \.seed)
        guard problems.isEmpty else {
            throw TrainingError("--resume continues the run its checkpoint recorded, and these flags contradict it: "
                + problems.joined(separator: ", ") + " (only --steps, --eval-every, --save-every, --stop-at, --out, "
                + "--recompute and the parallel layout may change; start a new run to change the others)")
        }
        guard requested.steps >= step else {
            throw TrainingError("--steps \(requested.steps) ends before the checkpoint's step \(step); give --steps >= \(step) to extend the run")
        }
        var out = self
        out.steps = requested.steps
        out.evalEvery = requested.evalEvery
        out.recompute = requested.recompute
        return out
    }

    /// Throws unless the data `now` found are those the checkpoint recorded (same source,
    /// size, content, documents, separator), or `allowDataChange`; returns the options to run with.
    /// - Throws: ``TrainingError`` naming what differs.
    public func resumedData(source: TrainingDataSource, record: TrainingDataRecord, allowDataChange: Bool) throws -> TrainingOptions {
        var out = self
        if !allowDataChange {
            if let recorded = dataSource, recorded.standardized != source.standardized {
                throw TrainingError("the checkpoint was trained on \(Self.describe(recorded)), not \(Self.describe(source)); "
                    + "give --allow-data-change to continue on other data")
            }
            if let recorded = dataRecord {
                let changes = record.differences(from: recorded)
                guard changes.isEmpty else {
                    throw TrainingError("the data differ from the checkpoint's (\(changes.joined(separator: ", "))); "
                        + "give --allow-data-change to continue on them anyway")
                }
            }
        }
        out.dataSource = source.standardized
        out.dataRecord = record
        return out
    }

    /// "the built-in corpus", "--data PATH", "--tokens PATH".
    static func describe(_ source: TrainingDataSource) -> String {
        switch source {
        case .builtIn: "the built-in corpus"
        case .text(let path): "--data \(path)"
        case .tokens(let path): "--tokens \(path)"
        }
    }
}
