import CKernels
import Compute
import Foundation
import XCTest

final class OpsTests: XCTestCase {
    func testRMSNormMatchesReference() {
        var rng = TestRNG(state: 11)
        for n in [5, 64, 576] {
            let x = rng.floats(3 * n, 4), w = rng.floats(n, 2)
            var a = [Float](repeating: 0, count: 3 * n), b = a
            Ops.rmsNorm(x, weight: w, eps: 1e-5, n: n, count: 3, out: &a)
            Ops.rmsNormRef(x, weight: w, eps: 1e-5, n: n, count: 3, out: &b)
            for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-5 * max(1, abs(b[i]))) }
        }
    }

    /// The C kernel and its twin agree bit for bit, and with the Swift SIMD16 loop they replaced (kept here): the same
    /// lanes of fused multiply-adds, added in the same order, so served logits did not move. Row lengths with and
    /// without a 16-wide tail; magnitudes from 1e-3 to 1e3.
    func testRMSNormKernelsEqualTheSwiftLoopTheyReplaced() {
        func swiftLoop(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ eps: Float, _ n: Int, _ y: UnsafeMutablePointer<Float>) {
            var acc = SIMD16<Float>(repeating: 0)
            var i = 0
            while i + 16 <= n {
                let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                acc.addProduct(v, v)
                i += 16
            }
            var sum = acc.sum()
            while i < n { sum += x[i] * x[i]; i += 1 }
            let scale = 1 / (sum / Float(n) + eps).squareRoot()
            for j in 0..<n { y[j] = x[j] * scale * w[j] }
        }
        var rng = TestRNG(state: 13)
        for n in [5, 16, 37, 576, 2048, 2051] {
            for magnitude: Float in [1e-3, 1, 30, 1e3] {
                let x = rng.floats(n, magnitude), w = rng.floats(n, 2)
                var old = [Float](repeating: 0, count: n), ref = old, simd = old
                swiftLoop(x, w, 1e-6, n, &old)
                ck_rms_norm_ref(x, w, 1e-6, Int64(n), &ref)
                ck_rms_norm(x, w, 1e-6, Int64(n), &simd)
                XCTAssertEqual(ref.map(\.bitPattern), old.map(\.bitPattern), "ref n \(n) magnitude \(magnitude)")
                XCTAssertEqual(simd.map(\.bitPattern), old.map(\.bitPattern), "dispatched n \(n) magnitude \(magnitude)")
                if ck_has_avx2() == 1 {
                    var avx2 = old
                    ck_rms_norm_avx2(x, w, 1e-6, Int64(n), &avx2)
                    XCTAssertEqual(avx2.map(\.bitPattern), old.map(\.bitPattern), "avx2 n \(n) magnitude \(magnitude)")
                }
                var inPlace = x   // y aliasing x
                inPlace.withUnsafeMutableBufferPointer { ck_rms_norm($0.baseAddress!, w, 1e-6, Int64(n), $0.baseAddress!) }
                XCTAssertEqual(inPlace.map(\.bitPattern), old.map(\.bitPattern), "in place n \(n)")
            }
        }
    }

    func testRoPEMatchesReferenceInBothModes() {
        var rng = TestRNG(state: 12)
        let heads = 3, d = 64
        for mode in [Ops.RopeMode.norm, .neox] {
            for pos in [0, 1, 17, 900] {
                let x = rng.floats(heads * d)
                var a = x, b = x
                let f = Ops.ropeInverseFrequencies(headDim: d, theta: 10_000)
                var c = [Float](repeating: 0, count: d / 2), s = c
                f.withUnsafeBufferPointer { Ops.ropeAngles(position: pos, invFreq: $0.baseAddress!, half: d / 2, cos: &c, sin: &s) }
                Ops.rope(&a, numHeads: heads, headDim: d, cos: c, sin: s, mode: mode)
                Ops.ropeRef(&b, numHeads: heads, headDim: d, position: pos, theta: 10_000, mode: mode)
                for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-5, "\(mode) pos \(pos) i \(i)") }
                if pos == 0 { XCTAssertEqual(a, x) }
            }
        }
    }

    func testRoPENormModeRotatesAdjacentPairs() {
        // One head of 4: pair (0,1) rotates by pos·1, pair (2,3) by pos·theta^(-1/2).
        var x: [Float] = [1, 0, 0, 1]
        Ops.ropeRef(&x, numHeads: 1, headDim: 4, position: 2, theta: 100, mode: .norm)
        XCTAssertEqual(x[0], cos(2), accuracy: 1e-6)
        XCTAssertEqual(x[1], sin(2), accuracy: 1e-6)
        XCTAssertEqual(x[2], -sin(0.2), accuracy: 1e-6)
        XCTAssertEqual(x[3], cos(0.2), accuracy: 1e-6)
    }

    func testSoftmaxMatchesReference() {
        var rng = TestRNG(state: 13)
        for n in [1, 15, 16, 37, 300] {
            let x = rng.floats(n, 20)
            var a = x, b = x
            Ops.softmax(&a, n: n)
            Ops.softmaxRef(&b, n: n)
            for i in 0..<n { XCTAssertEqual(a[i], b[i], accuracy: 1e-6) }
            XCTAssertEqual(a.reduce(0, +), 1, accuracy: 1e-5)
        }
    }

    func testAddMatchesReference() {
        var rng = TestRNG(state: 16)
        for n in [3, 16, 100] {
            let x = rng.floats(n), y = rng.floats(n)
            var a = y, b = y
            Ops.add(x, into: &a, n: n)
            Ops.addRef(x, into: &b, n: n)
            XCTAssertEqual(a, b)
        }
    }

    func testSiluMulMatchesReference() {
        var rng = TestRNG(state: 14)
        for n in [3, 8, 1536] {
            let g = rng.floats(n, 8), u = rng.floats(n, 3)
            var a = [Float](repeating: 0, count: n), b = a
            Ops.siluMul(gate: g, up: u, n: n, out: &a)
            Ops.siluMulRef(gate: g, up: u, n: n, out: &b)
            for i in 0..<n { XCTAssertEqual(a[i], b[i], accuracy: 1e-5 * max(1, abs(b[i]))) }
        }
    }
}
