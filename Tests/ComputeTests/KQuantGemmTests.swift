import CKernels
import Compute
import Foundation
import TestSupport
import XCTest

/// The K-quant prefill GEMM (ck_gemm_kquant_avx2) against its scalar twin (ck_gemm_kquant_ref), its VNNI builds
/// against it bit for bit, and the dispatch (ck_matmul_rows) that sends four or more activation rows to it.
final class KQuantGemmTests: XCTestCase {
    /// The VNNI builds of the GEMM this CPU runs (x86/kquants_gemm_tiles.h built per set), by name.
    private var vnniBuilds: [(String, RowRangeGemm)] {
        vnniGemmBuilds(avxvnni: ck_gemm_kquant_avxvnni, avx512vnni: ck_gemm_kquant_avx512vnni)
    }

    /// Every VNNI build's results over all `rows` rows equal the AVX2 build's bit for bit (the same exact int32 sums
    /// and float steps).
    private func checkBuildsMatchAVX2(_ label: String, type t: Int32, w: [UInt8], rowBytes rb: Int, n: Int, rows: Int,
                                      xq: [UInt8], xRowBytes xrb: Int, cols: Int, file: StaticString = #filePath,
                                      line: UInt = #line) {
        checkGemmBuildsMatch(label, type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq, xRowBytes: xrb, cols: cols,
                             reference: ("AVX2", ck_gemm_kquant_avx2), builds: vnniBuilds, file: file, line: line)
    }

    /// Random q8_K activation rows `[cols, n]` (quantized by the reference quantizer) and their decoded floats.
    private func activations(_ cols: Int, _ n: Int, _ rng: inout TestRNG) -> ([UInt8], [[Float]], Int) {
        let xrb = Int(ck_row_size(15, Int64(n)))
        var xq = [UInt8](repeating: 0, count: cols * xrb)
        for c in 0..<cols {
            let x = rng.floats(n)
            xq.withUnsafeMutableBytes { ck_quantize_row_q8_K_ref(x, $0.baseAddress! + c * xrb, Int64(n)) }
        }
        let xf = (0..<cols).map { c -> [Float] in
            xq.withUnsafeBytes { raw in
                let b = raw.baseAddress! + c * xrb
                return (0..<n).map { i in
                    let blk = b + (i / 256) * 292
                    return blk.loadUnaligned(as: Float.self) * Float(blk.load(fromByteOffset: 4 + i % 256, as: Int8.self))
                }
            }
        }
        return (xq, xf, xrb)
    }

