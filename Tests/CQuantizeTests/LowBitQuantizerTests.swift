import CQuantize
import XCTest

/// The q2_K, q3_K, iq4_nl and iq4_xs quantizers (CQuantize/quantize_lowbit_k.c): block sizes, the byte count
/// written, and the round-trip error of their bit width on Gaussian rows (decoded by the run-time dequantizers,
/// which LowBitKQuantTests checks bit-exact against gguf-py).
final class LowBitQuantizerTests: XCTestCase {
    func testBlockSizes() {
        XCTAssertEqual(MemoryLayout<ckq_block_q2_K>.size, 84)
        XCTAssertEqual(MemoryLayout<ckq_block_q3_K>.size, 110)
        XCTAssertEqual(MemoryLayout<ckq_block_iq4_nl>.size, 18)
        XCTAssertEqual(MemoryLayout<ckq_block_iq4_xs>.size, 136)
    }

    func testRoundTripErrorMatchesBitWidth() {
        // (ggml type, block bytes, elements per block, upper and lower bound of the relative RMS error on N(0, 1)).
        let types: [(String, Int32, Int, Int, Double, Double)] = [
            ("q2_K", 10, 84, 256, 0.40, 0.15), ("q3_K", 11, 110, 256, 0.25, 0.08),
            ("iq4_nl", 20, 18, 32, 0.13, 0.04), ("iq4_xs", 23, 136, 256, 0.13, 0.04),
        ]
        let n = 4096, rows = 4
        var x = [Float](repeating: 0, count: n * rows)
        ckq_fill_normal(7, 3, 0, 1, &x, Int64(x.count))
        x[5] = 9; x[n + 17] = -9   // outliers: the block scales must follow them
        for (name, t, bytes, per, upper, lower) in types {
            let rb = n / per * bytes
            var q = [UInt8](repeating: 0, count: rows * rb)
            let written = q.withUnsafeMutableBytes { ckq_quantize_rows(t, x, $0.baseAddress!, Int64(rows), Int64(n)) }
            XCTAssertEqual(Int(written), rows * rb, name)
            var got = [Float](repeating: .nan, count: n * rows)
            XCTAssertEqual(q.withUnsafeBytes { ckq_dequantize_row(t, $0.baseAddress!, &got, Int64(n * rows)) }, 0, name)
            var err = 0.0, ref = 0.0
            for i in 0..<x.count { err += Double((got[i] - x[i]) * (got[i] - x[i])); ref += Double(x[i] * x[i]) }
            let rel = (err / ref).squareRoot()
            print(String(format: "%@ quantizer: relative RMS error %.4f on N(0,1)", name, rel))
            XCTAssertLessThanOrEqual(rel, upper, name)
            XCTAssertGreaterThanOrEqual(rel, lower, "\(name): better than its bit width allows: not really quantized?")
            XCTAssertEqual(got[5], 9, accuracy: 9 * Float(upper), "\(name): outlier")
            XCTAssertEqual(got[n + 17], -9, accuracy: 9 * Float(upper), "\(name): outlier")
            XCTAssertEqual(ckq_quantize_rows(t, x, &q, 1, Int64(per + 16)), -1, "\(name): partial block refused")
        }
    }
}
