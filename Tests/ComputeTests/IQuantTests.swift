import CKernels
import Compute
import Foundation
import TestSupport
import XCTest

/// The i-quant formats (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): block sizes, bit-exact
/// dequantization against gguf-py (which also checks the generated grids row by row), and the scalar and AVX2 dot
/// products against a float reference and each other.
final class IQuantTests: XCTestCase {
    /// (fixture name, ggml type id, bytes per 256-element block, byte offset of the fp16 d or -1 for iq1_m)
    static let types: [(String, Int32, Int, Int)] = [
        ("iq2_xxs", 16, 66, 0), ("iq2_xs", 17, 74, 0), ("iq2_s", 22, 82, 0), ("iq3_xxs", 18, 98, 0),
        ("iq3_s", 21, 110, 0), ("iq1_s", 19, 50, 0), ("iq1_m", 29, 56, -1),
    ]

    /// Random blocks of a type with a finite fp16 d in [-scale, scale].
    static func randomBlocks(_ t: Int32, blocks: Int, rng: inout TestRNG, scale: Float = 0.05) -> [UInt8] {
        let (_, _, bs, dOff) = types.first { $0.1 == t }!
        var bytes = (0..<(blocks * bs)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for blk in 0..<blocks {
            let h = Float16(rng.float(scale)).bitPattern
            if dOff >= 0 {
                bytes[blk * bs + dOff] = UInt8(h & 0xff)
                bytes[blk * bs + dOff + 1] = UInt8(h >> 8)
            } else {   // iq1_m: nibble k of d is the top nibble of the k-th uint16 of scales (bytes 48...55)
                for k in 0..<4 {
                    let off = blk * bs + 48 + 2 * k + 1
                    bytes[off] = (bytes[off] & 0x0f) | UInt8(((h >> (4 * UInt16(k))) & 0xf) << 4)
                }
            }
        }
        return bytes
    }

    func dequantize(_ t: Int32, _ bytes: [UInt8], _ n: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: n)
        bytes.withUnsafeBytes { ck_dequantize_row(t, $0.baseAddress!, &out, Int64(n)) }
        return out
    }

    func testStructSizesMatchGGML() {
        XCTAssertEqual(MemoryLayout<ck_block_iq2_xxs>.size, 66)
        XCTAssertEqual(MemoryLayout<ck_block_iq2_xs>.size, 74)
        XCTAssertEqual(MemoryLayout<ck_block_iq2_s>.size, 82)
        XCTAssertEqual(MemoryLayout<ck_block_iq3_xxs>.size, 98)
        XCTAssertEqual(MemoryLayout<ck_block_iq3_s>.size, 110)
        XCTAssertEqual(MemoryLayout<ck_block_iq1_s>.size, 50)
        XCTAssertEqual(MemoryLayout<ck_block_iq1_m>.size, 56)
        for (name, t, bs, _) in Self.types {
            XCTAssertEqual(Int(ck_row_size(t, 1024)), 4 * bs, name)
            XCTAssertEqual(ck_activation_type(t), 15, "\(name) multiplies q8_K activations")
            XCTAssertEqual(ck_is_iquant(t), 1, name)
            let w = WeightType(rawValue: t)
            XCTAssertNotNil(w, name)
            XCTAssertEqual(w?.blockSize, 256, name)
            XCTAssertEqual(w?.rowBytes(512), 2 * bs, name)
        }
        XCTAssertEqual(ck_is_iquant(12), 0)
    }

