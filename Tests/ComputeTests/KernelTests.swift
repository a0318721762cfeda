import CKernels
import Compute
import XCTest

/// Deterministic pseudo-random numbers (SplitMix64) so failures reproduce.
struct TestRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-scale, scale).
    mutating func float(_ scale: Float = 1) -> Float { (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    mutating func floats(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in float(scale) } }
}

/// Independent (test-side) decoding of the ggml block formats from raw bytes.
enum Format {
    static func half(_ b: UnsafeRawPointer) -> Float { Float(Float16(bitPattern: b.loadUnaligned(as: UInt16.self))) }

    /// q8_0 block: fp16 d, 32 × int8.
    static func q8_0(_ bytes: [UInt8], n: Int) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<n).map { i in
                let blk = raw.baseAddress! + (i / 32) * 34
                return half(blk) * Float(Int8(bitPattern: blk.load(fromByteOffset: 2 + i % 32, as: UInt8.self)))
            }
        }
    }

    /// q4_1 block: fp16 d, fp16 m, 16 bytes; element j (< 16) = low nibble of byte j, j + 16 = high nibble.
    static func q4_1(_ bytes: [UInt8], n: Int) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<n).map { i in
                let blk = raw.baseAddress! + (i / 32) * 20
                let j = i % 32
                let byte = blk.load(fromByteOffset: 4 + j % 16, as: UInt8.self)
                let q = j < 16 ? byte & 0x0f : byte >> 4
                return half(blk) * Float(q) + half(blk + 2)
            }
        }
    }

    /// q4_0 block: fp16 d, 16 bytes; value = d * (q - 8).
    static func q4_0(_ bytes: [UInt8], n: Int) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<n).map { i in
                let blk = raw.baseAddress! + (i / 32) * 18
                let j = i % 32
                let byte = blk.load(fromByteOffset: 2 + j % 16, as: UInt8.self)
                let q = Int(j < 16 ? byte & 0x0f : byte >> 4)
                return half(blk) * Float(q - 8)
            }
        }
    }
}

final class KernelTests: XCTestCase {
    /// The types these tests build operands for (the 5-bit, K-quant and bf16 types are in QuantFormatTests).
    static let blockTypes32: [WeightType] = [.f32, .f16, .q4_0, .q4_1, .q8_0]

    func testFP16ConversionMatchesSwiftFloat16() {
        var rng = TestRNG(state: 1)
        for _ in 0..<20_000 {
            let f = rng.float(70_000) * (rng.next() % 3 == 0 ? 1e-4 : 1)
            XCTAssertEqual(ck_fp32_to_fp16(f), Float16(f).bitPattern, "fp32→fp16 of \(f)")
        }
        for bits in stride(from: 0, through: 0xffff, by: 1) where (bits & 0x7c00) != 0x7c00 {
            let h = UInt16(bits)
            XCTAssertEqual(ck_fp16_to_fp32(h), Float(Float16(bitPattern: h)))
        }
    }

    /// `n` floats of random magnitudes from f16 subnormals to past the largest f16, with the edge cases spread through
    /// the row (as many as fit): ±0, 65504, the overflow edge (65520 and up become inf), exact ties, the smallest
    /// subnormal and half of it (ties to even), ±inf, NaN.
    static func fp16EdgeRow(_ n: Int, _ rng: inout TestRNG) -> [Float] {
        var a = (0..<n).map { _ -> Float in
            let scale: Float = [1e-7, 1e-5, 1e-2, 1, 100, 7e4][Int(rng.next() % 6)]
            return rng.float(scale)
        }
        let specials: [Float] = [0, -0.0, 65504, 65519.99, 65520, -65520, 1 + 1.0 / 2048, 1 + 3.0 / 2048, 5.96e-8,
                                 2.98e-8, -2.98e-8, 8.94e-8, .infinity, -.infinity, .nan]
        for (i, v) in specials.enumerated() where i < n { a[(i * 7) % n] = v }
        return a
    }

