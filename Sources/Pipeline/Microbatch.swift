// Cutting a batch into microbatches, and the normalisation that makes the
// gradients of M microbatch losses equal the gradient of the batch loss.
//
// Letters: B rows of the batch, b = B/M rows of a microbatch, S row length,
// D MTP depths; n_m (n_{k,m}) the main (depth-k) targets of microbatch m and
// N = Σ_m n_m (N_k = Σ_m n_{k,m}) those of the batch.
//
// The non-pipelined step takes the mean of each term over the batch's targets:
//   L = mean_main + σ/D · Σ_k mean_k,     mean_k = (Σ_m sum_{k,m}) / N_k.
// A mean over one microbatch (sum_{k,m} / n_{k,m}) cannot be rescaled into that by
// one factor per microbatch: the main term needs n_m/N and depth k needs
// n_{k,m}/N_k, and PipelineCausalLMLoss returns their sum. So each microbatch's
// loss reduces every term as a *sum divided by the batch's count of that term*:
//   L_m = sum_m / N + σ/D · Σ_k sum_{k,m} / N_k,     Σ_m L_m = L  (exactly, in real arithmetic).
// The per-token loss runs with reduction `.sum` and `numLabelTokens` = N or N_k
// (SPEC §2), chosen per call in the order of SPEC §4: main first, then depths 0 … D−1.

import Data
import Model
import Losses
import MTP
import Tensors

extension Batch {
    /// The batch cut into `count` microbatches of `B / count` consecutive rows each (each
    /// a ``Data/Batch`` with its own counts).
    ///
    /// - Parameter count: M, the number of microbatches.
    /// - Returns: the microbatches in row order.
    /// - Throws: ``PipelineError`` when `count < 1` or does not divide the batch's rows.
    public func microbatches(_ count: Int) throws -> [Batch] {
        guard count >= 1, rows % count == 0 else {
            throw PipelineError("\(count) microbatches do not divide a batch of \(rows) rows evenly")
        }
        let b = rows / count
        return try (0..<count).map { m in try sliced(rows: (m * b)..<((m + 1) * b)) }
    }
}

/// How many targets each loss term has, in one microbatch or a whole batch: the
/// denominators of the normalisation above.
public struct TargetCounts: Equatable, Sendable {
    /// Main-loss targets (labels that are not the ignore index).
    public var main: Int
    /// Depth-k targets (`mtpDepthLabels(labels, depth: k, seqIdx:)` that are not the ignore index).
    public var depths: [Int]

    /// Counts with the given values.
    public init(main: Int, depths: [Int]) {
        self.main = main
        self.depths = depths
    }

    /// The targets of `labels` packed as `seqIdx` for the main loss and `depths` MTP depths,
    /// labelled exactly as ``MTP/calculateMTPLoss(_:perDepthHidden:perDepthLogits:perDepthTargets:labels:model:scalingFactor:numLabelTokens:ignoreIndex:cuSeqlens:seqIdx:lmWeight:)``
    /// labels them.
    ///
    /// - Parameters:
    ///   - ignoreIndex: the label that masks a depth's target (the loss config's).
    ///   - lossIgnoreIndex: the label the per-token loss skips (the loss function's).
    /// - Throws: ``MTP/MTPError`` when `seqIdx` does not match the labels.
    public init(labels: Tensor, seqIdx: Tensor, depths: Int, ignoreIndex: Int = -100, lossIgnoreIndex: Int = -100) throws {
        func valid(_ t: Tensor) -> Int { t.int64s.reduce(0) { $0 + ($1 == Int64(lossIgnoreIndex) ? 0 : 1) } }
        main = valid(labels)
        self.depths = try (0..<depths).map { try valid(mtpDepthLabels(labels, depth: $0, seqIdx: seqIdx, ignoreIndex: ignoreIndex)) }
    }

    /// The counts of every term added up.
    public static func + (a: TargetCounts, b: TargetCounts) -> TargetCounts {
        TargetCounts(main: a.main + b.main, depths: zip(a.depths, b.depths).map(+))
    }
}

// MARK: - The per-term normalising loss

/// The order of the terms of one `PipelineCausalLMLoss` call, with the denominator of each
/// and the target count it must see (a check that the terms come in the order assumed).
final class TermSchedule: @unchecked Sendable {
    // Used by one loss call on one stage thread; never shared across threads.
    private let denominators: [Int?]
    private let local: [Int]
    private let ignoreIndex: Int
    private(set) var calls = 0

