import CKernels
import Compute
import XCTest

/// The interleaved 8-row GEMMs (q4_1 and q8_0, ref/gemm_x8.c and x86/gemm_x8_tiles.h in its AVX2 and AVX-VNNI builds)
/// against the plain-layout reference, over token counts that exercise the 8- and 4-token tiles and every tail
/// (1...3), and their batch invariance: a token's outputs are bit-identical whether it is computed alone or in a batch
/// of any size. Every SIMD variant (AVX2, AVX-VNNI, AVX512-VNNI) is called directly, not through dispatch, where the
/// CPU runs it, and each must equal the AVX2 one bit for bit.
enum GemmX8Kernel: Int32, CaseIterable { case reference, avx2, avxvnni, avx512vnni

    /// The SIMD variants, checked where the CPU runs them.
    static let simd: [GemmX8Kernel] = [.avx2, .avxvnni, .avx512vnni]

    /// Whether this CPU runs the variant.
    var available: Bool { ck_cpu_runs_kernel_level(rawValue) == 1 }
}

extension KernelTests {
    /// Runs `kernel` over a repacked copy of `w` for tokens `[c0, c0 + count)` of `a` (row ranges split like pool
    /// chunks) and returns `[count, rows]`.
    private func repackedProduct(_ type: WeightType, _ packed: [UInt8], n: Int, rows: Int, a: [UInt8], c0: Int, count: Int,
                                 kernel: GemmX8Kernel) -> [Float] {
        let arb = Int(ck_row_size(type.activationTypeID, Int64(n)))
        var y = [Float](repeating: .nan, count: count * rows)
        packed.withUnsafeBytes { pp in
            a.withUnsafeBytes { ap in
                let x = ap.baseAddress! + c0 * arb
                for (lo, hi) in [(0, 8), (8, rows)] {
                    let p = pp.baseAddress!, n = Int64(n), lo = Int64(lo), hi = Int64(hi), m = Int64(count), ys = Int64(rows)
                    switch (type, kernel) {
                    case (.q4_1, .reference): ck_matmul_q4_1_x8_ref(p, n, lo, hi, x, arb, m, &y, ys)
                    case (.q4_1, .avx2): ck_matmul_q4_1_x8_avx2(p, n, lo, hi, x, arb, m, &y, ys)
                    case (.q4_1, .avxvnni): ck_matmul_q4_1_x8_avxvnni(p, n, lo, hi, x, arb, m, &y, ys)
                    case (.q4_1, .avx512vnni): ck_matmul_q4_1_x8_avx512vnni(p, n, lo, hi, x, arb, m, &y, ys)
                    case (_, .reference): ck_matmul_q8_0_x8_ref(p, n, lo, hi, x, arb, m, &y, ys)
                    case (_, .avx2): ck_matmul_q8_0_x8_avx2(p, n, lo, hi, x, arb, m, &y, ys)
                    case (_, .avxvnni): ck_matmul_q8_0_x8_avxvnni(p, n, lo, hi, x, arb, m, &y, ys)
                    case (_, .avx512vnni): ck_matmul_q8_0_x8_avx512vnni(p, n, lo, hi, x, arb, m, &y, ys)
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
            let ref = repackedProduct(type, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, kernel: .reference)
            XCTAssertEqual(ref, plain, "\(type): the interleaved scalar twin must reproduce the plain reference exactly")
            var avx2Result: [Float]?
            for kernel in GemmX8Kernel.simd where kernel.available {
                let simd = repackedProduct(type, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, kernel: kernel)
                for i in 0..<plain.count {
                    XCTAssertEqual(simd[i], plain[i], accuracy: 1e-4 + abs(plain[i]) * 1e-5, "\(type) \(kernel) element \(i)")
                }
                if let avx2Result { XCTAssertEqual(simd, avx2Result, "\(type): \(kernel) must equal AVX2 bit for bit") }
                else { avx2Result = simd }
                // Batch invariance: every token alone, and every batch size 1...tokens, gives the same bits.
                for count in 1...tokens {
                    for c0 in stride(from: 0, to: tokens - count + 1, by: max(1, count)) {
                        let part = repackedProduct(type, packed, n: n, rows: rows, a: a, c0: c0, count: count, kernel: kernel)
                        XCTAssertEqual(part, Array(simd[(c0 * rows)..<((c0 + count) * rows)]),
                                       "\(type) \(kernel): tokens \(c0)..<\(c0 + count) differ from the same tokens in a batch of \(tokens)")
                    }
                }
            }
        }
    }

    func testInterleavedQ8_0GemmAtTheInt8Extremes() {
        // Weights and activations of ±127 everywhere, and weights of −128 (a GGUF file may hold them; ggml's quantizer
        // writes −127...127): the largest products the sign trick, the VNNI offset form ((w + 128)·a from −128·Σa)
        // and the int32 sums see.
        let n = 64, rows = 24, tokens = 9   // rows 0..<8 alone, 8..<24 as one 16-row pair (AVX512-VNNI); an 8-token tile and a tail
        var w = [UInt8](repeating: 0, count: rows * WeightType.q8_0.rowBytes(n))
        var a = [UInt8](repeating: 0, count: tokens * Int(ck_row_size(WeightType.q8_0.activationTypeID, Int64(n))))
        let one = Float16(1).bitPattern
        for (buf, count) in [(0, rows), (1, tokens)] {
            for r in 0..<count {
                for b in 0..<(n / 32) {
                    let off = (r * (n / 32) + b) * 34
                    for j in 0..<32 {
                        let v: Int8 = buf == 0 && (j + r) % 5 == 0 ? -128 : (j + r + b + buf) % 3 == 0 ? -127 : 127
                        if buf == 0 { w[off + 2 + j] = UInt8(bitPattern: v) } else { a[off + 2 + j] = UInt8(bitPattern: v) }
                    }
                    if buf == 0 { w[off] = UInt8(one & 0xff); w[off + 1] = UInt8(one >> 8) }
                    else { a[off] = UInt8(one & 0xff); a[off + 1] = UInt8(one >> 8) }
                }
            }
        }
        let packed = repack(.q8_0, w, rows: rows, n: n)
        let ref = repackedProduct(.q8_0, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, kernel: .reference)
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
        for kernel in GemmX8Kernel.simd where kernel.available {
            XCTAssertEqual(repackedProduct(.q8_0, packed, n: n, rows: rows, a: a, c0: 0, count: tokens, kernel: kernel), expected,
                           "\(kernel)")
            // Fewer than 8 tokens: AVX512-VNNI takes every row group through the 8-row tiles.
            for count in [1, 3, 7] {
                XCTAssertEqual(repackedProduct(.q8_0, packed, n: n, rows: rows, a: a, c0: 1, count: count, kernel: kernel),
                               Array(expected[rows..<((1 + count) * rows)]), "\(kernel), \(count) tokens")
            }
        }
    }

    /// ck_set_kernel_level picks the highest set the CPU runs under the cap and dispatch follows it; the default is
    /// the highest of all (unless SPUTNIK_KERNELS caps it).
    func testKernelLevelSelection() {
        let start = ck_kernel_level()
        defer { _ = ck_set_kernel_level(start) }
        let best = GemmX8Kernel.allCases.last { $0.available }!.rawValue
        if ProcessInfo.processInfo.environment["SPUTNIK_KERNELS"] == nil { XCTAssertEqual(start, best) }
        for cap in Int32(0)...4 {
            let expected = GemmX8Kernel.allCases.last { $0.rawValue <= cap && $0.available }!.rawValue
            XCTAssertEqual(ck_set_kernel_level(cap), expected, "cap \(cap)")
            XCTAssertEqual(ck_kernel_level(), expected)
            XCTAssertEqual(ck_has_avx2(), expected > 0 ? 1 : 0)
        }
        XCTAssertEqual(ck_set_kernel_level(-1), 0)
    }
}
