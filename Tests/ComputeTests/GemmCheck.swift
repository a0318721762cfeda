import CKernels
import Foundation
import XCTest

/// A row-range GEMM entry point: (type, W, W row bytes, n, r0, r1, X, X row bytes, ncols, Y, Y stride).
typealias RowRangeGemm = (Int32, UnsafeRawPointer?, Int, Int64, Int64, Int64, UnsafeRawPointer?, Int, Int64,
                          UnsafeMutablePointer<Float>?, Int64) -> Void

/// Runs a SIMD GEMM and its scalar twin on weight rows [1, rows − 1) of `w` (`rows` rows of `n` elements,
/// `rowBytes` apart) against `cols` activation rows `xq` (`xRowBytes` apart) and checks that rows 0 and rows − 1 stay
/// untouched (NaN) and that every result is within 1e-5 · Σ|w·x| of the twin's and within 1e-4 · Σ|w·x| of the dot
/// product of the decoded operands `wf` `[rows, n]` and `xf` `[cols, n]` (both sums cancel large per-block terms, so
/// the bound is relative to the magnitude of the products, not of the result).
func checkRowRangeGemm(_ label: String, type t: Int32, w: [UInt8], rowBytes rb: Int, n: Int, rows: Int,
                       xq: [UInt8], xRowBytes xrb: Int, cols: Int, wf: [[Float]], xf: [[Float]],
                       simd: RowRangeGemm, twin: RowRangeGemm, file: StaticString = #filePath, line: UInt = #line) {
    var y = [Float](repeating: .nan, count: rows * cols), yref = y
    w.withUnsafeBytes { wr in
        xq.withUnsafeBytes { xr in
            simd(t, wr.baseAddress!, rb, Int64(n), 1, Int64(rows - 1), xr.baseAddress!, xrb, Int64(cols), &y, Int64(rows))
            twin(t, wr.baseAddress!, rb, Int64(n), 1, Int64(rows - 1), xr.baseAddress!, xrb, Int64(cols), &yref, Int64(rows))
        }
    }
    for c in 0..<cols {
        for r in 0..<rows {
            let i = c * rows + r
            if r == 0 || r == rows - 1 {
                XCTAssertTrue(y[i].isNaN, "\(label) cols=\(cols): row \(r) outside the range was written", file: file, line: line)
                continue
            }
            var mag: Float = 0, exact: Float = 0
            for k in 0..<n { mag += abs(wf[r][k] * xf[c][k]); exact += wf[r][k] * xf[c][k] }
            XCTAssertEqual(y[i], yref[i], accuracy: 1e-5 * mag + 1e-6, "\(label) cols=\(cols) row \(r) column \(c)",
                           file: file, line: line)
            XCTAssertEqual(y[i], exact, accuracy: 1e-4 * mag + 1e-5, "\(label) cols=\(cols) row \(r) column \(c): decoded",
                           file: file, line: line)
        }
    }
}

/// The `rows` weight rows of `w` (`rowBytes` apart, `n` elements each) decoded by the reference dequantizer.
func decodedRows(type t: Int32, _ w: [UInt8], rowBytes rb: Int, rows: Int, n: Int) -> [[Float]] {
    (0..<rows).map { r -> [Float] in
        var out = [Float](repeating: 0, count: n)
        w.withUnsafeBytes { ck_dequantize_row(t, $0.baseAddress! + r * rb, &out, Int64(n)) }
        return out
    }
}

/// `ck_matmul_rows_gemm` of `type` weights `w` ([rows][rowBytes]) against the first k of `cols` activation rows `xq`
/// (`xRowBytes` apart), k = 1 ..< cols: each token's results must equal, bit for bit, its results in the call with all
/// `cols` tokens (a token's GEMM result does not depend on how many tokens share the call).
func checkTokenCountInvariance(type t: Int32, w: [UInt8], rowBytes rb: Int, n: Int, rows: Int, xq: [UInt8],
                               xRowBytes xrb: Int, cols: Int, file: StaticString = #filePath, line: UInt = #line) {
    func run(_ k: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * k)
        w.withUnsafeBytes { wr in
            xq.withUnsafeBytes { xr in
                ck_matmul_rows_gemm(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(k), &y, Int64(rows))
            }
        }
        return y
    }
    let all = run(cols)
    for k in 1..<cols {
        let some = run(k)
        for i in 0..<(rows * k) {
            XCTAssertEqual(some[i].bitPattern, all[i].bitPattern, "type \(t), \(k) tokens, output \(i)", file: file, line: line)
        }
    }
}

/// The builds of a GEMM for the VNNI kernel sets this CPU runs (AVX-VNNI, AVX512-VNNI), by name; empty on a CPU with
/// neither (the comparisons against AVX2 then check nothing, as their callers' messages say).
func vnniGemmBuilds(avxvnni: @escaping RowRangeGemm, avx512vnni: @escaping RowRangeGemm) -> [(String, RowRangeGemm)] {
    var builds = [(String, RowRangeGemm)]()
    if ck_cpu_runs_kernel_level(2) == 1 { builds.append(("avxvnni", avxvnni)) }
    if ck_cpu_runs_kernel_level(3) == 1 { builds.append(("avx512vnni", avx512vnni)) }
    return builds
}

/// Every build in `builds` gives, over all `rows` weight rows of `w` against the `cols` activation rows `xq`, the same
/// bits as `reference` (builds of one GEMM for several instruction sets: the same exact integer sums and float steps).
func checkGemmBuildsMatch(_ label: String, type t: Int32, w: [UInt8], rowBytes rb: Int, n: Int, rows: Int, xq: [UInt8],
                          xRowBytes xrb: Int, cols: Int, reference: (String, RowRangeGemm), builds: [(String, RowRangeGemm)],
                          file: StaticString = #filePath, line: UInt = #line) {
    func run(_ gemm: RowRangeGemm) -> [UInt32] {
        var y = [Float](repeating: .nan, count: rows * cols)
        w.withUnsafeBytes { wr in
            xq.withUnsafeBytes { xr in
                gemm(t, wr.baseAddress!, rb, Int64(n), 0, Int64(rows), xr.baseAddress!, xrb, Int64(cols), &y, Int64(rows))
            }
        }
        return y.map(\.bitPattern)
    }
    let expected = run(reference.1)
    for (name, gemm) in builds {
        XCTAssertEqual(run(gemm), expected, "\(label) cols=\(cols): \(name) must equal \(reference.0) bit for bit",
                       file: file, line: line)
    }
}
