import CKernels
import Compute
import XCTest

/// The interleaved 8-row GEMMs (q4_1 and q8_0, ref/gemm_x8.c and x86/avx2_gemm_x8.c) against the plain-layout
/// reference, over token counts that exercise the 8- and 4-token tiles and every tail (1...3), and their batch invariance:
/// a token's outputs are bit-identical whether it is computed alone or in a batch of any size.
extension KernelTests {
    /// Runs `kernel` over a repacked copy of `w` for tokens `[c0, c0 + count)` of `a` (row ranges split like pool
    /// chunks) and returns `[count, rows]`.
    private func repackedProduct(_ type: WeightType, _ packed: [UInt8], n: Int, rows: Int, a: [UInt8], c0: Int, count: Int,
                                 reference: Bool) -> [Float] {
        let arb = Int(ck_row_size(type.activationTypeID, Int64(n)))
        var y = [Float](repeating: .nan, count: count * rows)
        packed.withUnsafeBytes { pp in
            a.withUnsafeBytes { ap in
                let x = ap.baseAddress! + c0 * arb
                for (lo, hi) in [(0, 8), (8, rows)] {
                    switch (type, reference) {
                    case (.q4_1, false): ck_matmul_q4_1_x8(pp.baseAddress!, Int64(n), Int64(lo), Int64(hi), x, arb, Int64(count), &y, Int64(rows))
                    case (.q4_1, true): ck_matmul_q4_1_x8_ref(pp.baseAddress!, Int64(n), Int64(lo), Int64(hi), x, arb, Int64(count), &y, Int64(rows))
                    case (_, false): ck_matmul_q8_0_x8(pp.baseAddress!, Int64(n), Int64(lo), Int64(hi), x, arb, Int64(count), &y, Int64(rows))
                    case (_, true): ck_matmul_q8_0_x8_ref(pp.baseAddress!, Int64(n), Int64(lo), Int64(hi), x, arb, Int64(count), &y, Int64(rows))
                    }
                }
            }
        }
        return y
    }

    private func repack(_ type: WeightType, _ w: [UInt8], rows: Int, n: Int) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: w.count)
        w.withUnsafeBytes { wp in
            packed.withUnsafeMutableBytes { out in
                if type == .q4_1 {
                    ck_repack_q4_1_x8(wp.baseAddress!, type.rowBytes(n), Int64(rows), Int64(n), out.baseAddress!)
                } else {
                    ck_repack_q8_0_x8(wp.baseAddress!, type.rowBytes(n), Int64(rows), Int64(n), out.baseAddress!)
                }
            }
        }
        return packed
    }

    func testInterleavedGemmMatchesPlainLayoutForEveryTileWidth() throws {
        var rng = TestRNG(state: 31)
        // SmolLM2's width; 11 tokens = an 8-token tile and a 3-token tail (q4_1), two 4-token tiles and a tail (q8_0)
        let n = 576, rows = 40, tokens = 11
        for type in [WeightType.q4_1, .q8_0] {
            let (w, a) = makeOperands(type: type, rows: rows, n: n, cols: tokens, rng: &rng)
            let arb = Int(ck_row_size(type.activationTypeID, Int64(n)))
            var plain = [Float](repeating: .nan, count: tokens * rows)
            w.withUnsafeBytes { wp in
                a.withUnsafeBytes { ap in
                    ck_matmul_rows_ref(type.rawValue, wp.baseAddress!, type.rowBytes(n), Int64(n), 0, Int64(rows), ap.baseAddress!, arb,
                                       Int64(tokens), &plain, Int64(rows))
                }
            }
            let packed = repack(type, w, rows: rows, n: n)
            let ref = repackedProduct(type, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, reference: true)
            XCTAssertEqual(ref, plain, "\(type): the interleaved scalar twin must reproduce the plain reference exactly")
            let simd = repackedProduct(type, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, reference: false)
            for i in 0..<plain.count {
                XCTAssertEqual(simd[i], plain[i], accuracy: 1e-4 + abs(plain[i]) * 1e-5, "\(type) element \(i)")
            }
            // Batch invariance: every token alone, and every batch size 1...tokens, gives the same bits.
            for count in 1...tokens {
                for c0 in stride(from: 0, to: tokens - count + 1, by: max(1, count)) {
                    let part = repackedProduct(type, packed, n: n, rows: rows, a: a, c0: c0, count: count, reference: false)
                    XCTAssertEqual(part, Array(simd[(c0 * rows)..<((c0 + count) * rows)]),
                                   "\(type): tokens \(c0)..<\(c0 + count) differ from the same tokens in a batch of \(tokens)")
                }
            }
        }
    }

    func testInterleavedQ8_0GemmAtTheInt8Extremes() {
        // Weights and activations of ±127 everywhere: the largest products the sign trick and the int32 sums see.
        let n = 64, rows = 8, tokens = 5
        var w = [UInt8](repeating: 0, count: rows * WeightType.q8_0.rowBytes(n))
        var a = [UInt8](repeating: 0, count: tokens * Int(ck_row_size(WeightType.q8_0.activationTypeID, Int64(n))))
        let one = Float16(1).bitPattern
        for (buf, count) in [(0, rows), (1, tokens)] {
            for r in 0..<count {
                for b in 0..<(n / 32) {
                    let off = (r * (n / 32) + b) * 34
                    for j in 0..<32 {
                        let v: Int8 = (j + r + b + buf) % 3 == 0 ? -127 : 127
                        if buf == 0 { w[off + 2 + j] = UInt8(bitPattern: v) } else { a[off + 2 + j] = UInt8(bitPattern: v) }
                    }
                    if buf == 0 { w[off] = UInt8(one & 0xff); w[off + 1] = UInt8(one >> 8) }
                    else { a[off] = UInt8(one & 0xff); a[off + 1] = UInt8(one >> 8) }
                }
            }
        }
        let packed = repack(.q8_0, w, rows: rows, n: n)
        let ref = repackedProduct(.q8_0, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, reference: true)
        let simd = repackedProduct(.q8_0, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, reference: false)
        var expected = [Float](repeating: 0, count: tokens * rows)
        for c in 0..<tokens {
            for r in 0..<rows {
                var sum = 0
                for b in 0..<(n / 32) {
                    for j in 0..<32 {
                        sum += Int(Int8(bitPattern: w[(r * (n / 32) + b) * 34 + 2 + j])) * Int(Int8(bitPattern: a[(c * (n / 32) + b) * 34 + 2 + j]))
                    }
                }
                expected[c * rows + r] = Float(sum)
            }
        }
        XCTAssertEqual(ref, expected)
        XCTAssertEqual(simd, expected)
    }
}
