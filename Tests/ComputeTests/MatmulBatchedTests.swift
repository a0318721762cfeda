import CKernels
import Compute
import XCTest

/// `Matmul.batched` (several same-shaped matrices, each against its own activation rows, in one pool job: MLA's
/// per-head W^UK / W^UV) gives each matrix exactly the result of a separate call.
final class MatmulBatchedTests: XCTestCase {
    /// `count` matrices `[rows, cols]` of `type` in one buffer: random bytes with small finite fp16 scales for the
    /// quantized types, uniform floats for f32.
    private func matrices(_ type: WeightType, count: Int, rows: Int, cols: Int, rng: inout TestRNG) -> [UInt8] {
        let rb = type.rowBytes(cols)
        if type == .f32 {
            let f = rng.floats(count * rows * cols)
            return f.withUnsafeBytes { Array($0) }
        }
        var bytes = (0..<(count * rows * rb)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let block = type == .q8_0 ? 34 : 144                      // q8_0: d first; q4_K: d, dmin first
        for b in 0..<(bytes.count / block) {
            for s in 0..<(type == .q8_0 ? 1 : 2) {
                let h = Float16(abs(rng.float(0.02)) + 0.001).bitPattern
                bytes[b * block + 2 * s] = UInt8(h & 0xff)
                bytes[b * block + 2 * s + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }

    func testBatchedEqualsOneCallPerMatrix() {
        var rng = TestRNG(state: 91)
        let pool = ThreadPool(threads: 2, spinIterations: 100)
        let heads = 16, rows = 64, cols = 256
        let matmul = Matmul(pool: pool, maxTokens: heads * 3, maxInDim: cols)
        for type in [WeightType.q8_0, .q4_K, .f32] {
            let buf = matrices(type, count: heads, rows: rows, cols: cols, rng: &rng)
            buf.withUnsafeBytes { raw in
                let ws = (0..<heads).map {
                    WeightMatrix(type: type, data: raw.baseAddress! + $0 * rows * type.rowBytes(cols), rows: rows, cols: cols)
                }
                for n in [1, 3] {
                    let x = rng.floats(heads * n * cols)                                     // [heads, n, cols]
                    var batched = [Float](repeating: .nan, count: heads * n * rows)         // [heads, n, rows]
                    matmul.batched(x, numTokens: n, ws, &batched)
                    for h in 0..<heads {
                        var one = [Float](repeating: .nan, count: n * rows)
                        x.withUnsafeBufferPointer { matmul($0.baseAddress! + h * n * cols, numTokens: n, ws[h], &one) }
                        XCTAssertEqual(Array(batched[(h * n * rows)..<((h + 1) * n * rows)]), one, "\(type) n=\(n) matrix \(h)")
                    }
                }
            }
        }
    }
}