    /// Every element equals gguf-py's `gguf.quants.dequantize` bit for bit (Tests/Fixtures/quants/make_iq_fixture.py).
    /// The first blocks of each fixture visit every row of the type's lookup grid once, so this also checks the
    /// generated grids (ref/iq_grids.c, scripts/gen-iq-grids.py) and ksigns against the published definition.
    func testDequantizeBitExactWithGGUFPyIncludingEveryGridRow() throws {
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("quants/iq_manifest.json")))) as! [String: Any]
        let entries = manifest["types"] as! [String: [String: Int]]
        for (name, t, _, _) in Self.types {
            let blocks = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("quants/\(name).blocks"))))
            let want = try Fixtures.floats("quants/\(name).f32")
            let e = try XCTUnwrap(entries[name], name)
            XCTAssertEqual(e["ggml_type"], Int(t), name)
            let perBlock = t == 18 || t == 21 ? 64 : 32
            XCTAssertGreaterThanOrEqual(e["sweep_blocks"]! * perBlock, e["grid_rows"]!, "\(name): the sweep covers the grid")
            XCTAssertEqual(Int(ck_row_size(t, Int64(want.count))), blocks.count, name)
            let got = dequantize(t, blocks, want.count)
            var mismatches = 0
            for i in 0..<want.count where got[i].bitPattern != want[i].bitPattern {
                if mismatches < 3 { XCTFail("\(name)[\(i)]: \(got[i]) != gguf \(want[i])") }
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "\(name): elements differing from gguf.quants")
        }
    }

    /// q8_K activation row of `x`, and its dequantized values.
    func q8K(_ x: [Float]) -> ([UInt8], [Float]) {
        let n = x.count
        var q = [UInt8](repeating: 0, count: Int(ck_row_size(15, Int64(n))))
        q.withUnsafeMutableBytes { ck_quantize_row_q8_K(x, $0.baseAddress!, Int64(n)) }
        let deq: [Float] = q.withUnsafeBytes { raw in
            (0..<n).map { i in
                let blk = raw.baseAddress! + (i / 256) * 292
                return blk.loadUnaligned(as: Float.self) * Float(Int8(bitPattern: blk.load(fromByteOffset: 4 + i % 256, as: UInt8.self)))
            }
        }
        return (q, deq)
    }

    /// The scalar dot product equals dot(dequantized weights, dequantized q8_K activations) up to float rounding,
    /// and the AVX2 one equals the scalar one (both sum exact integers within a block).
    func testDotProductsMatchFloatReferenceAndSIMDMatchesRef() {
        var rng = TestRNG(state: 1919)
        let refs: [Int32: (Int64, UnsafeRawPointer?, UnsafeRawPointer?) -> Float] = [
            16: ck_dot_iq2_xxs_q8_K_ref, 17: ck_dot_iq2_xs_q8_K_ref, 22: ck_dot_iq2_s_q8_K_ref, 18: ck_dot_iq3_xxs_q8_K_ref,
            21: ck_dot_iq3_s_q8_K_ref, 19: ck_dot_iq1_s_q8_K_ref, 29: ck_dot_iq1_m_q8_K_ref,
        ]
        let simd: [Int32: (Int64, UnsafeRawPointer?, UnsafeRawPointer?) -> Float] = [
            16: ck_dot_iq2_xxs_q8_K_avx2, 17: ck_dot_iq2_xs_q8_K_avx2, 22: ck_dot_iq2_s_q8_K_avx2, 18: ck_dot_iq3_xxs_q8_K_avx2,
            21: ck_dot_iq3_s_q8_K_avx2, 19: ck_dot_iq1_s_q8_K_avx2, 29: ck_dot_iq1_m_q8_K_avx2,
        ]
        let n = 2048
        for (name, t, _, _) in Self.types {
            for trial in 0..<4 {
                let w = Self.randomBlocks(t, blocks: n / 256, rng: &rng)
                let wf = dequantize(t, w, n)
                let (q, af) = q8K(rng.floats(n, trial == 0 ? 1 : 3))
                var exact = 0.0, mag = 0.0
                for i in 0..<n { exact += Double(wf[i]) * Double(af[i]); mag += abs(Double(wf[i]) * Double(af[i])) }
                let r = w.withUnsafeBytes { wp in q.withUnsafeBytes { qp in refs[t]!(Int64(n), wp.baseAddress, qp.baseAddress) } }
                XCTAssertEqual(Double(r), exact, accuracy: mag * 1e-5 + 1e-6, "\(name) ref vs float, trial \(trial)")
                if ck_has_avx2() == 1 {
                    let s = w.withUnsafeBytes { wp in q.withUnsafeBytes { qp in simd[t]!(Int64(n), wp.baseAddress, qp.baseAddress) } }
                    XCTAssertEqual(s, r, accuracy: Float(mag) * 1e-6 + 1e-6, "\(name) AVX2 vs ref, trial \(trial)")
                }
            }
        }
    }

    /// ck_matmul_rows (dispatched) agrees with ck_matmul_rows_ref for several rows and columns, and the float
    /// reference path (ck_matmul_rows_dequant) with both.
    func testMatmulRowsAgreeWithReference() {
        var rng = TestRNG(state: 77)
        let n = 512, rows = 5, cols = 3
        for (name, t, _, _) in Self.types {
            let w = Self.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
            let rb = Int(ck_row_size(t, Int64(n))), xrb = Int(ck_row_size(15, Int64(n)))
            var xq = [UInt8](), xf = [Float]()
            for _ in 0..<cols {
                let x = rng.floats(n)
                let (q, deq) = q8K(x)
                xq += q
                xf += deq
            }
            var got = [Float](repeating: .nan, count: rows * cols), ref = got, flt = got
            w.withUnsafeBytes { wp in
                xq.withUnsafeBytes { xp in
                    ck_matmul_rows(t, wp.baseAddress, rb, Int64(n), 0, Int64(rows), xp.baseAddress, xrb, Int64(cols), &got, Int64(rows))
                    ck_matmul_rows_ref(t, wp.baseAddress, rb, Int64(n), 0, Int64(rows), xp.baseAddress, xrb, Int64(cols), &ref, Int64(rows))
                }
                ck_matmul_rows_dequant(t, wp.baseAddress, rb, Int64(n), 0, Int64(rows), xf, n * 4, Int64(cols), &flt, Int64(rows))
            }
            for i in 0..<(rows * cols) {
                XCTAssertEqual(got[i], ref[i], accuracy: abs(ref[i]) * 1e-5 + 1e-5, "\(name) [\(i)]")
                XCTAssertEqual(flt[i], ref[i], accuracy: abs(ref[i]) * 1e-4 + 1e-4, "\(name) float path [\(i)]")
            }
        }
    }
}