    init(global: TargetCounts, local: TargetCounts, divide: Bool, ignoreIndex: Int) {
        denominators = divide ? [global.main] + global.depths : [Int?](repeating: nil, count: 1 + global.depths.count)
        self.local = [local.main] + local.depths
        self.ignoreIndex = ignoreIndex
    }

    /// The `numLabelTokens` of the next term, after checking its target count.
    func next(labels: Tensor) throws -> Int? {
        let i = calls
        calls += 1
        guard i < local.count else {
            throw PipelineError("the microbatch loss made \(calls) per-token loss calls, expected at most \(local.count) (main + depths)")
        }
        let n = labels.int64s.reduce(0) { $0 + ($1 == Int64(ignoreIndex) ? 0 : 1) }
        guard n == local[i] else {
            let term = i == 0 ? "the main loss" : "MTP depth \(i - 1)"
            throw PipelineError("\(term) of a microbatch has \(n) targets, expected \(local[i]): "
                + "the loss terms came in another order than main, depth 0, 1, … or the seqIdx tail is not this microbatch's")
        }
        return denominators[i]
    }
}

/// A logits loss reduced as `.sum` over a microbatch and divided by the batch's count of the term.
struct NormalizedLogitsLoss: LogitsLoss {
    let base: any LogitsLoss
    let terms: TermSchedule
    var ignoreIndex: Int { base.ignoreIndex }
    var reduction: LossReduction { base.reduction }

    func loss(logits: Tensor, labels: Tensor, numLabelTokens: Int?) throws -> Tensor {
        try base.loss(logits: logits, labels: labels, numLabelTokens: terms.next(labels: labels))
    }
}

/// A fused loss reduced as `.sum` over a microbatch and divided by the batch's count of the term.
struct NormalizedFusedLoss: FusedLinearLoss {
    let base: any FusedLinearLoss
    let terms: TermSchedule
    var ignoreIndex: Int { base.ignoreIndex }
    var reduction: LossReduction { base.reduction }

    func loss(hiddenStates: Tensor, labels: Tensor, lmWeight: Tensor, numLabelTokens: Int?) throws -> Tensor {
        try base.loss(hiddenStates: hiddenStates, labels: labels, lmWeight: lmWeight, numLabelTokens: terms.next(labels: labels))
    }
}

/// The microbatch form of a batch loss: for a `.mean` loss, the same loss with reduction
/// `.sum` whose calls divide by the batch's target counts (a global mean); a `.sum` loss
/// keeps its reduction (a global sum). `terms` must divide exactly when `loss` is `.mean`.
///
/// - Throws: ``PipelineError`` for `.none` or a `.mean` loss kind this module cannot switch to `.sum`.
func microbatchLoss(_ loss: any TokenLoss, terms: TermSchedule) throws -> any TokenLoss {
    let summed: any TokenLoss
    switch loss.reduction {
    case .sum: summed = loss
    case .none: throw PipelineError("a pipeline needs a scalar loss: reduction none is not supported")
    case .mean:
        switch loss {
        case var l as MaskedCrossEntropy: l.reduction = .sum; summed = l
        case var l as ChunkedCrossEntropy: l.reduction = .sum; summed = l
        case var l as FusedLinearCrossEntropy: l.reduction = .sum; summed = l
        case var l as VocabularyParallelFusedLinearCrossEntropy: l.base.reduction = .sum; summed = l
        case var l as VocabularyParallelLogitsCrossEntropy: l.reduction = .sum; summed = l
        default:
            throw PipelineError("\(type(of: loss)) with reduction mean cannot be normalised per microbatch; "
                + "pass it with reduction sum or use MaskedCrossEntropy, ChunkedCrossEntropy or FusedLinearCrossEntropy")
        }
    }
    switch summed {
    case let fused as any FusedLinearLoss: return NormalizedFusedLoss(base: fused, terms: terms)
    case let plain as any LogitsLoss: return NormalizedLogitsLoss(base: plain, terms: terms)
    default: throw PipelineError("unsupported loss type \(type(of: loss)): conform to LogitsLoss or FusedLinearLoss")
    }
}
