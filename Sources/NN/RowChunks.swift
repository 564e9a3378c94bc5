// A fixed row split shared by the fused kernels of this module.

import Tensors

/// A fixed split of `count` rows into at most `maximumChunks` chunks of at least
/// `minimumRows` rows: unlike the core count, it is the same on every machine, so
/// per-chunk partial sums reduce in the same order everywhere.
struct RowChunks {
    let count: Int
    let chunks: Int
    let perChunk: Int

    init(count: Int, minimumRows: Int, maximumChunks: Int = 16) {
        self.count = count
        chunks = Swift.max(1, Swift.min(maximumChunks, count / Swift.max(1, minimumRows)))
        perChunk = (count + chunks - 1) / chunks
    }

    func rows(_ chunk: Int) -> Range<Int> {
        let lo = Swift.min(count, chunk * perChunk)
        return lo..<Swift.min(count, lo + perChunk)
    }

    /// Calls `body(chunk, rows)` for every chunk, in parallel.
    func forEach(_ body: (Int, Range<Int>) -> Void) {
        Parallel.forEachBlock(count: chunks) { r in
            for c in r { body(c, rows(c)) }
        }
    }
}