    /// The F16C round-through-f16 row kernel equals its scalar twin bit for bit: random magnitudes from f16 subnormals
    /// to past the largest f16 (65504; 65520 and up become inf), signed zeros, exact ties, ±inf; NaN stays NaN. Row
    /// lengths with and without an 8-wide tail.
    func testFP16RoundRowMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 3)
        for n in [1, 8, 13, 4099] {
            var a = Self.fp16EdgeRow(n, &rng)
            var b = a
            ck_fp16_round_row_avx2(&a, Int64(n))
            ck_fp16_round_row_ref(&b, Int64(n))
            for i in 0..<n {
                if b[i].isNaN { XCTAssertTrue(a[i].isNaN, "n \(n) i \(i)"); continue }
                XCTAssertEqual(a[i].bitPattern, b[i].bitPattern, "n \(n) i \(i): \(a[i]) vs \(b[i])")
            }
        }
    }

    /// The F16C f32 → f16 row kernel (KV cache stores) gives its scalar twin's bit patterns for every non-NaN input:
    /// the same random magnitudes and specials as above (subnormals, ties, the overflow edge, ±0, ±inf), NaN → NaN.
    /// Row lengths with and without an 8-wide tail.
    func testFP32ToFP16RowMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 5)
        for n in [1, 8, 13, 4099] {
            let a = Self.fp16EdgeRow(n, &rng)
            var fast = [UInt16](repeating: 0, count: n), slow = fast
            ck_fp32_to_fp16_row_avx2(a, &fast, Int64(n))
            ck_fp32_to_fp16_row_ref(a, &slow, Int64(n))
            for i in 0..<n {
                if a[i].isNaN {
                    XCTAssertTrue(Float(Float16(bitPattern: fast[i])).isNaN, "n \(n) i \(i)")
                    continue
                }
                XCTAssertEqual(fast[i], slow[i], "n \(n) i \(i): \(a[i])")
                XCTAssertEqual(slow[i], Float16(a[i]).bitPattern, "n \(n) i \(i): \(a[i]) (Swift's conversion)")
            }
        }
    }

    func testQuantizeQ8_0RoundTripFollowsTheFormat() {
        var rng = TestRNG(state: 2)
        let n = 256
        let x = rng.floats(n, 3)
        var bytes = [UInt8](repeating: 0, count: n / 32 * 34)
        ck_quantize_row_q8_0(x, &bytes, Int64(n))
        let decoded = Format.q8_0(bytes, n: n)
        var back = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { ck_dequantize_row(8, $0.baseAddress!, &back, Int64(n)) }
        for b in 0..<(n / 32) {
            let amax = x[(b * 32)..<(b * 32 + 32)].map(abs).max()!
            let d = Float(Float16(amax / 127))
            for j in 0..<32 {
                let i = b * 32 + j
                XCTAssertEqual(back[i], decoded[i])
                XCTAssertLessThanOrEqual(abs(decoded[i] - x[i]), d * 0.5 + amax * 2e-3, "element \(i)")
            }
        }
    }

    func testQuantizeQ8_1SumField() {
        var rng = TestRNG(state: 3)
        let n = 128
        let x = rng.floats(n, 2)
        var bytes = [UInt8](repeating: 0, count: n / 32 * 36)
        ck_quantize_row_q8_1(x, &bytes, Int64(n))
        bytes.withUnsafeBytes { raw in
            for b in 0..<(n / 32) {
                let blk = raw.baseAddress! + b * 36
                let d = Format.half(blk), s = Format.half(blk + 2)
                var sum = 0
                let amax = x[(b * 32)..<(b * 32 + 32)].map(abs).max()!
                for j in 0..<32 {
                    let q = Int(Int8(bitPattern: blk.load(fromByteOffset: 4 + j, as: UInt8.self)))
                    sum += q
                    XCTAssertLessThanOrEqual(abs(d * Float(q) - x[b * 32 + j]), d * 0.5 + amax * 2e-3)
                }
                XCTAssertEqual(s, Float(Float16(d * Float(sum))), accuracy: abs(s) * 1e-3 + 1e-6)
            }
        }
    }

    func testDequantizeQ4FormatsMatchIndependentDecoding() {
        var rng = TestRNG(state: 4)
        let n = 96
        for (type, size) in [(Int32(3), 20), (Int32(2), 18)] {
            var bytes = (0..<(n / 32 * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for b in 0..<(n / 32) {   // keep the fp16 scales finite and small
                bytes[b * size + 1] = 0x2c
                if type == 3 { bytes[b * size + 3] = 0xac }
            }
            var back = [Float](repeating: 0, count: n)
            bytes.withUnsafeBytes { ck_dequantize_row(type, $0.baseAddress!, &back, Int64(n)) }
            XCTAssertEqual(back, type == 3 ? Format.q4_1(bytes, n: n) : Format.q4_0(bytes, n: n))
        }
    }

    /// Random weight rows of `type` (quantized from random floats) and activations of its partner type.
    func makeOperands(type: WeightType, rows: Int, n: Int, cols: Int, rng: inout TestRNG) -> ([UInt8], [UInt8]) {
        let wf = rng.floats(rows * n, 0.5)
        var w = [UInt8](repeating: 0, count: rows * type.rowBytes(n))
        for r in 0..<rows {
            let off = r * type.rowBytes(n)
            w.withUnsafeMutableBytes { raw in
                let dst = raw.baseAddress! + off
                wf.withUnsafeBufferPointer { src in
                    let row = src.baseAddress! + r * n
                    switch type {
                    case .f32: dst.copyMemory(from: row, byteCount: n * 4)
                    case .f16: ck_fp32_to_fp16_row(row, dst.assumingMemoryBound(to: UInt16.self), Int64(n))
                    case .q8_0: ck_quantize_row_q8_0(row, dst, Int64(n))
                    case .q4_0, .q4_1:
                        // Random nibbles with a random scale (and offset) per block.
                        for b in 0..<(n / 32) {
                            let blk = dst + b * (type == .q4_1 ? 20 : 18)
                            blk.storeBytes(of: Float16(Float(rng.next() % 100 + 1) * 1e-3).bitPattern, as: UInt16.self)
                            var q0 = 2
                            if type == .q4_1 {
                                blk.storeBytes(of: Float16(rng.float(0.05)).bitPattern, toByteOffset: 2, as: UInt16.self)
                                q0 = 4
                            }
                            for j in 0..<16 { blk.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: q0 + j, as: UInt8.self) }
                        }
                    default: preconditionFailure("\(type) is covered by QuantFormatTests")
                    }
                }
            }
        }
        let xf = rng.floats(cols * n, 2)
        let atype = type.activationTypeID
        let arb = Int(ck_row_size(atype, Int64(n)))
        var a = [UInt8](repeating: 0, count: cols * arb)
        a.withUnsafeMutableBytes { raw in
            for c in 0..<cols { ck_quantize_activation_row(type.rawValue, Array(xf[(c * n)..<((c + 1) * n)]), raw.baseAddress! + c * arb, Int64(n)) }
        }
        return (w, a)
    }

    func testSIMDDotProductsMatchReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 5)
        for n in [32, 64, 576, 1536] {
            for type in KernelTests.blockTypes32 {
                let (w, a) = makeOperands(type: type, rows: 1, n: n, cols: 1, rng: &rng)
                w.withUnsafeBytes { wp in
                    a.withUnsafeBytes { ap in
                        let (x, y) = (wp.baseAddress!, ap.baseAddress!)
                        let pair: (Float, Float)
                        switch type {
                        case .q4_0: pair = (ck_dot_q4_0_q8_0_avx2(Int64(n), x, y), ck_dot_q4_0_q8_0_ref(Int64(n), x, y))
                        case .q4_1: pair = (ck_dot_q4_1_q8_1_avx2(Int64(n), x, y), ck_dot_q4_1_q8_1_ref(Int64(n), x, y))
                        case .q8_0: pair = (ck_dot_q8_0_q8_0_avx2(Int64(n), x, y), ck_dot_q8_0_q8_0_ref(Int64(n), x, y))
                        case .f16:
                            let hx = x.assumingMemoryBound(to: UInt16.self), fy = y.assumingMemoryBound(to: Float.self)
                            pair = (ck_dot_f16_f32_avx2(Int64(n), hx, fy), ck_dot_f16_f32_ref(Int64(n), hx, fy))
                        case .f32:
                            let fx = x.assumingMemoryBound(to: Float.self), fy = y.assumingMemoryBound(to: Float.self)
                            pair = (ck_dot_f32_avx2(Int64(n), fx, fy), ck_dot_f32_ref(Int64(n), fx, fy))
                        default: preconditionFailure("\(type) is covered by QuantFormatTests")
                        }
                        XCTAssertEqual(pair.0, pair.1, accuracy: 1e-4 * Float(n).squareRoot() + abs(pair.1) * 1e-5, "\(type) n=\(n)")
                    }
                }
            }
        }
    }

    func testSIMDMatmulMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 6)
        let n = 192, rows = 37, cols = 5
        for type in KernelTests.blockTypes32 {
            let (w, a) = makeOperands(type: type, rows: rows, n: n, cols: cols, rng: &rng)
            let arb = Int(ck_row_size(type.activationTypeID, Int64(n)))
            var y = [Float](repeating: .nan, count: cols * rows), yref = y
            w.withUnsafeBytes { wp in
                a.withUnsafeBytes { ap in
                    // Two row ranges (an unaligned split) exercise the 4-row kernels and their tails.
                    ck_matmul_rows(type.rawValue, wp.baseAddress!, type.rowBytes(n), Int64(n), 0, 13, ap.baseAddress!, arb, Int64(cols), &y, Int64(rows))
                    ck_matmul_rows(type.rawValue, wp.baseAddress!, type.rowBytes(n), Int64(n), 13, Int64(rows), ap.baseAddress!, arb, Int64(cols), &y, Int64(rows))
                    ck_matmul_rows_ref(type.rawValue, wp.baseAddress!, type.rowBytes(n), Int64(n), 0, Int64(rows), ap.baseAddress!, arb, Int64(cols), &yref, Int64(rows))
                }
            }
            for i in 0..<y.count { XCTAssertEqual(y[i], yref[i], accuracy: 1e-3 + abs(yref[i]) * 1e-5, "\(type) element \(i)") }
        }
    }

    func testRepackedQ4_1MatchesPlainLayout() throws {
        var rng = TestRNG(state: 8)
        let n = 160, rows = 24, cols = 3
        let (w, a) = makeOperands(type: .q4_1, rows: rows, n: n, cols: cols, rng: &rng)
        let arb = Int(ck_row_size(WeightType.q4_1.activationTypeID, Int64(n)))
        var packed = [UInt8](repeating: 0, count: ck_q4_1_x8_size(Int64(rows), Int64(n)))
        XCTAssertEqual(packed.count, w.count)
        var plain = [Float](repeating: .nan, count: rows * cols), ref = plain, simd = plain
        w.withUnsafeBytes { wp in
            a.withUnsafeBytes { ap in
                packed.withUnsafeMutableBytes { ck_repack_q4_1_x8(wp.baseAddress!, WeightType.q4_1.rowBytes(n), Int64(rows), Int64(n), $0.baseAddress!) }
                ck_matmul_rows_ref(WeightType.q4_1.rawValue, wp.baseAddress!, WeightType.q4_1.rowBytes(n), Int64(n), 0, Int64(rows), ap.baseAddress!, arb, Int64(cols), &plain, Int64(rows))
                packed.withUnsafeBytes { pp in
                    ck_matmul_q4_1_x8_ref(pp.baseAddress!, Int64(n), 0, Int64(rows), ap.baseAddress!, arb, Int64(cols), &ref, Int64(rows))
                    // Two row ranges, as thread chunks would call it.
                    ck_matmul_q4_1_x8(pp.baseAddress!, Int64(n), 0, 8, ap.baseAddress!, arb, Int64(cols), &simd, Int64(rows))
                    ck_matmul_q4_1_x8(pp.baseAddress!, Int64(n), 8, Int64(rows), ap.baseAddress!, arb, Int64(cols), &simd, Int64(rows))
                }
            }
        }
        XCTAssertEqual(ref, plain, "the repacked scalar twin must reproduce the plain reference exactly")
        for i in 0..<plain.count { XCTAssertEqual(simd[i], plain[i], accuracy: 1e-4 + abs(plain[i]) * 1e-5, "element \(i)") }
    }

    func testRepackedQ8_0MatchesPlainLayout() throws {
        var rng = TestRNG(state: 17)
        let n = 96, rows = 16, cols = 3
        let (w, a) = makeOperands(type: .q8_0, rows: rows, n: n, cols: cols, rng: &rng)
        let arb = Int(ck_row_size(WeightType.q8_0.activationTypeID, Int64(n)))
        var packed = [UInt8](repeating: 0, count: w.count)
        var plain = [Float](repeating: .nan, count: rows * cols), ref = plain, simd = plain
        w.withUnsafeBytes { wp in
            a.withUnsafeBytes { ap in
                packed.withUnsafeMutableBytes { ck_repack_q8_0_x8(wp.baseAddress!, WeightType.q8_0.rowBytes(n), Int64(rows), Int64(n), $0.baseAddress!) }
                ck_matmul_rows_ref(WeightType.q8_0.rawValue, wp.baseAddress!, WeightType.q8_0.rowBytes(n), Int64(n), 0, Int64(rows), ap.baseAddress!, arb, Int64(cols), &plain, Int64(rows))
                packed.withUnsafeBytes { pp in
                    ck_matmul_q8_0_x8_ref(pp.baseAddress!, Int64(n), 0, Int64(rows), ap.baseAddress!, arb, Int64(cols), &ref, Int64(rows))
                    ck_matmul_q8_0_x8(pp.baseAddress!, Int64(n), 0, 8, ap.baseAddress!, arb, Int64(cols), &simd, Int64(rows))
                    ck_matmul_q8_0_x8(pp.baseAddress!, Int64(n), 8, Int64(rows), ap.baseAddress!, arb, Int64(cols), &simd, Int64(rows))
                }
            }
        }
        XCTAssertEqual(ref, plain, "the repacked scalar twin must reproduce the plain reference exactly")
        for i in 0..<plain.count { XCTAssertEqual(simd[i], plain[i], accuracy: 1e-4 + abs(plain[i]) * 1e-5, "element \(i)") }
    }

    func testPagedAttentionKernelsMatchReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 9)
        let bs = 4, blocks = 6, heads = 2
        for d in [8, 64, 96] {
            for kvType in [Int32(CK_F32.rawValue), Int32(CK_F16.rawValue)] {
                let esize = kvType == Int32(CK_F16.rawValue) ? 2 : 4
                let slotBytes = heads * d * esize
                let values = rng.floats(blocks * bs * heads * d)
                var cache = [UInt8](repeating: 0, count: blocks * bs * slotBytes)
                cache.withUnsafeMutableBytes { raw in
                    if esize == 2 { ck_fp32_to_fp16_row(values, raw.baseAddress!.assumingMemoryBound(to: UInt16.self), Int64(values.count)) }
                    else { raw.baseAddress!.copyMemory(from: values, byteCount: values.count * 4) }
                }
                let table: [Int32] = [5, 2, 0, 3, 1, 4]
                let q = rng.floats(d), n = 21
                var s1 = [Float](repeating: 0, count: n), s2 = s1
                var o1 = [Float](repeating: 0, count: d), o2 = o1
                let w = rng.floats(n).map { abs($0) / Float(n) }
                cache.withUnsafeBytes { raw in
                    let base = raw.baseAddress! + d * esize   // head 1
                    ck_attn_scores_avx2(kvType, q, Int64(d), base, slotBytes, table, Int64(bs), Int64(n), 0.125, &s1)
                    ck_attn_scores_ref(kvType, q, Int64(d), base, slotBytes, table, Int64(bs), Int64(n), 0.125, &s2)
                    ck_attn_values_avx2(kvType, w, Int64(d), base, slotBytes, table, Int64(bs), Int64(n), &o1)
                    ck_attn_values_ref(kvType, w, Int64(d), base, slotBytes, table, Int64(bs), Int64(n), &o2)
                }
                for p in 0..<n { XCTAssertEqual(s1[p], s2[p], accuracy: 1e-5, "scores d=\(d) type \(kvType) p \(p)") }
                for i in 0..<d { XCTAssertEqual(o1[i], o2[i], accuracy: 1e-5, "values d=\(d) type \(kvType) i \(i)") }
                // Position 5 of the sequence is block table[1] = 2, offset 1: check one score independently.
                let slot = 2 * bs + 1
                var want: Float = 0
                for i in 0..<d {
                    let v = values[(slot * heads + 1) * d + i]
                    want += q[i] * (esize == 2 ? Float(Float16(v)) : v)
                }
                XCTAssertEqual(s2[5], want * 0.125, accuracy: 1e-5)
            }
        }
    }

    /// The grouped-query kernels (one KV head, g query heads): against their scalar twins, the AVX512-VL build
    /// bit-identical to the AVX2 one, and bit-identical to the
    /// one-head AVX2 kernels (their g = 1 case) head by head (the batched-decode path must not change greedy outputs), for group
    /// sizes that exercise the four-head passes and every remainder, head sizes with and without 16 | d.
    func testGroupedQueryAttentionKernels() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 21)
        // Short contexts (blocks of 4), one past the 512-position chunk of 64-wide heads (blocks of 16), and MLA's
        // 576-wide latent rows over several of their 112/48-position chunks (f16/f32), chunk edges inside blocks.
        for (bs, blocks, n, dims) in [(4, 6, 23, [8, 24, 64, 128]), (16, 40, 600, [64]), (16, 30, 470, [576])] {
        for d in dims {
            for kvType in [Int32(CK_F32.rawValue), Int32(CK_F16.rawValue)] {
                let esize = kvType == Int32(CK_F16.rawValue) ? 2 : 4
                let slotBytes = d * esize
                let values = rng.floats(blocks * bs * d)
                var cache = [UInt8](repeating: 0, count: blocks * bs * slotBytes)
                cache.withUnsafeMutableBytes { raw in
                    if esize == 2 { ck_fp32_to_fp16_row(values, raw.baseAddress!.assumingMemoryBound(to: UInt16.self), Int64(values.count)) }
                    else { raw.baseAddress!.copyMemory(from: values, byteCount: values.count * 4) }
                }
                let table: [Int32] = (0..<Int32(blocks)).map { ($0 * 7 + 5) % Int32(blocks) }   // scrambled
                let stride = n + 9
                for g in 1...9 {
                    let q = rng.floats(g * d)
                    let w = rng.floats(g * stride).map { abs($0) / Float(n) }
                    var s = [Float](repeating: 0, count: g * stride), sRef = s, sOne = s
                    var o = [Float](repeating: 0, count: g * d), oRef = o, oOne = o
                    cache.withUnsafeBytes { raw in
                        let base = raw.baseAddress!
                        ck_attn_scores_gqa_avx2(kvType, q, Int64(d), Int64(g), Int64(d), base, slotBytes, table, Int64(bs), Int64(n), 0.125, &s, Int64(stride))
                        ck_attn_scores_gqa_ref(kvType, q, Int64(d), Int64(g), Int64(d), base, slotBytes, table, Int64(bs), Int64(n), 0.125, &sRef, Int64(stride))
                        ck_attn_values_gqa_avx2(kvType, w, Int64(stride), Int64(g), Int64(d), base, slotBytes, table, Int64(bs), Int64(n), &o, Int64(d))
                        ck_attn_values_gqa_ref(kvType, w, Int64(stride), Int64(g), Int64(d), base, slotBytes, table, Int64(bs), Int64(n), &oRef, Int64(d))
                        for h in 0..<g {
                            q.withUnsafeBufferPointer { qp in
                                sOne.withUnsafeMutableBufferPointer { sp in
                                    ck_attn_scores_avx2(kvType, qp.baseAddress! + h * d, Int64(d), base, slotBytes, table, Int64(bs), Int64(n), 0.125, sp.baseAddress! + h * stride)
                                }
                            }
                            w.withUnsafeBufferPointer { wp in
                                oOne.withUnsafeMutableBufferPointer { op in
                                    ck_attn_values_avx2(kvType, wp.baseAddress! + h * stride, Int64(d), base, slotBytes, table, Int64(bs), Int64(n), op.baseAddress! + h * d)
                                }
                            }
                        }
                    }
                    if ck_cpu_runs_kernel_level(3) == 1 {   // the AVX512-VL build: more heads per pass, the same bits
                        var sWide = [Float](repeating: 0, count: g * stride), oWide = [Float](repeating: 0, count: g * d)
                        cache.withUnsafeBytes { raw in
                            let base = raw.baseAddress!
                            ck_attn_scores_gqa_avx512(kvType, q, Int64(d), Int64(g), Int64(d), base, slotBytes, table, Int64(bs), Int64(n), 0.125, &sWide, Int64(stride))
                            ck_attn_values_gqa_avx512(kvType, w, Int64(stride), Int64(g), Int64(d), base, slotBytes, table, Int64(bs), Int64(n), &oWide, Int64(d))
                        }
                        XCTAssertEqual(sWide.map(\.bitPattern), s.map(\.bitPattern), "AVX512 scores d=\(d) g=\(g)")
                        XCTAssertEqual(oWide.map(\.bitPattern), o.map(\.bitPattern), "AVX512 values d=\(d) g=\(g)")
                    }
                    for h in 0..<g {
                        for p in 0..<n {
                            XCTAssertEqual(s[h * stride + p], sOne[h * stride + p], "scores d=\(d) g=\(g) h=\(h) p=\(p)")
                            XCTAssertEqual(s[h * stride + p], sRef[h * stride + p], accuracy: 1e-5)
                        }
                        for i in 0..<d {
                            XCTAssertEqual(o[h * d + i], oOne[h * d + i], "values d=\(d) g=\(g) h=\(h) i=\(i)")
                            XCTAssertEqual(o[h * d + i], oRef[h * d + i], accuracy: 1e-5)
                        }
                    }
                }
            }
        }
        }
    }

    /// A bf16 cache: every build (AVX2 running the VDPBF16PS pair steps as two FMAs, AVX512-VL likewise, AVX512-BF16
    /// with the instruction) and the dispatched entry point give the scalar twins' bits, for head groups 1...9 and 16
    /// (the eight- and four-head passes and every remainder), widths from one 16-element chunk to MLA's 576-wide
    /// latent rows and 512-wide values over several chunks, odd context lengths (the last position's zero-weight
    /// partner), chunk edges inside blocks and a scrambled block table.
    func testBF16CacheAttentionKernelsGiveTheScalarTwinsBits() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        typealias Scores = (Int32, UnsafePointer<Float>?, Int64, Int64, Int64, UnsafeRawPointer?, Int, UnsafePointer<Int32>?,
                            Int64, Int64, Float, UnsafeMutablePointer<Float>?, Int64) -> Void
        typealias Values = (Int32, UnsafePointer<Float>?, Int64, Int64, Int64, UnsafeRawPointer?, Int, UnsafePointer<Int32>?,
                            Int64, Int64, UnsafeMutablePointer<Float>?, Int64) -> Void
        var builds: [(String, Scores, Values)] = [("avx2", ck_attn_scores_gqa_avx2, ck_attn_values_gqa_avx2),
                                                  ("dispatched", ck_attn_scores_gqa, ck_attn_values_gqa)]
        if ck_cpu_runs_kernel_level(3) == 1 { builds.append(("avx512", ck_attn_scores_gqa_avx512, ck_attn_values_gqa_avx512)) }
        if ck_cpu_has_avx512bf16() == 1 {
            builds.append(("avx512bf16", ck_attn_scores_gqa_avx512bf16, ck_attn_values_gqa_avx512bf16))
        }
        let bf16 = Int32(CK_BF16.rawValue)
        var rng = TestRNG(state: 33)
        for (bs, blocks, n, d) in [(4, 6, 23, 16), (4, 6, 21, 64), (16, 40, 601, 128), (16, 30, 471, 576), (16, 40, 600, 512)] {
            let values = rng.floats(blocks * bs * d, 3)
            var cache = [UInt16](repeating: 0, count: values.count)
            ck_fp32_to_bf16_row(values, &cache, Int64(values.count))
            let table: [Int32] = (0..<Int32(blocks)).map { ($0 * 7 + 5) % Int32(blocks) }
            let stride = n + 5
            for g in [1, 2, 3, 4, 5, 6, 7, 8, 9, 16] {
                let q = rng.floats(g * d, 2)
                let w = rng.floats(g * stride).map { abs($0) * 2 / Float(n) }
                var sRef = [Float](repeating: 0, count: g * stride), oRef = [Float](repeating: 0, count: g * d)
                ck_attn_scores_gqa_ref(bf16, q, Int64(d), Int64(g), Int64(d), cache, d * 2, table, Int64(bs), Int64(n), 0.125, &sRef, Int64(stride))
                ck_attn_values_gqa_ref(bf16, w, Int64(stride), Int64(g), Int64(d), cache, d * 2, table, Int64(bs), Int64(n), &oRef, Int64(d))
                for (name, scores, valuesFn) in builds {
                    var s = [Float](repeating: 0, count: g * stride), o = [Float](repeating: 0, count: g * d)
                    scores(bf16, q, Int64(d), Int64(g), Int64(d), cache, d * 2, table, Int64(bs), Int64(n), 0.125, &s, Int64(stride))
                    valuesFn(bf16, w, Int64(stride), Int64(g), Int64(d), cache, d * 2, table, Int64(bs), Int64(n), &o, Int64(d))
                    for h in 0..<g {
                        XCTAssertEqual(s[(h * stride)..<(h * stride + n)].map(\.bitPattern),
                                       sRef[(h * stride)..<(h * stride + n)].map(\.bitPattern), "\(name) scores d=\(d) n=\(n) g=\(g) h=\(h)")
                    }
                    XCTAssertEqual(o.map(\.bitPattern), oRef.map(\.bitPattern), "\(name) values d=\(d) n=\(n) g=\(g)")
                }
                // The twins are the bf16 products: within float summation error of the exact dot products.
                let qb = q.map { ck_bf16_to_fp32(ck_fp32_to_bf16($0)) }
                for p in [0, n / 2, n - 1] {
                    let slot = Int(table[p / bs]) * bs + p % bs
                    var exact = 0.0
                    for i in 0..<d { exact += Double(qb[i]) * Double(ck_bf16_to_fp32(cache[slot * d + i])) }
                    XCTAssertEqual(Double(sRef[p]), exact * 0.125, accuracy: 1e-4 * Double(d).squareRoot(), "d=\(d) p=\(p)")
                }
            }
        }
    }

    /// f32 → bf16 rounds to nearest, ties to even (as ggml and torch): exact values stay, halfway cases go to the even
    /// neighbour, past-halfway ones up, the largest floats to infinity; NaN stays NaN; subnormals are kept.
    func testFP32ToBF16Rounding() {
        let cases: [(Float, UInt16)] = [
            (1.0, 0x3F80), (-2.0, 0xC000), (0, 0x0000), (-0.0, 0x8000),
            (1.00390625, 0x3F80),                    // 1 + 2^-8: halfway between 0x3F80 and 0x3F81 → even
            (1.01171875, 0x3F82),                    // 1 + 3·2^-8: halfway between 0x3F81 and 0x3F82 → even
            (Float(bitPattern: 0x3F80_8001), 0x3F81), // just past halfway → up
            (Float(bitPattern: 0x3F80_7FFF), 0x3F80), // just below halfway → down
            (.greatestFiniteMagnitude, 0x7F80), (.infinity, 0x7F80), (-.infinity, 0xFF80),
            (Float(bitPattern: 0x0001_0000), 0x0001), // the smallest bf16 subnormal
        ]
        for (x, want) in cases { XCTAssertEqual(ck_fp32_to_bf16(x), want, "\(x)") }
        XCTAssertTrue(ck_bf16_to_fp32(ck_fp32_to_bf16(.nan)).isNaN)
        XCTAssertTrue(ck_bf16_to_fp32(ck_fp32_to_bf16(Float(bitPattern: 0x7F80_0001))).isNaN)   // a signalling NaN too
        var row = [UInt16](repeating: 0, count: 3)
        ck_fp32_to_bf16_row([1.0, 1.01171875, -2.0], &row, 3)
        XCTAssertEqual(row, [0x3F80, 0x3F82, 0xC000])
    }

    func testSIMDQuantizersAreBitIdenticalToReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        // Rows of 1, 3, 8 (one group of eight blocks), 18 (two groups and a tail: SmolLM2's 576) and 48 blocks, each
        // block at its own magnitude (the eight-block scale pass must keep every block's maximum in its own lane).
        var rng = TestRNG(state: 10)
        for n in [32, 96, 256, 576, 1536] {
            for scale in [Float(1e-3), 1, 300] {
                var x = rng.floats(n, scale)
                for b in 0..<(n / 32) { for i in 0..<32 { x[b * 32 + i] *= Float(1 + (b * 7) % 11) } }
                x[5] = 0; x[min(40, n - 1)] = 127.0 / 254.0 * scale    // a value that can land on a .5 tie
                if n >= 96 { for i in 64..<96 { x[i] = 0 } }             // an all-zero block
                for (bytes, simd, ref) in [(34, ck_quantize_row_q8_0_avx2, ck_quantize_row_q8_0_ref),
                                           (36, ck_quantize_row_q8_1_avx2, ck_quantize_row_q8_1_ref)] {
                    var a = [UInt8](repeating: 0, count: n / 32 * bytes), b = a
                    simd(x, &a, Int64(n))
                    ref(x, &b, Int64(n))
                    XCTAssertEqual(a, b, "n \(n), block size \(bytes), scale \(scale)")
                }
            }
        }
    }

    func testSIMDSoftmaxMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 15)
        for n in [1, 7, 8, 33, 300] {
            var a = rng.floats(n, 30)
            a[0] = -200   // underflows to 0
            var b = a
            ck_softmax_avx2(&a, Int64(n))
            ck_softmax_ref(&b, Int64(n))
            for i in 0..<n { XCTAssertEqual(a[i], b[i], accuracy: 1e-6 + b[i] * 1e-6, "n \(n) i \(i)") }
        }
    }

    func testSIMDSiluMulMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 16)
        for n in [1, 7, 8, 33, 1536] {
            var g = rng.floats(n, 12), u = rng.floats(n, 3)
            g[0] = -150     // e^150 overflows: silu is -0, never NaN
            if n > 1 { g[1] = 120 }   // e^-120 underflows: silu(g) = g
            if n > 2 { g[2] = 0 }
            var a = [Float](repeating: .nan, count: n), b = a
            ck_silu_mul_avx2(g, u, &a, Int64(n))
            ck_silu_mul_ref(g, u, &b, Int64(n))
            for i in 0..<n {
                XCTAssertFalse(a[i].isNaN, "n \(n) i \(i)")
                XCTAssertEqual(a[i], b[i], accuracy: 1e-6 * max(1, abs(b[i])), "n \(n) i \(i) g \(g[i])")
            }
        }
        // In place (out aliases the gate), as the feed-forward calls it.
        var g = rng.floats(64, 6)
        let u = rng.floats(64, 2)
        var b = [Float](repeating: 0, count: 64)
        ck_silu_mul_ref(g, u, &b, 64)
        g.withUnsafeMutableBufferPointer { p in ck_silu_mul_avx2(p.baseAddress!, u, p.baseAddress!, 64) }
        for i in 0..<64 { XCTAssertEqual(g[i], b[i], accuracy: 1e-6 * max(1, abs(b[i]))) }
    }

    func testAxpyMatchesReference() throws {
        try XCTSkipUnless(ck_has_avx2() == 1, "no AVX2 on this CPU: only the reference kernels run")
        var rng = TestRNG(state: 7)
        for n in [7, 64, 100] {
            let x = rng.floats(n), y0 = rng.floats(n)
            let h = x.map { Float16($0).bitPattern }
            var a = y0, b = y0, c = y0, d = y0
            ck_axpy_f32_avx2(Int64(n), 0.7, x, &a); ck_axpy_f32_ref(Int64(n), 0.7, x, &b)
            ck_axpy_f16_avx2(Int64(n), -1.3, h, &c); ck_axpy_f16_ref(Int64(n), -1.3, h, &d)
            for i in 0..<n {
                XCTAssertEqual(a[i], b[i], accuracy: 1e-6)
                XCTAssertEqual(c[i], d[i], accuracy: 1e-6)
            }
        }
    }
}
