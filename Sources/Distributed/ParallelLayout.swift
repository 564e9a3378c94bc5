// How the N ranks of a job are arranged: a (data, pipeline, context, tensor) grid,
// N = D × P × C × T.
//
// Rank r = ((d·P + p)·C + c)·T + t holds vocabulary shard t of sequence chunk c of pipeline
// stage p of data replica d: the T ranks of a tensor group, which talk every step (loss
// merge, hidden-state gradient), are neighbours, then the C chunks of a row (K/V every
// layer), then the P stages of a replica (on a cluster, `mpirun` fills hosts in rank order:
// the chattiest groups then stay on one host where they fit, and only the gradient
// all-reduce crosses hosts — Megatron-LM's order too).
//
//   D = 2, P = 2:   rank 0 (d0, p0)  rank 1 (d0, p1)     pipeline groups {0, 1}, {2, 3}
//                   rank 2 (d1, p0)  rank 3 (d1, p1)     data groups     {0, 2}, {1, 3}
//   D = 2, T = 2:   rank 0 (d0, t0)  rank 1 (d0, t1)     tensor groups   {0, 1}, {2, 3}
//                   rank 2 (d1, t0)  rank 3 (d1, t1)     data groups     {0, 2}, {1, 3}

/// The parallel dimensions of a run.
public struct ParallelLayout: Codable, Equatable, Sendable {
    /// Data-parallel replicas D.
    public var data: Int
    /// Pipeline stages P.
    public var pipeline: Int
    /// Vocabulary-parallel ranks T (the embedding and LM head split by vocabulary rows).
    public var tensor: Int
    /// Context-parallel ranks C (each packed row's tokens split over C ranks, NN's `SequenceSplit`).
    public var context: Int

    /// A layout of D replicas of P stages.
    public init(data: Int = 1, pipeline: Int = 1, tensor: Int = 1, context: Int = 1) {
        self.data = data
        self.pipeline = pipeline
        self.tensor = tensor
        self.context = context
    }

    /// N = D × P × T × C.
    public var ranks: Int { data * pipeline * tensor * context }

    /// The replica and stage of `rank`.
    public func coordinates(of rank: Int) -> (data: Int, pipeline: Int) {
        (rank / tensor / context / pipeline, rank / tensor / context % pipeline)
    }

    /// The vocabulary shard t of `rank`.
    public func tensorRank(of rank: Int) -> Int { rank % tensor }

    /// The sequence chunk c of `rank`.
    public func contextRank(of rank: Int) -> Int { rank / tensor % context }

    /// Throws unless every dimension is positive and their product is the job's rank count.
    ///
    /// - Throws: ``DistributedError`` naming the numbers.
    public func validate(ranks n: Int) throws {
        for (name, v) in [("data-parallel", data), ("pipeline-stages", pipeline), ("tensor-parallel", tensor),
                          ("context-parallel", context)] where v < 1 || v > 1 << 20 {
            throw DistributedError("--\(name) must be in 1...\(1 << 20), got \(v)")
        }
        guard context == 1 || pipeline == 1 else {
            throw DistributedError("context parallelism with pipeline stages is not implemented (got C = \(context), P = \(pipeline))")
        }
        guard ranks == n else {
            throw DistributedError("the job has \(n) ranks but --data-parallel \(data) × --pipeline-stages \(pipeline) × --tensor-parallel \(tensor) × --context-parallel \(context) = \(ranks)")
        }
    }
}

/// The communicators of one rank in a ``ParallelLayout``.
public final class ProcessGrid: @unchecked Sendable {
    // Immutable after init.
    /// Every rank of the job.
    public let world: any Communicator
    /// The layout.
    public let layout: ParallelLayout
    /// The ranks of this rank's replica and shard, one per stage, in stage order.
    public let pipelineGroup: any Communicator
    /// The ranks that run this rank's stage and shard, one per replica, in replica order.
    public let dataGroup: any Communicator
    /// The ranks that hold this rank's stage and chunk of its replica, one per vocabulary shard, in shard order.
    public let tensorGroup: any Communicator
    /// The ranks that hold this rank's stage and shard of its replica, one per sequence chunk, in chunk order.
    public let contextGroup: any Communicator
    /// The ranks whose parameters' gradients add up to the batch gradient: this rank's stage
    /// and shard in every replica and chunk (the data group when C = 1).
    public let replicaGroup: any Communicator

    /// Splits `world` by `layout` (every rank must call this).
    ///
    /// - Throws: ``DistributedError`` when the layout does not fit the world.
    public init(world: any Communicator, layout: ParallelLayout) throws {
        try layout.validate(ranks: world.size)
        self.world = world
        self.layout = layout
        let (d, p) = layout.coordinates(of: world.rank)
        let t = layout.tensorRank(of: world.rank), c = layout.contextRank(of: world.rank)
        let (tensors, chunks) = (layout.tensor, layout.context)
        pipelineGroup = try world.split(color: (d * chunks + c) * tensors + t, key: p)
        dataGroup = try world.split(color: (p * chunks + c) * tensors + t, key: d)
        tensorGroup = try world.split(color: (d * layout.pipeline + p) * chunks + c, key: t)
        contextGroup = try world.split(color: (d * layout.pipeline + p) * tensors + t, key: c)
        replicaGroup = chunks == 1 ? dataGroup : try world.split(color: p * tensors + t, key: d * chunks + c)
    }

    /// This rank's replica d.
    public var replica: Int { dataGroup.rank }
    /// This rank's stage p.
    public var stage: Int { pipelineGroup.rank }
    /// This rank's vocabulary shard t.
    public var tensorRank: Int { tensorGroup.rank }
    /// This rank's sequence chunk c.
    public var contextRank: Int { contextGroup.rank }
}

extension Communicator {
    /// Sums Doubles over the group in full precision and in rank order, so every rank gets
    /// the same bits: the values travel bit for bit (each Double as two Float-sized words of
    /// an all-gather, no arithmetic on the way) and each rank adds them up itself.
    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var words = [Float](repeating: 0, count: 2 * values.count)
        for (i, x) in values.enumerated() {
            words[2 * i] = Float(bitPattern: UInt32(truncatingIfNeeded: x.bitPattern))
            words[2 * i + 1] = Float(bitPattern: UInt32(truncatingIfNeeded: x.bitPattern >> 32))
        }
        let all = try allGather(words)
        var sums = [Double](repeating: 0, count: values.count)
        for r in 0..<size {
            for i in values.indices {
                let low = UInt64(all[r * words.count + 2 * i].bitPattern), high = UInt64(all[r * words.count + 2 * i + 1].bitPattern)
                sums[i] += Double(bitPattern: high << 32 | low)
            }
        }
        return sums
    }
}
