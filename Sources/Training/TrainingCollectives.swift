// How a Trainer cooperates with the other processes of a multi-process run. The
// Training module knows nothing of MPI: a driver (the Distributed module) fills these
// closures; the defaults are those of a single process, and with them a run is bit for
// bit what it was before multi-process training existed.
//
// Where each hook runs in a step or an evaluation:
//   trainStep   micro-steps (the accumulate closure) → synchronizeGradients (data-parallel
//               all-reduce) → gradient norm, reduced by reduceGradientNormSquare over
//               ranks holding disjoint parameters (pipeline stages) → clip, AdamW
//   evaluate    synchronizeState (every rank gets every stage's current parameters and
//               optimizer moments) → this rank's share of the held-out batches →
//               sumOverRanks of the CE / hit / count sums
//   after step  anyRank of the stop request (every rank stops at the same step)
//   files       only the writer (rank 0) creates the output folder and writes them, after
//               synchronizeState

/// The multi-process hooks of a ``Trainer`` (identity operations in a single process).
public struct TrainingCollectives {
    /// Whether this process writes the run's files and prints (rank 0).
    public var isWriter = true
    /// Called once per optimizer step after every micro-step's gradients are in:
    /// replaces each gradient by its sum over the data-parallel replicas.
    public var synchronizeGradients: () throws -> Void = {}
    /// Maps this rank's Σ g² (over the parameters it updates) to the global Σ g²; nil keeps
    /// the local norm as it is (a single process: bit-identical to the norm computed alone).
    public var reduceGradientNormSquare: ((Double) throws -> Double)?
    /// Makes every parameter and optimizer moment current on this rank (pipeline ranks
    /// update only their own stage's); called before evaluations and checkpoints.
    public var synchronizeState: () throws -> Void = {}
    /// This rank's share of the held-out batches: batch i is evaluated where i % count == index.
    public var evaluationShard: (index: Int, count: Int) = (0, 1)
    /// Sums evaluation partial sums over the ranks that share the held-out set.
    public var sumOverRanks: ([Double]) throws -> [Double] = { $0 }

    /// Whether `flag` is true on any rank (a logical OR over every rank; called by every rank
    /// after every step, so a stop request stops all of them at the same step).
    public var anyRank: (Bool) throws -> Bool = { $0 }

    /// The single-process hooks.
    public init() {}
}
