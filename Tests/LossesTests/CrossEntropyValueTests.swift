// Loss values of MaskedCrossEntropy, ChunkedCrossEntropy and FusedLinearCrossEntropy
// against the Float64 reference, including every edge case of SPEC §2.

import Losses
import Tensors
import TestSupport
import XCTest

final class CrossEntropyValueTests: XCTestCase {
    // MARK: Shapes and reductions

    func testLogitsLossesMatchReferenceForEveryReductionAndShape() throws {
        // V = 1 (a single class), 11 (SIMD tail), 16 (no tail); N = 7 and 10 are not
        // multiples of the chunk length 3.
        for labelShape in [[7], [2, 5]] {
            for v in [1, 11, 16] {
                let n = labelShape.reduce(1, *)
                let logits = randomTensor(labelShape + [v], -4, 4, seed: UInt64(n * 100 + v))
                let labels = makeLabels(labelShape, v: v, ignoreEvery: 3, ignoreOffset: 1)
                for reduction in LossReduction.allCases {
                    let ref = ReferenceCE.logits(doubles(logits), n: n, v: v, labels: labels, reduction: reduction)
                    for (name, run) in logitsLosses(reduction) {
                        let out = try run(logits, labelTensor(labels, labelShape), nil, nil)
                        XCTAssertEqual(out.shape, reduction == .none ? [n] : [], name)
                        XCTAssertEqual(out.dtype, .float32, name)
                        assertClose(out, ref.value, rtol: 1e-5, atol: 1e-5, "\(name) \(reduction) \(labelShape) V=\(v)")
                    }
                }
            }
        }
    }

