// Small SIMD8 row primitives shared by the fused kernels of this module.

@_spi(Kernels) import Tensors

enum RowMath {
    /// e^x lane-wise (``VectorMath/exp(_:)-(SIMD8<Float>)``, always inlined).
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.exp(x) }

    /// Σ a[i]·b[i].
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float { VectorMath.dot(a, b, count: n) }

    /// The largest of x[0..<n] (−inf for n = 0; NaN is not propagated here, the later exp does).
    @inline(__always)
    static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float { VectorMath.max(x, count: n) }

    /// x[i] ← exp(x[i] − shift) for i < n; returns the sum of the new values.
    @inline(__always)
    static func expInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        VectorMath.expShifted(x, count: n, shift: shift)
    }

    /// x[i] ← x[i]·s for i < n.
    @inline(__always)
    static func scale(_ x: UnsafeMutablePointer<Float>, _ n: Int, by s: Float) {
        let s8 = SIMD8<Float>(repeating: s)
        var i = 0
        while i + 8 <= n {
            store(load(x + i) * s8, x + i)
            i += 8
        }
        while i < n { x[i] *= s; i += 1 }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}

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
