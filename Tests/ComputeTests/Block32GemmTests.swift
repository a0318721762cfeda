import CKernels
import Compute
import Foundation
import TestSupport
import XCTest

/// The prefill GEMM for 32-element blocks (ck_gemm_block32_avx2: q4_0, q5_0, iq4_nl, q8_0 read in place) and the
/// few-row kernel (ck_matmul_block32_rows_avx2) against their scalar twin, the GEMM's VNNI builds against AVX2 bit for
/// bit, and the dispatch (ck_matmul_rows) on both sides of its eight-row threshold.
final class Block32GemmTests: XCTestCase {
    /// The VNNI builds of the GEMM this CPU runs (x86/block32_gemm_tiles.h built per set), by name.
    private var vnniBuilds: [(String, RowRangeGemm)] {
        vnniGemmBuilds(avxvnni: ck_gemm_block32_avxvnni, avx512vnni: ck_gemm_block32_avx512vnni)
    }

    /// (name, ggml type, bytes per block). The fp16 scale is the first two bytes of each.
    static let types: [(String, Int32, Int)] = [("q4_0", 2, 18), ("q5_0", 6, 22), ("iq4_nl", 20, 18), ("q8_0", 8, 34)]

    /// Random blocks with small finite fp16 scales.
    private func randomBlocks(_ bytesPerBlock: Int, blocks: Int, rng: inout TestRNG) -> [UInt8] {
        var bytes = (0..<(blocks * bytesPerBlock)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for b in 0..<blocks {
            let h = Float16(rng.float(0.05)).bitPattern
            bytes[b * bytesPerBlock] = UInt8(h & 0xff)
            bytes[b * bytesPerBlock + 1] = UInt8(h >> 8)
        }
        return bytes
    }

    /// q8_0 activation rows `[cols, n]` (reference quantizer) and their decoded floats.
    private func activations(_ cols: Int, _ n: Int, _ rng: inout TestRNG) -> ([UInt8], [[Float]], Int) {
        let xrb = Int(ck_row_size(8, Int64(n)))
        var xq = [UInt8](repeating: 0, count: cols * xrb)
        var xf = [[Float]]()
        for c in 0..<cols {
            let x = rng.floats(n)
            xq.withUnsafeMutableBytes { ck_quantize_row_q8_0_ref(x, $0.baseAddress! + c * xrb, Int64(n)) }
            var back = [Float](repeating: 0, count: n)
            xq.withUnsafeBytes { ck_dequantize_row(8, $0.baseAddress! + c * xrb, &back, Int64(n)) }
            xf.append(back)
        }
        return (xq, xf, xrb)
    }

    /// Rows [1, 6) of 7 (two pairs and a single row) and [1, 18) of 19 (two groups for the eight-row micro-kernel, then
    /// the single row; rows 0 and the last untouched), column counts that are and are not multiples of 4, two tiles of
    /// at most 64 columns, rows of 1,408 elements (44 blocks, DeepSeek-V2-Lite's expert width) and of 4,160 (130
    /// blocks: two unpacking segments), and 8,192-element rows whose tile shrinks.
    /// As KQuantGemmTests.testGemmResultsDoNotDependOnTheTokenCount, for the 32-element-block types.
    func testGemmResultsDoNotDependOnTheTokenCount() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 59)
        let n = 512, rows = 18, cols = 9
        for (_, t, bpb) in Self.types {
            let rb = n / 32 * bpb
            let w = randomBlocks(bpb, blocks: rows * n / 32, rng: &rng)
            let (xq, _, xrb) = activations(cols, n, &rng)
            checkTokenCountInvariance(type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq, xRowBytes: xrb, cols: cols)
        }
    }

    func testGemmMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 77)
        for (name, t, bpb) in Self.types {
            for (n, colsList, rows) in [(1408, [1, 2, 3, 4, 5, 7, 9, 70], 7), (1408, [1, 2, 3, 4, 5, 12, 70], 19), (4160, [6], 19),
                                        (8192, [13], 19)] {
                let nb = n / 32
                let rb = nb * bpb
                XCTAssertEqual(Int(ck_row_size(t, Int64(n))), rb, name)
                let w = randomBlocks(bpb, blocks: rows * nb, rng: &rng)
                let wf = decodedRows(type: t, w, rowBytes: rb, rows: rows, n: n)
                for cols in colsList {
                    let (xq, xf, xrb) = activations(cols, n, &rng)
                    checkRowRangeGemm("\(name) n=\(n)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                      xRowBytes: xrb, cols: cols, wf: wf, xf: xf, simd: ck_gemm_block32_avx2,
                                      twin: ck_gemm_block32_ref)
                    checkGemmBuildsMatch("\(name) n=\(n)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                         xRowBytes: xrb, cols: cols, reference: ("AVX2", ck_gemm_block32_avx2),
                                         builds: vnniBuilds)
                }
            }
        }
    }

    /// The few-row kernel (decode, an expert's few tokens in a batched MoE step) of all four types against the scalar
    /// reference: 1...7 activation rows (passes of three and their remainders), a one-block tail (1,440), a tail only
    /// (64), rows longer than its precomputed activation terms (33,024: the per-row dot products), and a row range
    /// that leaves row 0 untouched; every activation row's results are the same bits alone as in a pass of two or
    /// three; and the AVX512-VNNI build gives the AVX2 build's bits.
    func testFewRowKernelMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 80)
        for (name, t, bpb) in Self.types {
            for (n, colsList) in [(1408, Array(1...7)), (1440, [1, 2, 3, 4]), (64, [1, 3]), (33024, [1, 2])] {
                let rows = n > 8192 ? 3 : 9, rb = (n / 32) * bpb
                let w = randomBlocks(bpb, blocks: rows * n / 32, rng: &rng)
                let wf = decodedRows(type: t, w, rowBytes: rb, rows: rows, n: n)
                for cols in colsList {
                    let (xq, xf, xrb) = activations(cols, n, &rng)
                    var y = [Float](repeating: .nan, count: rows * cols), yref = y
                    w.withUnsafeBytes { wr in
                        xq.withUnsafeBytes { xr in
                            ck_matmul_block32_rows_avx2(t, wr.baseAddress!, rb, Int64(n), 1, Int64(rows),
                                                        xr.baseAddress!, xrb, Int64(cols), &y, Int64(rows))
                            ck_matmul_rows_ref(t, wr.baseAddress!, rb, Int64(n), 1, Int64(rows), xr.baseAddress!, xrb,
                                               Int64(cols), &yref, Int64(rows))
                        }
                    }
                    // Each activation row alone gives the same bits as in a pass with others (n > 1 greedy choices
                    // of one request stay identical).
                    var alone = [Float](repeating: .nan, count: rows)
                    for c in 0..<cols where cols > 1 {
                        w.withUnsafeBytes { wr in
                            xq.withUnsafeBytes { xr in
                                ck_matmul_block32_rows_avx2(t, wr.baseAddress!, rb, Int64(n), 1, Int64(rows),
                                                            xr.baseAddress! + c * xrb, xrb, 1, &alone, Int64(rows))
                            }
                        }
                        for r in 1..<rows {
                            XCTAssertEqual(alone[r].bitPattern, y[c * rows + r].bitPattern,
                                           "\(name) n=\(n) cols=\(cols) row \(r) col \(c): alone vs in a pass")
                        }
                    }
                    // The AVX512-VNNI build (vpdpbusd, q5_0's fifth bits under a byte mask) gives the AVX2 bits.
                    if ck_cpu_runs_kernel_level(3) == 1 {
                        var yv = [Float](repeating: .nan, count: rows * cols)
                        w.withUnsafeBytes { wr in
                            xq.withUnsafeBytes { xr in
                                ck_matmul_block32_rows_avx512vnni(t, wr.baseAddress!, rb, Int64(n), 1, Int64(rows),
                                                                  xr.baseAddress!, xrb, Int64(cols), &yv, Int64(rows))
                            }
                        }
                        XCTAssertEqual(yv.map(\.bitPattern), y.map(\.bitPattern), "\(name) n=\(n) cols=\(cols): avx512vnni vs avx2")
                    }
                    for c in 0..<cols {
                        XCTAssertTrue(y[c * rows].isNaN, "\(name): row 0 is outside the range")
                        for r in 1..<rows {
                            var mag: Float = 0
                            for k in 0..<n { mag += abs(wf[r][k] * xf[c][k]) }
                            XCTAssertEqual(y[c * rows + r], yref[c * rows + r], accuracy: 1e-5 * mag + 1e-6,
                                           "\(name) n=\(n) cols=\(cols) row \(r) col \(c)")
                        }
                    }
                }
            }
        }
    }

    /// The eight-row micro-kernel gives a row the same bits as the two-row one (the same exact int32 half-block sums
    /// and float steps), so a row's value does not depend on how the pool splits the rows; and q4_0 / q5_0, whose
    /// four maddubs per half block are added in int16, do not saturate with every value at its largest against
    /// activations of ±127 and −128 (which the q8_0 format allows, though the quantizer writes ±127 only).
    func testEightRowKernelBitIdentityAndExtremes() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 79)
        let n = 1408, rows = 16, cols = 12, nb = n / 32
        for (name, t, bpb) in Self.types {
            let rb = nb * bpb
            for extreme in [false, true] {
                var w = randomBlocks(bpb, blocks: rows * nb, rng: &rng)
                if extreme { for i in w.indices where i % bpb >= 2 { w[i] = 0xff } }   // all bits set after the scale
                var (xq, _, xrb) = activations(cols, n, &rng)
                if extreme {   // −128 only against the unsigned types: the sign trick of q8_0 / iq4_nl needs |a| ≤ 127
                    let unsigned = t == 2 || t == 6
                    for c in 0..<cols {
                        for b in 0..<nb { for i in 0..<32 { xq[c * xrb + b * 34 + 2 + i] = c % 3 == 0 && unsigned ? 0x80 : c % 3 == 1 ? 0x81 : 0x7f } }
                    }
                }
                let wf = decodedRows(type: t, w, rowBytes: rb, rows: rows, n: n)
                var y8 = [Float](repeating: .nan, count: rows * cols), y2 = y8, yref = y8
                w.withUnsafeBytes { wr in
                    xq.withUnsafeBytes { xr in
                        ck_gemm_block32_avx2(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols),
                                             &y8, Int64(rows))
                        ck_gemm_block32_ref(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols),
                                            &yref, Int64(rows))
                        for r in stride(from: 0, to: rows, by: 2) {
                            ck_gemm_block32_avx2(t, wr.baseAddress!, rb, Int64(n), Int64(r), Int64(r + 2), xr.baseAddress!, xrb,
                                                 Int64(cols), &y2, Int64(rows))
                        }
                    }
                }
                checkGemmBuildsMatch("\(name) extreme=\(extreme)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                     xRowBytes: xrb, cols: cols, reference: ("AVX2", ck_gemm_block32_avx2), builds: vnniBuilds)
                for c in 0..<cols {
                    var xf = [Float](repeating: 0, count: n)
                    xq.withUnsafeBytes { ck_dequantize_row(8, $0.baseAddress! + c * xrb, &xf, Int64(n)) }
                    for r in 0..<rows {
                        let i = c * rows + r
                        XCTAssertEqual(y8[i].bitPattern, y2[i].bitPattern, "\(name) extreme=\(extreme) row \(r) column \(c)")
                        var mag: Float = 0
                        for k in 0..<n { mag += abs(wf[r][k] * xf[k]) }
                        XCTAssertEqual(y8[i], yref[i], accuracy: 1e-5 * mag + 1e-6, "\(name) extreme=\(extreme) row \(r) column \(c)")
                    }
                }
            }
        }
    }

    /// The dispatched matmul agrees with the reference for 1...9 activation rows (the few-row kernel below 8, the GEMM
    /// from there).
    func testDispatchAcrossTheGemmThreshold() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 78)
        let n = 1408, rows = 5
        for (name, t, bpb) in Self.types {
            let rb = (n / 32) * bpb
            let w = randomBlocks(bpb, blocks: rows * n / 32, rng: &rng)
            for cols in 1...9 {
                let (xq, xf, xrb) = activations(cols, n, &rng)
                _ = xf
                var y = [Float](repeating: .nan, count: rows * cols), yref = y
                w.withUnsafeBytes { wr in
                    xq.withUnsafeBytes { xr in
                        ck_matmul_rows(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols),
                                       &y, Int64(rows))
                        ck_matmul_rows_ref(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb,
                                           Int64(cols), &yref, Int64(rows))
                    }
                }
                for i in 0..<(rows * cols) {
                    XCTAssertEqual(y[i], yref[i], accuracy: 1e-3 * max(1, abs(yref[i])), "\(name) cols=\(cols) element \(i)")
                }
            }
        }
    }
}