    func testFusedMatchesReferenceForEveryReductionAndShape() throws {
        let h = 5
        for labelShape in [[7], [2, 5]] {
            for v in [1, 11, 16] {
                let n = labelShape.reduce(1, *)
                let hidden = randomTensor(labelShape + [h], -1, 1, seed: UInt64(n))
                let weight = randomTensor([v, h], -1, 1, seed: UInt64(v + 50))
                let labels = makeLabels(labelShape, v: v, ignoreEvery: 4, ignoreOffset: 2)
                for reduction in LossReduction.allCases {
                    let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                                labels: labels, reduction: reduction)
                    let out = try FusedLinearCrossEntropy(reduction: reduction)(
                        hiddenStates: hidden, labels: labelTensor(labels, labelShape), lmWeight: weight)
                    XCTAssertEqual(out.shape, reduction == .none ? [n] : [])
                    assertClose(out, ref.value, rtol: 1e-5, atol: 1e-5, "fused \(reduction) \(labelShape) V=\(v)")
                }
            }
        }
    }

    func testInt32LabelsGiveTheSameLossAsInt64() throws {
        let logits = randomTensor([6, 9], -3, 3, seed: 4)
        let labels = makeLabels([6], v: 9, ignoreEvery: 5)
        for (name, run) in logitsLosses(.sum) {
            let a = try run(logits, labelTensor(labels, [6], dtype: .int32), nil, nil)
            let b = try run(logits, labelTensor(labels, [6]), nil, nil)
            XCTAssertEqual(a.floats, b.floats, name)
        }
    }

    /// The fused loss processes `max(1, chunkBudgetFloats / V)` rows at a time: with a
    /// budget of one row the two labelled rows (the ignored one between them is
    /// compacted away) take two chunks; with a budget of two rows and no ignored row,
    /// three rows take two chunks of a dense pass.
    func testFusedSpansSeveralChunks() throws {
        let v = 37, h = 3, n = 3
        for (budget, labels) in [(v, [17, -100, v - 1]), (2 * v + 5, [4, 0, v - 1])] {
            let loss = FusedLinearCrossEntropy(reduction: .none, chunkBudgetFloats: budget)
            XCTAssertEqual(Swift.max(1, loss.chunkBudgetFloats / v), budget / v)
            let hidden = randomTensor([n, h], -1, 1, seed: 3)
            let weight = randomTensor([v, h], -1, 1, seed: 4)
            let x = hidden.requiringGrad(), w = weight.requiringGrad()
            let out = try loss(hiddenStates: x, labels: labelTensor(labels, [n]), lmWeight: w)
            let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                        labels: labels, reduction: .none)
            assertClose(out, ref.value, rtol: 2e-5, atol: 2e-5, "fused over two chunks")
            try out.backward(Tensor.ones([n]))
            assertClose(x.grad, ref.dHidden, rtol: 1e-4, atol: 1e-5, "dh over two chunks")
            assertClose(w.grad, ref.dWeight, rtol: 1e-4, atol: 1e-6, "dW over two chunks")
            // The same loss in sum reduction (gradients precomputed in forward) over the chunks.
            let xs = hidden.requiringGrad(), ws = weight.requiringGrad()
            let sum = try FusedLinearCrossEntropy(chunkBudgetFloats: budget)(hiddenStates: xs, labels: labelTensor(labels, [n]), lmWeight: ws)
            try sum.backward()
            assertClose(xs.grad, ref.dHidden, rtol: 1e-4, atol: 1e-5, "dh, sum reduction")
            assertClose(ws.grad, ref.dWeight, rtol: 1e-4, atol: 1e-6, "dW, sum reduction")
        }
    }

    // MARK: Half precision

    func testHalfPrecisionLogitsWithUpcastMatchReferenceOnStoredValues() throws {
        for dtype in [DType.float16, .bfloat16] {
            let logits = randomTensor([3, 4, 13], -6, 6, seed: 3).cast(to: dtype)
            let labels = makeLabels([3, 4], v: 13, ignoreEvery: 5)
            for reduction in LossReduction.allCases {
                let ref = ReferenceCE.logits(doubles(logits), n: 12, v: 13, labels: labels, reduction: reduction)
                for (name, run) in logitsLosses(reduction) {
                    let out = try run(logits, labelTensor(labels, [3, 4]), nil, nil)
                    XCTAssertEqual(out.dtype, .float32)
                    assertClose(out, ref.value, rtol: 1e-5, atol: 1e-5, "\(name) \(dtype) \(reduction)")
                }
            }
        }
    }

    func testHalfPrecisionFusedInputsMatchReferenceOnStoredValues() throws {
        for dtype in [DType.float16, .bfloat16] {
            let hidden = randomTensor([2, 3, 6], -1, 1, seed: 8).cast(to: dtype)
            let weight = randomTensor([10, 6], -1, 1, seed: 9).cast(to: dtype)
            let labels = makeLabels([2, 3], v: 10, ignoreEvery: 4)
            for softcap in [Float(0), 30] {
                let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: 6, h: 6, v: 10,
                                            labels: labels, softcap: Double(softcap))
                let out = try FusedLinearCrossEntropy(logitSoftcapping: softcap)(
                    hiddenStates: hidden, labels: labelTensor(labels, [2, 3]), lmWeight: weight)
                assertClose(out, ref.value, rtol: 1e-5, atol: 1e-5, "fused \(dtype) softcap \(softcap)")
            }
        }
    }

    /// With `fp32Upcast: false` each row's loss, and the reduced loss, are rounded to the
    /// logits' dtype (as PyTorch's half kernels round them): every value is representable in
    /// that dtype and within one of its ulps (2⁻¹⁰ relative for Float16, 2⁻⁷ for BFloat16)
    /// of the exact value.
    func testNoUpcastRoundsToTheInputPrecision() throws {
        for (dtype, ulp) in [(DType.float16, 0x1p-10), (.bfloat16, 0x1p-7)] {
            let logits = randomTensor([2, 5, 13], -6, 6, seed: 21).cast(to: dtype)
            let labels = makeLabels([2, 5], v: 13, ignoreEvery: 4)
            for reduction in LossReduction.allCases {
                let ref = ReferenceCE.logits(doubles(logits), n: 10, v: 13, labels: labels, reduction: reduction)
                let rounded = try MaskedCrossEntropy(fp32Upcast: false, reduction: reduction)(
                    logits: logits, labels: labelTensor(labels, [2, 5]))
                let upcast = try MaskedCrossEntropy(fp32Upcast: true, reduction: reduction)(
                    logits: logits, labels: labelTensor(labels, [2, 5]))
                for x in rounded.floats {
                    XCTAssertEqual(Tensor(scalar: x).cast(to: dtype).floats[0], x, "\(x) is not a \(dtype) value")
                }
                // Rows are rounded once; a reduced loss is rounded again after summing rounded rows.
                let tolerance = reduction == .none ? ulp : 2 * ulp
                assertClose(rounded, ref.value, rtol: tolerance, atol: 1e-6, "no upcast \(dtype) \(reduction)")
                assertClose(rounded.floats, upcast.floats.map { Double($0) }, rtol: tolerance, atol: 1e-6,
                            "no upcast vs upcast \(dtype) \(reduction)")
            }
        }
    }

    // MARK: Masks and ignored rows

    func testMaskZeroIgnoresThoseLabels() throws {
        let v = 9
        let logits = randomTensor([2, 6, v], -3, 3, seed: 5)
        var labels = makeLabels([2, 6], v: v)
        labels[4] = 99  // out of range, but masked out: never validated
        let keep: [Int] = [1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0]
        let effective = zip(labels, keep).map { $1 == 0 ? -100 : $0 }
        for maskDType in [DType.int64, .bool, .float32] {
            let mask = try Tensor(keep.map { Int64($0) }, shape: [2, 6], dtype: maskDType)
            for reduction in LossReduction.allCases {
                let ref = ReferenceCE.logits(doubles(logits), n: 12, v: v, labels: effective, reduction: reduction)
                for (name, run) in logitsLosses(reduction) {
                    let x = logits.requiringGrad()
                    let out = try run(x, labelTensor(labels, [2, 6]), mask, nil)
                    assertClose(out, ref.value, rtol: 1e-5, atol: 1e-5, "\(name) mask \(maskDType) \(reduction)")
                    try backpropagate(out)
                    assertClose(x.grad, ref.dz, rtol: 1e-4, atol: 1e-6, "\(name) mask grad \(reduction)")
                }
            }
        }
    }

    /// Only an exact 0 drops a label (PyTorch's `mask == 0`): 0.5, −0.0 and NaN behave as
    /// 1, 0 and 1.
    func testFloatMaskDropsOnlyExactZeros() throws {
        let logits = randomTensor([4, 5], -2, 2, seed: 25)
        let labels = [1, 2, 3, 4]
        let mask = tensor([0.5, -0.0, .nan, 1], [4])
        let ref = ReferenceCE.logits(doubles(logits), n: 4, v: 5, labels: [1, -100, 3, 4], reduction: .none)
        for (name, run) in logitsLosses(.none) {
            assertClose(try run(logits, labelTensor(labels, [4]), mask, nil), ref.value, rtol: 1e-5, atol: 1e-6, name)
        }
    }

    func testEmptyInputs() throws {
        for reduction in LossReduction.allCases {
            let expected: [Float] = reduction == .none ? [] : [0]
            for (name, run) in logitsLosses(reduction) {
                let x = Tensor.zeros([0, 5]).requiringGrad()
                let out = try run(x, labelTensor([], [0]), nil, nil)
                XCTAssertEqual(out.floats, expected, "\(name) N = 0 \(reduction)")
                try backpropagate(out)
                XCTAssertEqual(x.grad?.shape, [0, 5])
                // V = 0 is consistent only with every label ignored.
                XCTAssertEqual(try run(Tensor.zeros([2, 0]), labelTensor([-100, -100], [2]), nil, nil).floats,
                               reduction == .none ? [0, 0] : [0], "\(name) V = 0")
            }
            let fused = FusedLinearCrossEntropy(reduction: reduction)
            XCTAssertEqual(try fused(hiddenStates: Tensor.zeros([0, 3]), labels: labelTensor([], [0]),
                                     lmWeight: randomTensor([4, 3])).floats, expected, "fused N = 0")
            // H = 0: every logit is 0, so each row costs log V.
            let h = Tensor.zeros([2, 0]).requiringGrad(), w = Tensor.zeros([4, 0]).requiringGrad()
            let out = try fused(hiddenStates: h, labels: labelTensor([1, 3], [2]), lmWeight: w)
            let logV = Foundation.log(4.0)
            assertClose(out, reduction == .none ? [logV, logV] : [reduction == .mean ? logV : 2 * logV],
                        rtol: 1e-6, atol: 1e-6, "fused H = 0 \(reduction)")
            try backpropagate(out)
            XCTAssertEqual(h.grad?.shape, [2, 0])
            XCTAssertEqual(w.grad?.shape, [4, 0])
        }
    }

    func testAllIgnoredRowsGiveZeroNotNaN() throws {
        let v = 7, h = 4
        let labels = labelTensor(Array(repeating: -100, count: 6), [2, 3])
        for reduction in LossReduction.allCases {
            let expected: [Float] = reduction == .none ? Array(repeating: 0, count: 6) : [0]
            for (name, run) in logitsLosses(reduction) {
                let x = randomTensor([2, 3, v], seed: 2).requiringGrad()
                let out = try run(x, labels, nil, nil)
                XCTAssertEqual(out.floats, expected, "\(name) \(reduction)")
                try backpropagate(out)
                XCTAssertEqual(x.grad?.floats, Array(repeating: 0, count: 6 * v), "\(name) \(reduction) grad")
            }
            let hidden = randomTensor([2, 3, h], seed: 3).requiringGrad()
            let weight = randomTensor([v, h], seed: 4).requiringGrad()
            let out = try FusedLinearCrossEntropy(reduction: reduction)(hiddenStates: hidden, labels: labels, lmWeight: weight)
            XCTAssertEqual(out.floats, expected, "fused \(reduction)")
            try backpropagate(out)
            XCTAssertEqual(hidden.grad?.floats, Array(repeating: 0, count: 6 * h), "fused \(reduction) dh")
            XCTAssertEqual(weight.grad?.floats, Array(repeating: 0, count: v * h), "fused \(reduction) dW")
        }
    }

    func testNumLabelTokensZeroGivesExactlyZeroWithZeroGradients() throws {
        let v = 6, h = 3
        var raw = randomTensor([5, v], seed: 6).floats
        raw[7] = .nan  // even a NaN logit cannot leak through a zero divisor
        let labelsArray = makeLabels([5], v: v)
        let labels = labelTensor(labelsArray, [5])
        for (name, run) in logitsLosses(.sum) {
            let x = tensor(raw, [5, v]).requiringGrad()
            let out = try run(x, labels, nil, 0)
            XCTAssertEqual(out.floats, [0], name)
            XCTAssertEqual(out.floats[0].sign, .plus, name)
            try out.backward()
            XCTAssertEqual(x.grad?.floats, Array(repeating: 0, count: 5 * v), name)
        }
        let hidden = randomTensor([5, h], seed: 7).requiringGrad()
        let weight = randomTensor([v, h], seed: 8).requiringGrad()
        let out = try FusedLinearCrossEntropy()(hiddenStates: hidden, labels: labels, lmWeight: weight, numLabelTokens: 0)
        XCTAssertEqual(out.floats, [0])
        try out.backward()
        XCTAssertEqual(hidden.grad?.floats, Array(repeating: 0, count: 5 * h))
        XCTAssertEqual(weight.grad?.floats, Array(repeating: 0, count: v * h))
    }

    func testPositiveNumLabelTokensDividesTheSum() throws {
        let v = 8, h = 3, n = 9
        let logits = randomTensor([n, v], -2, 2, seed: 9)
        let labels = makeLabels([n], v: v, ignoreEvery: 4)
        let ref = ReferenceCE.logits(doubles(logits), n: n, v: v, labels: labels, numLabelTokens: 37)
        for (name, run) in logitsLosses(.sum) {
            let x = logits.requiringGrad()
            let out = try run(x, labelTensor(labels, [n]), nil, 37)
            assertClose(out, ref.value, rtol: 1e-5, atol: 1e-6, name)
            try out.backward()
            assertClose(x.grad, ref.dz, rtol: 1e-4, atol: 1e-7, "\(name) grad")
        }
        let hidden = randomTensor([n, h], seed: 10), weight = randomTensor([v, h], seed: 11)
        let fref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                     labels: labels, numLabelTokens: 37)
        let out = try FusedLinearCrossEntropy()(hiddenStates: hidden, labels: labelTensor(labels, [n]),
                                                lmWeight: weight, numLabelTokens: 37)
        assertClose(out, fref.value, rtol: 1e-5, atol: 1e-6, "fused")
    }

    func testCustomIgnoreIndex() throws {
        let v = 7, h = 4, n = 8
        let logits = randomTensor([n, v], -2, 2, seed: 12)
        // −1 as the ignore index, and 2: an in-range class that is then never a target.
        for ignoreIndex in [-1, 2] {
            let labels = makeLabels([n], v: v, ignoreEvery: 3, ignoreIndex: ignoreIndex)
            for reduction in LossReduction.allCases {
                let ref = ReferenceCE.logits(doubles(logits), n: n, v: v, labels: labels, ignoreIndex: ignoreIndex,
                                             reduction: reduction)
                for (name, run) in logitsLosses(reduction, ignoreIndex: ignoreIndex) {
                    let out = try run(logits, labelTensor(labels, [n]), nil, nil)
                    assertClose(out, ref.value, rtol: 1e-5, atol: 1e-6, "\(name) ignore \(ignoreIndex) \(reduction)")
                }
                let hidden = randomTensor([n, h], seed: 13), weight = randomTensor([v, h], seed: 14)
                let fref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                             labels: labels, ignoreIndex: ignoreIndex, reduction: reduction)
                let out = try FusedLinearCrossEntropy(ignoreIndex: ignoreIndex, reduction: reduction)(
                    hiddenStates: hidden, labels: labelTensor(labels, [n]), lmWeight: weight)
                assertClose(out, fref.value, rtol: 1e-5, atol: 1e-6, "fused ignore \(ignoreIndex) \(reduction)")
            }
        }
    }

    // MARK: Numerical extremes

    func testRowOfEqualLogitsCostsLogV() throws {
        for v in [1, 5, 8, 1000] {
            let logits = Tensor.full([2, v], value: 2.5)
            let labels = labelTensor([0, v - 1], [2])
            for (name, run) in logitsLosses(.none) {
                let out = try run(logits, labels, nil, nil)
                assertClose(out, [Foundation.log(Double(v)), Foundation.log(Double(v))], rtol: 1e-6, atol: 1e-6, "\(name) V=\(v)")
            }
            // Zero hidden states make every logit 0.
            let out = try FusedLinearCrossEntropy(reduction: .none)(
                hiddenStates: Tensor.zeros([2, 3]), labels: labels, lmWeight: randomTensor([v, 3], seed: 1))
            assertClose(out, [Foundation.log(Double(v)), Foundation.log(Double(v))], rtol: 1e-6, atol: 1e-6, "fused V=\(v)")
        }
    }

    func testLogitsOfPlusMinus1e4AreFiniteAndRight() throws {
        let v = 10
        var raw = [Float](repeating: 0, count: 4 * v)
        for i in 0..<4 { raw[i * v] = 1e4; raw[i * v + 1] = -1e4; raw[i * v + 2] = 3 }
        raw[3 * v + 5] = 1e4  // two maxima in the last row
        let logits = tensor(raw, [4, v])
        let labelsArray = [0, 1, 2, 5]
        // Exact: 0 (target is the maximum), 2·10⁴, 10⁴ − 3, log 2.
        let ref = ReferenceCE.logits(doubles(logits), n: 4, v: v, labels: labelsArray, reduction: .none)
        XCTAssertEqual(ref.value[1], 2e4, accuracy: 1e-9)
        for (name, run) in logitsLosses(.none) {
            let x = logits.requiringGrad()
            let out = try run(x, labelTensor(labelsArray, [4]), nil, nil)
            XCTAssertTrue(out.floats.allSatisfy(\.isFinite), name)
            assertClose(out, ref.value, rtol: 1e-6, atol: 1e-6, name)
            try out.backward(Tensor.ones([4]))
            XCTAssertTrue(x.grad!.floats.allSatisfy(\.isFinite), name)
            assertClose(x.grad, ref.dz, rtol: 1e-5, atol: 1e-6, "\(name) grad")
        }
        // Fused: h = 100, W rows ±100 give logits ±10⁴.
        var w = [Float](repeating: 0, count: v)
        w[0] = 100; w[1] = -100; w[2] = 0.03
        let hidden = Tensor.full([3, 1], value: 100), weight = tensor(w, [v, 1])
        let fref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: 3, h: 1, v: v,
                                     labels: [0, 1, 2], reduction: .none)
        let out = try FusedLinearCrossEntropy(reduction: .none)(
            hiddenStates: hidden, labels: labelTensor([0, 1, 2], [3]), lmWeight: weight)
        assertClose(out, fref.value, rtol: 1e-6, atol: 1e-6, "fused ±1e4")
    }

    func testNaNAndInfinityPropagateWithoutTrapping() throws {
        let v = 6
        var raw = randomTensor([5, v], -2, 2, seed: 15).floats
        raw[1 * v + 3] = .nan       // row 1: NaN → NaN
        raw[2 * v + 4] = .infinity  // row 2: +inf → inf − inf = NaN
        raw[3 * v + 1] = -.infinity // row 3: −inf off target → finite
        raw[4 * v + 2] = -.infinity // row 4: −inf at the target → +inf
        let labelsArray = [0, 0, 0, 0, 2]
        let logits = tensor(raw, [5, v])
        let ref = ReferenceCE.logits(raw.map { Double($0) }, n: 5, v: v, labels: labelsArray, reduction: .none)
        XCTAssertTrue(ref.value[1].isNaN && ref.value[2].isNaN && ref.value[3].isFinite && ref.value[4] == .infinity)
        for dtype in [DType.float32, .bfloat16] {
            for (name, run) in logitsLosses(.none) {
                let x = logits.cast(to: dtype).requiringGrad()
                let rows = try run(x, labelTensor(labelsArray, [5]), nil, nil)
                let dref = ReferenceCE.logits(doubles(x), n: 5, v: v, labels: labelsArray, reduction: .none)
                assertClose(rows, dref.value, rtol: 1e-5, atol: 1e-6, "\(name) \(dtype) rows")
                try rows.backward(Tensor.ones([5]))
                let g = x.grad!.floats
                XCTAssertTrue(g[0..<v].allSatisfy(\.isFinite) && g[(3 * v)..<(4 * v)].allSatisfy(\.isFinite), name)
                XCTAssertTrue(g[v..<(2 * v)].allSatisfy(\.isNaN), name)
            }
            for (name, run) in logitsLosses(.sum) {
                XCTAssertTrue(try run(logits.cast(to: dtype), labelTensor(labelsArray, [5]), nil, nil).floats[0].isNaN, name)
            }
        }
        // Fused: a NaN hidden state poisons its own row's loss only.
        var h = randomTensor([3, 2], seed: 16).floats
        h[2] = .nan
        let hidden = tensor(h, [3, 2]).requiringGrad()
        let weight = randomTensor([v, 2], seed: 17).requiringGrad()
        let rows = try FusedLinearCrossEntropy(reduction: .none)(
            hiddenStates: hidden, labels: labelTensor([1, 2, 3], [3]), lmWeight: weight)
        let r = rows.floats
        XCTAssertTrue(r[0].isFinite && r[1].isNaN && r[2].isFinite, "\(r)")
        try rows.backward(Tensor.ones([3]))
        let dh = hidden.grad!.floats
        XCTAssertTrue(dh[0..<2].allSatisfy(\.isFinite) && dh[2..<4].allSatisfy(\.isNaN) && dh[4..<6].allSatisfy(\.isFinite), "\(dh)")
        let sum = try FusedLinearCrossEntropy()(hiddenStates: hidden.detached(), labels: labelTensor([1, 2, 3], [3]),
                                                lmWeight: weight.detached())
        XCTAssertTrue(sum.floats[0].isNaN)
    }

    // MARK: Softcapping

    func testFusedSoftcapMatchesReference() throws {
        let n = 7, h = 4, v = 12
        // Logits up to about ±6: softcap 2 saturates, 30 barely bends.
        let hidden = randomTensor([n, h], -1.5, 1.5, seed: 18)
        let weight = randomTensor([v, h], -1.5, 1.5, seed: 19)
        let labels = makeLabels([n], v: v, ignoreEvery: 4)
        for softcap in [Float(30), 2] {
            let plain = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v, labels: labels)
            for reduction in LossReduction.allCases {
                let ref = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                            labels: labels, reduction: reduction, softcap: Double(softcap))
                let out = try FusedLinearCrossEntropy(logitSoftcapping: softcap, reduction: reduction)(
                    hiddenStates: hidden, labels: labelTensor(labels, [n]), lmWeight: weight)
                assertClose(out, ref.value, rtol: 1e-5, atol: 1e-5, "softcap \(softcap) \(reduction)")
            }
            let capped = ReferenceCE.fused(hidden: doubles(hidden), weight: doubles(weight), n: n, h: h, v: v,
                                           labels: labels, softcap: Double(softcap))
            // The cap matters: it changes the loss by more than the tolerance.
            XCTAssertGreaterThan(Swift.abs(capped.value[0] - plain.value[0]), 1e-3, "softcap \(softcap)")
        }
    }
}
