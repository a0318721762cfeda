import CKernels
import Compute
import Foundation
import TestSupport
import XCTest

/// Test-side decoders of the 5-bit, K-quant and bf16 formats, written from the documented ggml block layouts
/// (ggml-common.h): one element at a time from raw bytes, independent of the C kernels' loops.
enum FormatMore {
    static func half(_ b: UnsafeRawPointer, _ off: Int) -> Float {
        Float(Float16(bitPattern: b.loadUnaligned(fromByteOffset: off, as: UInt16.self)))
    }
    static func byte(_ b: UnsafeRawPointer, _ off: Int) -> Int { Int(b.load(fromByteOffset: off, as: UInt8.self)) }

    /// Block bytes and elements per block of a type.
    static func layout(_ t: Int32) -> (bytes: Int, elements: Int) {
        switch t {
        case 6: return (22, 32)
        case 7: return (24, 32)
        case 10: return (84, 256)
        case 12: return (144, 256)
        case 13: return (176, 256)
        case 14: return (210, 256)
        case 30, 1: return (2, 1)
        default: fatalError("no layout for type \(t)")
        }
    }

    /// 6-bit scale and min of sub-block j from the 12 packed bytes at `s` (q4_K / q5_K).
    static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (Int, Int) {
        if j < 4 { return (byte(s, j) & 63, byte(s, j + 4) & 63) }
        return ((byte(s, j + 4) & 15) | ((byte(s, j - 4) >> 6) << 4), (byte(s, j + 4) >> 4) | ((byte(s, j) >> 6) << 4))
    }

    /// Element i of a row of type `t` stored in `bytes`.
    static func element(_ t: Int32, _ raw: UnsafeRawPointer, _ i: Int) -> Float {
        let (bs, ne) = layout(t)
        let b = raw + (i / ne) * bs, e = i % ne
        switch t {
        case 6, 7:   // q5_0 / q5_1
            let hOff = t == 6 ? 2 : 4, qOff = hOff + 4
            let qh = b.loadUnaligned(fromByteOffset: hOff, as: UInt32.self)
            let nib = e < 16 ? byte(b, qOff + e) & 15 : byte(b, qOff + e - 16) >> 4
            let q = nib | Int((qh >> UInt32(e)) & 1) << 4
            return t == 6 ? half(b, 0) * Float(q - 16) : half(b, 0) * Float(q) + half(b, 2)
        case 12, 13: // q4_K / q5_K: sub-block j = e / 32 uses the low (even j) or high (odd j) nibbles of pair j / 2
            let j = e / 32, l = e % 32
            let qsOff = t == 12 ? 16 : 48
            let qbyte = byte(b, qsOff + 32 * (j / 2) + l)
            var q = j % 2 == 0 ? qbyte & 15 : qbyte >> 4
            if t == 13 { q |= ((byte(b, 16 + l) >> j) & 1) << 4 }
            let (sc, mn) = scaleMin(b + 4, j)
            return half(b, 0) * Float(sc) * Float(q) - half(b, 2) * Float(mn)
        case 14:     // q6_K: half h of 128, quarter k of 32 within it
            let h = e / 128, r = e % 128, k = r / 32, l = r % 32
            let lb = byte(b, 64 * h + 32 * (k & 1) + l)
            let nib = k < 2 ? lb & 15 : lb >> 4
            let hi = (byte(b, 128 + 32 * h + l) >> (2 * k)) & 3
            let sc = Int(Int8(bitPattern: UInt8(byte(b, 192 + e / 16))))
            return half(b, 208) * Float(sc) * Float((nib | hi << 4) - 32)
        case 30:
            return Float(bitPattern: UInt32(b.loadUnaligned(as: UInt16.self)) << 16)
        case 1:
            return half(b, 0)
        default: fatalError()
        }
    }

    /// Random blocks of type `t` with finite fp16 scale fields in [-scale, scale].
    static func randomBlocks(_ t: Int32, blocks: Int, rng: inout TestRNG, scale: Float = 0.05) -> [UInt8] {
        let (bs, _) = layout(t)
        var bytes = (0..<(blocks * bs)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let halfOffsets: [Int] = t == 6 ? [0] : t == 7 || t == 12 || t == 13 ? [0, 2] : t == 14 ? [208] : t == 10 ? [80, 82] : []
        for blk in 0..<blocks {
            for off in halfOffsets {
                let h = Float16(rng.float(scale)).bitPattern
                bytes[blk * bs + off] = UInt8(h & 0xff)
                bytes[blk * bs + off + 1] = UInt8(h >> 8)
            }
        }
        if t == 30 {   // bf16 of random normal-ish floats
            for i in 0..<blocks { let v = rng.float(2).bitPattern >> 16; bytes[2 * i] = UInt8(v & 0xff); bytes[2 * i + 1] = UInt8(v >> 8) }
        }
        return bytes
    }
}

final class QuantFormatTests: XCTestCase {
    /// (name, ggml type id, elements per test row)
    static let types: [(String, Int32, Int)] = [
        ("q5_0", 6, 512), ("q5_1", 7, 512), ("q4_K", 12, 1024), ("q5_K", 13, 1024), ("q6_K", 14, 1024), ("bf16", 30, 520),
    ]

