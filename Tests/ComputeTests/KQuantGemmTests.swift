import CKernels
import Compute
import Foundation
import TestSupport
import XCTest

/// The K-quant prefill GEMM (ck_gemm_kquant_avx2) against its scalar twin (ck_gemm_kquant_ref), and the dispatch
/// (ck_matmul_rows) that sends four or more activation rows to it.
final class KQuantGemmTests: XCTestCase {
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

    /// Every K-quant type, weight-row ranges with an odd row (the one-row micro-kernel) and columns that are not
    /// a multiple of 4 (padded groups), 70 columns of n = 512 (two activation tiles of at most 64 rows) and rows of
    /// 16 super-blocks (n = 4096); rows outside the range are not written.
    func testGemmMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 41)
        for (name, t) in [("q2_K", Int32(10)), ("q4_K", 12), ("q5_K", 13), ("q6_K", 14)] {
            for (n, colsList) in [(512, [4, 5, 6, 7, 8, 9, 13, 70]), (4096, [37])] {
                let rows = 7
                let rb = Int(ck_row_size(t, Int64(n)))
                let w = FormatMore.randomBlocks(t, blocks: rows * n / 256, rng: &rng)
                let wf = decodedRows(type: t, w, rowBytes: rb, rows: rows, n: n)
                for cols in colsList {
                    let (xq, xf, xrb) = activations(cols, n, &rng)
                    // rows 1..<6: two pairs and a single row; rows 0 and 6 stay untouched.
                    checkRowRangeGemm("\(name) n=\(n)", type: t, w: w, rowBytes: rb, n: n, rows: rows, xq: xq,
                                      xRowBytes: xrb, cols: cols, wf: wf, xf: xf, simd: ck_gemm_kquant_avx2,
                                      twin: ck_gemm_kquant_ref)
                }
            }
        }
    }

    /// The dispatched matmul (`ck_matmul_rows`, AVX2 table) agrees with the reference on both sides of each type's
    /// switch from the per-row kernel to the GEMM (q2_K at 4 activation rows, q5_K at 12, q4_K at 32, q6_K at 64).
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