    /// Every K-quant type, weight-row ranges of 18 rows (two groups for the eight-row micro-kernel, then a pair)
    /// and of 5 rows (a pair and the one-row micro-kernel), columns that are not a multiple of 4 (padded groups),
    /// 70 columns of n = 512 (two activation tiles of at most 64 rows), rows of 16 super-blocks (n = 4096) and of 35
    /// (n = 8,960: more tokens than the 256 KiB stack tile holds, so with an L2 of more than 512 KiB the thread's
    /// larger gather buffer); rows outside the range are not written.
    func testGemmMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 41)
        for (name, t) in [("q2_K", Int32(10)), ("q4_K", 12), ("q5_K", 13), ("q6_K", 14)] {
            for (n, colsList, rows) in [(512, [4, 5, 6, 7, 8, 9, 13, 70], 20), (512, [4, 9], 7), (4096, [37], 20),
                                        (8960, [30], 10)] {
                let rb = Int(ck_row_size(t, Int64(n)))
                let w = FormatMore.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
                let wf = decodedRows(type: t, w, rowBytes: rb, rows: rows, n: n)
                for cols in colsList {
                    let (xq, xf, xrb) = activations(cols, n, &rng)
                    // rows 1..<6: two pairs and a single row; rows 0 and 6 stay untouched.
                    checkRowRangeGemm("\(name) n=\(n)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                      xRowBytes: xrb, cols: cols, wf: wf, xf: xf, simd: ck_gemm_kquant_avx2,
                                      twin: ck_gemm_kquant_ref)
                    checkBuildsMatchAVX2("\(name) n=\(n)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                         xRowBytes: xrb, cols: cols)
                }
            }
        }
    }

    /// A token's results do not depend on how many tokens share the call (padded groups skip the padding's products
    /// but keep each real token's operations): the first k of nine tokens, k = 1...9, against 18 rows (eight-row
    /// groups and a pair) equal, bit for bit, those tokens' results in the nine-token call. `ck_matmul_rows_gemm`
    /// relies on this for prompt tokens (a prompt's logits the same however it is split into steps).
    func testGemmResultsDoNotDependOnTheTokenCount() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 53)
        let n = 512, rows = 18, cols = 9
        for t in [Int32(10), 12, 13, 14] {
            let rb = Int(ck_row_size(t, Int64(n)))
            let w = FormatMore.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
            let (xq, _, xrb) = activations(cols, n, &rng)
            checkTokenCountInvariance(type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq, xRowBytes: xrb, cols: cols)
        }
    }

    /// The eight-row micro-kernel sums a 16-value group in int16 before scaling it: with every quantized value at
    /// its largest (all bits set: q2_K 3, q4_K 15, q5_K 31, q6_K 63, scales and mins at their extremes) against
    /// activations of −128 and 127 (q8_K of −1 and 1), no lane may saturate. And its results are bit for bit those
    /// of the two-row micro-kernel (the same exact int32 sums, the same float steps), so a row's value does not depend
    /// on how the pool splits the rows.
    func testEightRowKernelExtremesAndBitIdentity() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 47)
        let n = 512, rows = 18, cols = 12
        for (t, halves) in [(Int32(10), [80, 82]), (12, [0, 2]), (13, [0, 2]), (14, [208])] {
            let rb = Int(ck_row_size(t, Int64(n)))
            for extreme in [true, false] {
                var w = FormatMore.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
                if extreme {
                    let bs = rb / (n / 256)
                    for i in w.indices where !halves.contains(where: { i % bs == $0 || i % bs == $0 + 1 }) { w[i] = 0xff }
                }
                let wf = decodedRows(type: t, w, rowBytes: rb, rows: rows, n: n)
                let xrb = Int(ck_row_size(15, Int64(n)))
                var xq = [UInt8](repeating: 0, count: cols * xrb)
                var xf = [[Float]]()
                for c in 0..<cols {
                    let x = extreme ? [Float](repeating: c % 2 == 0 ? -1 : 1, count: n) : rng.floats(n)
                    xq.withUnsafeMutableBytes { ck_quantize_row_q8_K_ref(x, $0.baseAddress! + c * xrb, Int64(n)) }
                    if extreme && c % 2 == 0 {   // −128, which the quantizer (±127) never writes but q8_K allows
                        for b in 0..<(n / 256) {
                            let o = c * xrb + b * 292
                            for i in 0..<256 { xq[o + 4 + i] = 0x80 }
                            for k in 0..<16 { xq[o + 260 + 2 * k] = 0x00; xq[o + 261 + 2 * k] = 0xf8 }   // −2048
                        }
                    }
                    xf.append(xq.withUnsafeBytes { raw in
                        (0..<n).map { i in
                            let blk = raw.baseAddress! + c * xrb + (i / 256) * 292
                            return blk.loadUnaligned(as: Float.self) * Float(blk.load(fromByteOffset: 4 + i % 256, as: Int8.self))
                        }
                    })
                }
                checkRowRangeGemm("q\(t) extreme=\(extreme)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                  xRowBytes: xrb, cols: cols, wf: wf, xf: xf, simd: ck_gemm_kquant_avx2,
                                  twin: ck_gemm_kquant_ref)
                checkBuildsMatchAVX2("q\(t) extreme=\(extreme)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                     xRowBytes: xrb, cols: cols)
                var y8 = [Float](repeating: .nan, count: rows * cols), y2 = y8
                w.withUnsafeBytes { wr in
                    xq.withUnsafeBytes { xr in
                        ck_gemm_kquant_avx2(t, wr.baseAddress!, rb, Int64(n), 0, 16, xr.baseAddress!, xrb, Int64(cols), &y8,
                                            Int64(rows))
                        for r in stride(from: 0, to: 16, by: 2) {
                            ck_gemm_kquant_avx2(t, wr.baseAddress!, rb, Int64(n), Int64(r), Int64(r + 2), xr.baseAddress!, xrb,
                                                Int64(cols), &y2, Int64(rows))
                        }
                    }
                }
                for c in 0..<cols {
                    for r in 0..<16 {
                        XCTAssertEqual(y8[c * rows + r].bitPattern, y2[c * rows + r].bitPattern,
                                       "type \(t) extreme=\(extreme) row \(r) column \(c): eight-row vs two-row kernel")
                    }
                }
            }
        }
    }

    /// q4_K, q5_K and q6_K: the per-row kernel takes the GEMM's float steps, so `ck_matmul_rows` (decode: the row
    /// kernel below 4 activation rows, the GEMM from 4) and `ck_matmul_rows_gemm` (prompt steps) give the GEMM's
    /// bits for every row and token, random and extreme weights (all bits set, against activations of ±127), one to
    /// nine tokens, 18 rows (the GEMM's eight-row groups and a pair): decode is batch-invariant and a prompt's logits
    /// do not depend on how it is split. The same for each build of the row kernel this CPU runs (AVX2, AVX512-VNNI).
    /// A swapped half (s_0 / s_1 or the mins halves) or a per-lane accumulation fails it.
    func testRowKernelGivesTheGemmBits() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rowKernelBuilds: [(String, RowRangeGemm)] = [("avx2", ck_matmul_kquant_avx2)]
        if ck_cpu_runs_kernel_level(3) == 1 { rowKernelBuilds.append(("avx512vnni", ck_matmul_kquant_avx512vnni)) }
        var rng = TestRNG(state: 59)
        let rows = 18
        for t: Int32 in [12, 13, 14] {
            for n in [512, 4096] {
                let rb = Int(ck_row_size(t, Int64(n)))
                for extreme in [false, true] {
                    var w = FormatMore.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
                    if extreme {   // every value and scale at its largest, the fp16 d / dmin kept sane
                        let bs = rb / (n / 256), keep = t == 14 ? [208] : [0, 2]
                        for i in w.indices where !keep.contains(where: { i % bs == $0 || i % bs == $0 + 1 }) { w[i] = 0xff }
                    }
                    for cols in 1...9 {
                        var (xq, _, xrb) = activations(cols, n, &rng)
                        if extreme {
                            for c in 0..<cols {
                                let x = [Float](repeating: c % 2 == 0 ? -1 : 1, count: n)
                                xq.withUnsafeMutableBytes { ck_quantize_row_q8_K_ref(x, $0.baseAddress! + c * xrb, Int64(n)) }
                            }
                        }
                        var yGemm = [Float](repeating: .nan, count: rows * cols), yDispatch = yGemm, yRows = yGemm
                        // Each build of the row kernel itself (one to four activation rows per pass; five to nine
                        // take passes of four and the rest) gives the GEMM's bits too.
                        var yBuilds = rowKernelBuilds.map { _ in [Float](repeating: .nan, count: rows * cols) }
                        w.withUnsafeBytes { wr in
                            xq.withUnsafeBytes { xr in
                                for (k, (_, kernel)) in rowKernelBuilds.enumerated() {
                                    kernel(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb,
                                           Int64(cols), &yBuilds[k], Int64(rows))
                                }
                                ck_matmul_rows(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb,
                                               Int64(cols), &yRows, Int64(rows))
                                ck_gemm_kquant_avx2(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb,
                                                    Int64(cols), &yGemm, Int64(rows))
                                ck_matmul_rows_gemm(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb,
                                                    Int64(cols), &yDispatch, Int64(rows))
                            }
                        }
                        for i in 0..<(rows * cols) {
                            XCTAssertEqual(yRows[i].bitPattern, yGemm[i].bitPattern,
                                           "type \(t) n \(n) extreme=\(extreme) cols \(cols) row \(i % rows) column \(i / rows): \(yRows[i]) vs \(yGemm[i])")
                            XCTAssertEqual(yDispatch[i].bitPattern, yGemm[i].bitPattern,
                                           "type \(t) n \(n) cols \(cols): ck_matmul_rows_gemm")
                            for (k, (name, _)) in rowKernelBuilds.enumerated() {
                                XCTAssertEqual(yBuilds[k][i].bitPattern, yGemm[i].bitPattern,
                                               "type \(t) n \(n) extreme=\(extreme) cols \(cols) row \(i % rows) column \(i / rows): \(name) row kernel")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The dispatched matmul (`ck_matmul_rows`, AVX2 table) agrees with the reference on both sides of each type's
    /// switch from the per-row kernel to the GEMM (4 activation rows; q2_K below 4 takes the generic per-row dots).
    func testDispatchAcrossTheGemmThreshold() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 43)
        let n = 768, rows = 6
        for t: Int32 in [10, 12, 13, 14] {
            let rb = Int(ck_row_size(t, Int64(n)))
            let w = FormatMore.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
            let wf = decodedRows(type: t, w, rowBytes: rb, rows: rows, n: n)
            for cols in [1, 2, 3, 4, 5, 8, 11, 12, 13, 31, 32, 33, 63, 64, 65] {
                let (xq, xf, xrb) = activations(cols, n, &rng)
                var y = [Float](repeating: .nan, count: rows * cols), yref = y
                w.withUnsafeBytes { wr in
                    xq.withUnsafeBytes { xr in
                        ck_matmul_rows(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols),
                                       &y, Int64(rows))
                        ck_matmul_rows_ref(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb,
                                           Int64(cols), &yref, Int64(rows))
                    }
                }
                for c in 0..<cols {
                    for r in 0..<rows {
                        var mag: Float = 0
                        for k in 0..<n { mag += abs(wf[r][k] * xf[c][k]) }
                        XCTAssertEqual(y[c * rows + r], yref[c * rows + r], accuracy: 1e-5 * mag + 1e-6,
                                       "type \(t) cols=\(cols) row \(r) column \(c)")
                    }
                }
            }
        }
    }
}