    func dequantize(_ t: Int32, _ bytes: [UInt8], _ n: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: n)
        bytes.withUnsafeBytes { ck_dequantize_row(t, $0.baseAddress!, &out, Int64(n)) }
        return out
    }

    func testStructSizesMatchGGML() {
        XCTAssertEqual(MemoryLayout<ck_block_q5_0>.size, 22)
        XCTAssertEqual(MemoryLayout<ck_block_q5_1>.size, 24)
        XCTAssertEqual(MemoryLayout<ck_block_q4_K>.size, 144)
        XCTAssertEqual(MemoryLayout<ck_block_q5_K>.size, 176)
        XCTAssertEqual(MemoryLayout<ck_block_q6_K>.size, 210)
        XCTAssertEqual(MemoryLayout<ck_block_q8_K>.size, 292)
        for (_, t, n) in Self.types {
            let (bs, ne) = FormatMore.layout(t)
            XCTAssertEqual(Int(ck_row_size(t, Int64(n))), n / ne * bs)
        }
    }

    func testDequantizeMatchesIndependentDecoder() {
        var rng = TestRNG(state: 11)
        for (name, t, n) in Self.types {
            let (_, ne) = FormatMore.layout(t)
            let bytes = FormatMore.randomBlocks(t, blocks: n / ne, rng: &rng)
            let got = dequantize(t, bytes, n)
            bytes.withUnsafeBytes { raw in
                for i in 0..<n {
                    let want = FormatMore.element(t, raw.baseAddress!, i)
                    XCTAssertEqual(got[i], want, accuracy: abs(want) * 1e-6 + 1e-9, "\(name) element \(i)")
                }
            }
        }
    }

