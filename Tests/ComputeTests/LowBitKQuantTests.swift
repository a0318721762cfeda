import CKernels
import Compute
import Foundation
import TestSupport
import XCTest

/// q2_K, q3_K, iq4_nl and iq4_xs: block sizes, dequantization against gguf-py's reference, the AVX2 dot products
/// against their `_ref` twins, and the `_ref` dot products against the float product of the decoded operands.
final class LowBitKQuantTests: XCTestCase {
    /// (name, ggml type id, block bytes, elements per block, offsets of fp16 fields in a block)
    static let types: [(String, Int32, Int, Int, [Int])] = [
        ("q2_K", 10, 84, 256, [80, 82]), ("q3_K", 11, 110, 256, [108]), ("iq4_nl", 20, 18, 32, [0]),
        ("iq4_xs", 23, 136, 256, [0]),
    ]

    func dequantize(_ t: Int32, _ bytes: [UInt8], _ n: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: n)
        bytes.withUnsafeBytes { ck_dequantize_row(t, $0.baseAddress!, &out, Int64(n)) }
        return out
    }

    /// Random bytes with finite fp16 scale fields in [-0.05, 0.05].
    func randomBlocks(_ t: (String, Int32, Int, Int, [Int]), blocks: Int, rng: inout TestRNG) -> [UInt8] {
        var bytes = (0..<(blocks * t.2)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for b in 0..<blocks {
            for off in t.4 {
                let h = Float16(rng.float(0.05)).bitPattern
                bytes[b * t.2 + off] = UInt8(h & 0xff)
                bytes[b * t.2 + off + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }

    func testStructSizesMatchGGML() {
        XCTAssertEqual(MemoryLayout<ck_block_q2_K>.size, 84)
        XCTAssertEqual(MemoryLayout<ck_block_q3_K>.size, 110)
        XCTAssertEqual(MemoryLayout<ck_block_iq4_nl>.size, 18)
        XCTAssertEqual(MemoryLayout<ck_block_iq4_xs>.size, 136)
        for t in Self.types {
            XCTAssertEqual(Int(ck_row_size(t.1, 1024)), 1024 / t.3 * t.2, t.0)
            XCTAssertEqual(WeightType(rawValue: t.1)?.blockSize, t.3, t.0)
        }
        XCTAssertEqual(ck_activation_type(20), 8)                        // iq4_nl × q8_0
        for t: Int32 in [10, 11, 23] { XCTAssertEqual(ck_activation_type(t), 15) }   // × q8_K
    }

    /// Bit-exact with gguf-py's reference dequantizer (Tests/Fixtures/quants/make_lowbit_k_fixture.py).
    func testDequantizeBitExactWithGGUFPy() throws {
        for t in Self.types {
            let blocks = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("quants/\(t.0).blocks"))))
            let want = try Fixtures.floats("quants/\(t.0).f32")
            XCTAssertEqual(Int(ck_row_size(t.1, Int64(want.count))), blocks.count, t.0)
            let got = dequantize(t.1, blocks, want.count)
            var mismatches = 0
            for i in 0..<want.count where got[i].bitPattern != want[i].bitPattern { mismatches += 1 }
            XCTAssertEqual(mismatches, 0, "\(t.0): elements not bit-identical to gguf.quants.dequantize")
            XCTAssertGreaterThan(Set(want.map(\.bitPattern)).count, 16, "\(t.0): fixture has varied values")
        }
    }

    /// The float values of an activation row of ggml type `a` (q8_0 or q8_K).
    func decodeActivation(_ a: Int32, _ bytes: [UInt8], _ n: Int) -> [Float] {
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!
            if a == 8 {
                return (0..<n).map { i in
                    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: (i / 32) * 34, as: UInt16.self)))
                        * Float(Int8(bitPattern: p.load(fromByteOffset: (i / 32) * 34 + 2 + i % 32, as: UInt8.self)))
                }
            }
            return (0..<n).map { i in
                p.loadUnaligned(fromByteOffset: (i / 256) * 292, as: Float.self)
                    * Float(Int8(bitPattern: p.load(fromByteOffset: (i / 256) * 292 + 4 + i % 256, as: UInt8.self)))
            }
        }
    }

    func dots(_ t: Int32, _ n: Int, _ w: [UInt8], _ x: [UInt8]) -> (ref: Float, simd: Float) {
        w.withUnsafeBytes { wr in
            x.withUnsafeBytes { xr in
                let wp = wr.baseAddress!, xp = xr.baseAddress!, n = Int64(n)
                switch t {
                case 10: return (ck_dot_q2_K_q8_K_ref(n, wp, xp), ck_dot_q2_K_q8_K_avx2(n, wp, xp))
                case 11: return (ck_dot_q3_K_q8_K_ref(n, wp, xp), ck_dot_q3_K_q8_K_avx2(n, wp, xp))
                case 20: return (ck_dot_iq4_nl_q8_0_ref(n, wp, xp), ck_dot_iq4_nl_q8_0_avx2(n, wp, xp))
                default: return (ck_dot_iq4_xs_q8_K_ref(n, wp, xp), ck_dot_iq4_xs_q8_K_avx2(n, wp, xp))
                }
            }
        }
    }

    /// `_ref` vs Σ dequant(w)·dequant(x) in double, and AVX2 vs `_ref`, on random blocks and activations
    /// (including activations at ±127 after quantization, the int16 pair-sum extremes).
    func testDotProductsMatchDecodedProductAndSIMDMatchesReference() throws {
        var rng = TestRNG(state: 1919)
        for t in Self.types {
            for trial in 0..<8 {
                // Odd trials of the 32-blocks end in a partial group of four (the AVX2 kernels' tail).
                let n = trial % 2 == 1 && t.3 == 32 ? 1024 + 96 : 1024
                let w = randomBlocks(t, blocks: n / t.3, rng: &rng)
                var x = rng.floats(n, trial % 2 == 0 ? 1 : 40)
                if trial == 7 { for i in 0..<n { x[i] = i % 3 == 0 ? -1 : 1 } }   // every activation ±127
                let a = ck_activation_type(t.1)
                var xq = [UInt8](repeating: 0, count: Int(ck_row_size(a, Int64(n))))
                xq.withUnsafeMutableBytes { ck_quantize_activation_row(t.1, x, $0.baseAddress!, Int64(n)) }
                let (ref, simd) = dots(t.1, n, w, xq)
                let wf = dequantize(t.1, w, n), xf = decodeActivation(a, xq, n)
                var exact = 0.0, mag = 0.0
                for i in 0..<n { exact += Double(wf[i]) * Double(xf[i]); mag += abs(Double(wf[i]) * Double(xf[i])) }
                XCTAssertGreaterThan(mag, 0, "\(t.0) trial \(trial)")
                XCTAssertEqual(Double(ref), exact, accuracy: 1e-5 * mag + 1e-6, "\(t.0) trial \(trial): ref vs decoded product")
                if ck_has_avx2() != 0 {
                    XCTAssertEqual(Double(simd), Double(ref), accuracy: 1e-5 * mag + 1e-6, "\(t.0) trial \(trial): AVX2 vs ref")
                }
            }
        }
    }

    /// `ck_matmul_rows` (the dispatched kernels) agrees with `ck_matmul_rows_ref` for several rows and columns.
    func testMatmulRowsDispatch() {
        var rng = TestRNG(state: 77)
        let n = 512, rows = 6, cols = 5
        for t in Self.types {
            let rb = Int(ck_row_size(t.1, Int64(n)))
            let w = randomBlocks(t, blocks: rows * n / t.3, rng: &rng)
            let a = ck_activation_type(t.1)
            let xrb = Int(ck_row_size(a, Int64(n)))
            var xq = [UInt8](repeating: 0, count: cols * xrb)
            for c in 0..<cols {
                let x = rng.floats(n)
                xq.withUnsafeMutableBytes { ck_quantize_activation_row(t.1, x, $0.baseAddress! + c * xrb, Int64(n)) }
            }
            var y1 = [Float](repeating: .nan, count: rows * cols), y2 = y1
            w.withUnsafeBytes { wr in
                xq.withUnsafeBytes { xr in
                    ck_matmul_rows(t.1, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols), &y1, Int64(rows))
                    ck_matmul_rows_ref(t.1, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols), &y2, Int64(rows))
                }
            }
            for i in 0..<(rows * cols) {
                XCTAssertTrue(y2[i].isFinite, "\(t.0) \(i)")
                XCTAssertEqual(y1[i], y2[i], accuracy: 1e-4 * max(1, abs(y2[i])), "\(t.0) \(i)")
            }
        }
    }
}
