// Where a run's documents came from, recorded in its checkpoint: what the checkpoint
// can promise depends on it (only the built-in corpus has exact floors and a known best
// speculative acceptance).

import Foundation

/// The source of a run's documents.
///
/// Stored in ``TrainingOptions/dataSource``; checkpoints written before it existed decode
/// it as nil (unknown).
public enum TrainingDataSource: Codable, Equatable, Sendable {
    /// The built-in seeded Markov corpus (``Data/SyntheticCorpus``).
    case builtIn
    /// A UTF-8 text file, byte-level tokens.
    case text(path: String)
    /// A flat token file (uint16, nanoGPT / llm.c).
    case tokens(path: String)

    /// The same source with its path absolute and standardized (relative paths resolve
    /// against the current folder), so that a run resumes from any folder and two
    /// spellings of one file compare equal. Runs record their paths this way; checkpoints
    /// written before that may hold relative ones.
    public var standardized: TrainingDataSource {
        switch self {
        case .builtIn: .builtIn
        case .text(let path): .text(path: Self.absolute(path))
        case .tokens(let path): .tokens(path: Self.absolute(path))
        }
    }

    /// `path` made absolute and standardized (`.`, `..` and repeated slashes removed).
    public static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

extension TrainingOptions {
    /// The best acceptance rate speculative decoding with `depths` MTP depths can reach on
    /// this run's data, per depth; nil when it is not known.
    ///
    /// Known only for the built-in corpus: it is a first-order chain and depth k sees the
    /// embedding of the token it follows (the previous draft), so an exact depth-k head
    /// predicts P(· | that token), exactly what the exact main model predicts when it
    /// verifies that position. Its draft distribution equals the target, so every draft
    /// passes: greedy drafts equal the greedy choice (argmax ties broken alike), sampled
    /// drafts pass with probability Σ min(p, q) = 1. Text, token files and checkpoints that
    /// do not record their source (nil ``dataSource``) have no such bound.
    /// - Returns: `depths` ones for the built-in corpus, else nil.
    public func bestAcceptance(depths: Int) -> [Double]? {
        guard dataSource == .builtIn else { return nil }
        return [Double](repeating: 1, count: depths)
    }
}