    /// Expected values from gguf-py's reference dequantizer (Tests/Fixtures/quants/make_quant_fixture.py).
    func testDequantizeMatchesGGUFPyFixture() throws {
        let names: [(String, Int32)] = [("q4_0", 2), ("q4_1", 3), ("q5_0", 6), ("q5_1", 7), ("q8_0", 8), ("q4_K", 12),
                                        ("q5_K", 13), ("q6_K", 14), ("bf16", 30), ("f16", 1)]
        for (name, t) in names {
            let blocks = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("quants/\(name).blocks"))))
            let want = try Fixtures.floats("quants/\(name).f32")
            XCTAssertEqual(Int(ck_row_size(t, Int64(want.count))), blocks.count, name)
            let got = dequantize(t, blocks, want.count)
            var maxErr: Float = 0
            for i in 0..<want.count { maxErr = max(maxErr, abs(got[i] - want[i]) / max(abs(want[i]), 1e-3)) }
            XCTAssertLessThanOrEqual(maxErr, 1e-6, "\(name): max relative difference to gguf.quants")
        }
    }

    func testQ8KQuantizer() {
        var rng = TestRNG(state: 5)
        let n = 512
        let x = rng.floats(n, 3)
        var q = [UInt8](repeating: 0, count: Int(ck_row_size(15, Int64(n))))
        q.withUnsafeMutableBytes { ck_quantize_row_q8_K(x, $0.baseAddress!, Int64(n)) }
        q.withUnsafeBytes { raw in
            for b in 0..<(n / 256) {
                let blk = raw.baseAddress! + b * 292
                let d = blk.loadUnaligned(as: Float.self)
                for k in 0..<16 {
                    var s = 0
                    for i in 0..<16 {
                        let v = Int(Int8(bitPattern: blk.load(fromByteOffset: 4 + 16 * k + i, as: UInt8.self)))
                        s += v
                        XCTAssertEqual(d * Float(v), x[b * 256 + 16 * k + i], accuracy: abs(d) * 0.5 + 1e-6)
                    }
                    XCTAssertEqual(Int(blk.loadUnaligned(fromByteOffset: 260 + 2 * k, as: Int16.self)), s, "bsums[\(k)]")
                }
            }
        }
    }

    /// The AVX2 q8_K quantizer writes the same bytes as its scalar twin: qs, bsums and d, including a block whose
    /// largest magnitude occurs with both signs (the first one sets the sign of d), an all-zero block and values
    /// that land exactly on .5 after scaling (round half to even).
    func testQ8KQuantizerSIMDBitIdentical() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference quantizer runs")
        var rng = TestRNG(state: 23)
        let n = 256 * 6
        var x = rng.floats(n, 4)
        for i in 256..<512 { x[i] = 0 }                                 // block 1: all zero
        x[520] = -7; x[530] = 7                                          // block 2: ±max, negative first
        x[800] = 7; x[810] = -7                                          // block 3: ±max, positive first
        for i in 1024..<1280 { x[i] = Float(i % 255 - 127) / 2 }         // block 4: many exact halves
        for i in 1280..<1536 { x[i] = i == 1300 ? -1e-30 : 0 }           // block 5: one tiny value
        let rb = Int(ck_row_size(15, Int64(n)))
        var simd = [UInt8](repeating: 0xAA, count: rb), ref = [UInt8](repeating: 0x55, count: rb)
        simd.withUnsafeMutableBytes { ck_quantize_row_q8_K_avx2(x, $0.baseAddress!, Int64(n)) }
        ref.withUnsafeMutableBytes { ck_quantize_row_q8_K_ref(x, $0.baseAddress!, Int64(n)) }
        XCTAssertEqual(simd, ref)
    }

    /// The K-quant matmul kernels that take four activation rows per weight row agree with the reference for every
    /// column count 1...9 (the 4-column kernel, each 1-3 column tail), across activation tiles and weight-row
    /// blocks (19 rows: a 16-row block and a tail; the first call covers row 0 alone).
    func testKQuantMatmulColumnBlocking() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 29)
        for (name, t, _) in Self.types where t == 12 || t == 13 || t == 14 {
            let n = 512, rows = 19
            let rb = Int(ck_row_size(t, Int64(n)))
            let w = FormatMore.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
            let xrb = Int(ck_row_size(15, Int64(n)))
            // 16 KiB tiles of 1,168-byte activation rows hold 12 columns: 230 columns are 19 tiles and a 2-column tail.
            for cols in Array(1...9) + [230] {
                var xq = [UInt8](repeating: 0, count: cols * xrb)
                for c in 0..<cols {
                    let x = rng.floats(n)
                    xq.withUnsafeMutableBytes { ck_quantize_row_q8_K_ref(x, $0.baseAddress! + c * xrb, Int64(n)) }
                }
                var y = [Float](repeating: .nan, count: rows * cols), yref = y
                w.withUnsafeBytes { wr in
                    xq.withUnsafeBytes { xr in
                        ck_matmul_rows(t, wr.baseAddress!, rb, Int64(n), 0, 1, xr.baseAddress!, xrb, Int64(cols), &y, Int64(rows))
                        ck_matmul_rows(t, wr.baseAddress!, rb, Int64(n), 1, Int64(rows), xr.baseAddress!, xrb, Int64(cols), &y, Int64(rows))
                        ck_matmul_rows_ref(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols), &yref, Int64(rows))
                    }
                }
                // Both sum block terms in float; with random scales the terms are large and cancel, so the tolerance is
                // relative to Σ|w·x| of the decoded operands, not to the result.
                let wf = (0..<rows).map { r in dequantize(t, Array(w[(r * rb)..<((r + 1) * rb)]), n) }
                let xf = (0..<cols).map { c in dequantizeActivation(15, Array(xq[(c * xrb)..<((c + 1) * xrb)]), n) }
                for c in 0..<cols {
                    for r in 0..<rows {
                        var mag: Float = 0
                        for i in 0..<n { mag += abs(wf[r][i] * xf[c][i]) }
                        let i = c * rows + r
                        XCTAssertEqual(y[i], yref[i], accuracy: 1e-5 * mag + 1e-6, "\(name) cols=\(cols) row \(r) column \(c)")
                    }
                }
            }
        }
    }

    /// Dequantized activation row of partner type `a` (q8_0 / q8_1 / q8_K / f32).
    func dequantizeActivation(_ a: Int32, _ bytes: [UInt8], _ n: Int) -> [Float] {
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!
            switch a {
            case 8: return (0..<n).map { i in FormatMore.half(p, (i / 32) * 34) * Float(Int8(bitPattern: p.load(fromByteOffset: (i / 32) * 34 + 2 + i % 32, as: UInt8.self))) }
            case 9: return (0..<n).map { i in FormatMore.half(p, (i / 32) * 36) * Float(Int8(bitPattern: p.load(fromByteOffset: (i / 32) * 36 + 4 + i % 32, as: UInt8.self))) }
            case 15: return (0..<n).map { i in p.loadUnaligned(fromByteOffset: (i / 256) * 292, as: Float.self) * Float(Int8(bitPattern: p.load(fromByteOffset: (i / 256) * 292 + 4 + i % 256, as: UInt8.self))) }
            default: return (0..<n).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            }
        }
    }

    /// SIMD vs `_ref` and `_ref` vs the float product of the decoded operands, per type.
    func testDotProductsSIMDMatchReference() throws {
        try XCTSkipUnless(ck_has_avx2() != 0, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 99)
        for (name, t, n0) in Self.types {
            let (_, ne) = FormatMore.layout(t)
            for trial in 0..<8 {
                // Odd trials of the 32-blocks end in a partial group of four (the AVX2 kernels' tail).
                let n = trial % 2 == 1 && ne == 32 ? n0 + 96 : n0
                let w = FormatMore.randomBlocks(t, blocks: n / ne, rng: &rng)
                let x = rng.floats(n, trial % 2 == 0 ? 1 : 40)
                let a = ck_activation_type(t)
                var xq = [UInt8](repeating: 0, count: Int(ck_row_size(a, Int64(n))))
                xq.withUnsafeMutableBytes { ck_quantize_activation_row(t, x, $0.baseAddress!, Int64(n)) }
                let (ref, simd): (Float, Float) = w.withUnsafeBytes { wr in
                    xq.withUnsafeBytes { xr in
                        let wp = wr.baseAddress!, xp = xr.baseAddress!
                        switch t {
                        case 6: return (ck_dot_q5_0_q8_0_ref(Int64(n), wp, xp), ck_dot_q5_0_q8_0_avx2(Int64(n), wp, xp))
                        case 7: return (ck_dot_q5_1_q8_1_ref(Int64(n), wp, xp), ck_dot_q5_1_q8_1_avx2(Int64(n), wp, xp))
                        case 12: return (ck_dot_q4_K_q8_K_ref(Int64(n), wp, xp), ck_dot_q4_K_q8_K_avx2(Int64(n), wp, xp))
                        case 13: return (ck_dot_q5_K_q8_K_ref(Int64(n), wp, xp), ck_dot_q5_K_q8_K_avx2(Int64(n), wp, xp))
                        case 14: return (ck_dot_q6_K_q8_K_ref(Int64(n), wp, xp), ck_dot_q6_K_q8_K_avx2(Int64(n), wp, xp))
                        default:
                            let wh = wp.assumingMemoryBound(to: UInt16.self), xf = xp.assumingMemoryBound(to: Float.self)
                            return (ck_dot_bf16_f32_ref(Int64(n), wh, xf), ck_dot_bf16_f32_avx2(Int64(n), wh, xf))
                        }
                    }
                }
                let wf = dequantize(t, w, n), xf = dequantizeActivation(a, xq, n)
                var exact = 0.0, mag = 0.0
                for i in 0..<n { exact += Double(wf[i]) * Double(xf[i]); mag += abs(Double(wf[i]) * Double(xf[i])) }
                XCTAssertEqual(Double(simd), Double(ref), accuracy: 1e-5 * mag + 1e-6, "\(name) trial \(trial): SIMD vs ref")
                XCTAssertEqual(Double(ref), exact, accuracy: 1e-5 * mag + 1e-6, "\(name) trial \(trial): ref vs decoded product")
            }
        }
    }

    /// The row-range matmul driver picks the new kernels (SIMD) and agrees with its reference twin.
    func testMatmulRowsNewTypes() {
        var rng = TestRNG(state: 7)
        for (name, t, n) in Self.types {
            let (_, ne) = FormatMore.layout(t)
            let rows = 5, cols = 3
            let rb = Int(ck_row_size(t, Int64(n)))
            let w = FormatMore.randomBlocks(t, blocks: rows * n / ne, rng: &rng)
            let a = ck_activation_type(t)
            let xrb = Int(ck_row_size(a, Int64(n)))
            var xq = [UInt8](repeating: 0, count: cols * xrb)
            for c in 0..<cols {
                let x = rng.floats(n)
                xq.withUnsafeMutableBytes { ck_quantize_activation_row(t, x, $0.baseAddress! + c * xrb, Int64(n)) }
            }
            var y1 = [Float](repeating: 0, count: rows * cols), y2 = y1
            w.withUnsafeBytes { wr in
                xq.withUnsafeBytes { xr in
                    ck_matmul_rows(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols), &y1, Int64(rows))
                    ck_matmul_rows_ref(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols), &y2, Int64(rows))
                }
            }
            for i in 0..<(rows * cols) { XCTAssertEqual(y1[i], y2[i], accuracy: 1e-3 * max(1, abs(y2[i])), "\(name) \(i)") }
        }
    }
}
