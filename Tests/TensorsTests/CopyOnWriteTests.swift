import XCTest
@testable import Tensors
import TestSupport

/// Tensors are values: writes through one copy never show through another.
final class CopyOnWriteTests: XCTestCase {
    func testWritingACopyLeavesTheOriginal() {
        let original = Tensor([Float(1), 2, 3])
        var copy = original
        XCTAssertTrue(copy.sharesStorage(with: original))
        copy.withUnsafeMutableBytes { $0.storeBytes(of: Float(9), as: Float.self) }
        XCTAssertEqual(original.floats, [1, 2, 3])
        XCTAssertEqual(copy.floats, [9, 2, 3])
        XCTAssertFalse(copy.sharesStorage(with: original))
    }

    func testAUniqueTensorIsWrittenInPlace() {
        var t = Tensor([Float(1), 2, 3])
        let before = t.withUnsafeBytes { $0.baseAddress }
        t.withUnsafeMutableBytes { $0.storeBytes(of: Float(5), toByteOffset: 4, as: Float.self) }
        XCTAssertEqual(t.withUnsafeBytes { $0.baseAddress }, before)
        XCTAssertEqual(t.floats, [1, 5, 3])
    }

    func testViewsDoNotAliasWrites() throws {
        let original = try Tensor([Float(1), 2, 3, 4], shape: [2, 2])
        var reshaped = try original.reshaped([4])
        XCTAssertTrue(reshaped.sharesStorage(with: original))
        reshaped.withUnsafeMutableBytes { $0.storeBytes(of: Float(-1), as: Float.self) }
        XCTAssertEqual(original.floats, [1, 2, 3, 4])
        var detached = original.detached()
        detached.withUnsafeMutableBytes { $0.storeBytes(of: Float(-1), as: Float.self) }
        XCTAssertEqual(original.floats, [1, 2, 3, 4])
        var same = original.cast(to: .float32)
        same.withUnsafeMutableBytes { $0.storeBytes(of: Float(-1), as: Float.self) }
        XCTAssertEqual(original.floats, [1, 2, 3, 4])
    }

    func testWritingAnInputAfterAnOpLeavesItsGradientIntact() throws {
        // log's pullback reads x; mutating the caller's copy must not change it.
        var x = Tensor([Float(2), 4]).requiringGrad()
        let y = x.log().sum()
        x.withUnsafeMutableBytes { $0.storeBytes(of: Float(100), as: Float.self) }
        try y.backward()
        XCTAssertEqual(x.grad?.floats, [0.5, 0.25])
    }
}
