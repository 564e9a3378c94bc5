import XCTest
@_spi(Kernels) @testable import Tensors

/// The caching allocator under tensor storage: size classes, reuse of freed blocks, the
/// cap, and that live-byte accounting does not count cached blocks.
final class BlockCacheTests: XCTestCase {
    func testSizeClassesCoverTheRequestWithLittleWaste() {
        XCTAssertEqual(BlockCache.sizeClass(100), 100, "small blocks are not rounded")
        XCTAssertEqual(BlockCache.sizeClass(BlockCache.minimumBytes + 1), BlockCache.minimumBytes + 4096)
        XCTAssertEqual(BlockCache.sizeClass(1 << 20), 1 << 20)
        XCTAssertEqual(BlockCache.sizeClass((1 << 20) + 1), (1 << 20) + (1 << 17))
        XCTAssertEqual(BlockCache.sizeClass(33_554_433), 33_554_432 + 4_194_304)
        var previous = 0
        for bytes in stride(from: 1, to: 1 << 26, by: 9_973) {
            let size = BlockCache.sizeClass(bytes)
            XCTAssertGreaterThanOrEqual(size, bytes)
            XCTAssertLessThanOrEqual(Double(size), Double(bytes) * 1.125 + 4096, "waste at \(bytes)")
            XCTAssertGreaterThanOrEqual(size, previous, "monotonic at \(bytes)")
            previous = size
        }
    }

    func testAFreedLargeBlockServesTheNextRequestOfItsClass() {
        BlockCache.empty()
        let bytes = 3 << 20
        let first = BlockCache.allocate(bytes)
        BlockCache.release(first, bytes: bytes)
        XCTAssertEqual(BlockCache.cachedBytes, BlockCache.sizeClass(bytes))
        let second = BlockCache.allocate(bytes - 1000)   // same class
        XCTAssertEqual(first, second)
        XCTAssertEqual(BlockCache.cachedBytes, 0)
        BlockCache.release(second, bytes: bytes - 1000)
        BlockCache.empty()
        XCTAssertEqual(BlockCache.cachedBytes, 0)
    }

    func testTensorsReuseBlocksAndLiveBytesIgnoreTheCache() {
        BlockCache.empty()
        let before = AllocationMeter.currentBytes
        do {
            let t = Tensor.zeros([1 << 18])   // 1 MiB
            XCTAssertEqual(AllocationMeter.currentBytes - before, 1 << 20)
            XCTAssertEqual(t.floats.reduce(0, +), 0)
        }
        XCTAssertEqual(AllocationMeter.currentBytes, before, "a cached block is not live")
        XCTAssertGreaterThanOrEqual(BlockCache.cachedBytes, 1 << 20)
        // Reused for zeros: the old contents must not show through.
        do {
            var dirty = Tensor.uninitialized([1 << 18], dtype: .float32)
            dirty.floatPointer.update(repeating: 7, count: 1 << 18)
            dirty = Tensor.zeros([1]) // drop the dirty block back into the cache
            let clean = Tensor.zeros([1 << 18])
            XCTAssertEqual(clean.floats.max(), 0)
            XCTAssertEqual(dirty.count, 1)
        }
        BlockCache.empty()
    }

    func testTheCacheNeverHoldsMoreThanItsLimit() {
        BlockCache.empty()
        XCTAssertLessThanOrEqual(BlockCache.limitBytes, 4 << 30)
        let blocks = (0..<4).map { _ in BlockCache.allocate(64 << 20) }
        for b in blocks { BlockCache.release(b, bytes: 64 << 20) }
        XCTAssertLessThanOrEqual(BlockCache.cachedBytes, BlockCache.limitBytes)
        BlockCache.empty()
    }
}
