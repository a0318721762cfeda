import CKernels
import XCTest

/// The 8-bit MLA latent cache (`ckernels.h`, "8-bit MLA latent cache"): the store's round trip, the AVX512-VNNI
/// build and the dispatched entry points against the scalar twins (the same bits), and the twins against float
/// arithmetic on the dequantized rows (the int8 rounding is all they lose).
final class MLAQ8KernelTests: XCTestCase {
    typealias Scores = (UnsafePointer<Float>?, Int64, Int64, Int64, Int64, UnsafeRawPointer?, Int, UnsafePointer<Int32>?,
                        Int64, Int64, Float, UnsafeMutablePointer<Float>?, Int64) -> Void
    typealias Values = (UnsafePointer<Float>?, Int64, Int64, Int64, Int64, UnsafeRawPointer?, Int, UnsafePointer<Int32>?,
                        Int64, Int64, UnsafeMutablePointer<Float>?, Int64) -> Void

    /// A cache of `blocks` blocks of `bs` slots with every slot stored from `rows` [slots, dl + dr]: rows of
    /// varied magnitude, with an outlier channel in some, so the per-64-value and per-token scales differ.
    private func makeCache(dl: Int, dr: Int, bs: Int, blocks: Int, rng: inout TestRNG) -> (cache: [UInt8], rows: [Float], slotBytes: Int) {
        let d = dl + dr, slots = bs * blocks
        let slotBytes = ck_mla_q8_tile_bytes(Int64(dl), Int64(dr)) / 16
        var rows = [Float](repeating: 0, count: slots * d)
        for s in 0..<slots {
            let mag = Float(1 + s % 5) * 0.5
            for i in 0..<d { rows[s * d + i] = rng.float(mag) }
            if s % 3 == 0 { rows[s * d + (s * 7) % dl] = 12 * mag }       // an outlier in one 64-value block
            if s % 4 == 1 { for i in dl..<d { rows[s * d + i] = 0 } }     // an all-zero RoPE part
        }
        var cache = [UInt8](repeating: 0xA5, count: slots * slotBytes)
        cache.withUnsafeMutableBytes { raw in
            for s in 0..<slots {
                rows.withUnsafeBufferPointer { r in
                    ck_mla_q8_store(r.baseAddress! + s * d, Int64(dl), Int64(dr), raw.baseAddress!, slotBytes, Int64(s))
                }
            }
        }
        return (cache, rows, slotBytes)
    }

    func testStoredRowsLoadBackWithinHalfAScaleStep() {
        var rng = TestRNG(state: 81)
        for (dl, dr) in [(128, 16), (96, 16), (512, 64)] {
            let d = dl + dr
            let (cache, rows, slotBytes) = makeCache(dl: dl, dr: dr, bs: 16, blocks: 3, rng: &rng)
            var out = [Float](repeating: 0, count: d)
            for s in 0..<48 {
                cache.withUnsafeBytes { ck_mla_q8_load_row($0.baseAddress!, slotBytes, Int64(s), Int64(dl), Int64(dr), &out) }
                let nl = (dl + 63) / 64
                for b in 0...nl {
                    let r = b < nl ? (b * 64)..<min(b * 64 + 64, dl) : dl..<d
                    let amax = r.map { abs(rows[s * d + $0]) }.max()!
                    for i in r {
                        XCTAssertEqual(out[i], rows[s * d + i], accuracy: amax / 127 * 0.5001 + 1e-7, "dl=\(dl) slot \(s) value \(i)")
                    }
                }
            }
        }
    }

    func testBuildsGiveTheScalarTwinsBitsAndTheTwinsTheFloatProducts() throws {
        var builds: [(String, Scores, Values)] = [("dispatched", ck_mla_q8_scores, ck_mla_q8_values)]
        if ck_cpu_runs_kernel_level(3) == 1 {
            builds.append(("avx512vnni", ck_mla_q8_scores_avx512vnni, ck_mla_q8_values_avx512vnni))
        }
        var rng = TestRNG(state: 82)
        // Tiny DeepSeek fixtures' widths (kv_lora_rank 128 and 96: a short last block) and V2/V3's; contexts ending inside an eight-token group, a tile, a
        // 64-position weight chunk; blocks of 16, 32 and 64 slots, scrambled.
        for (dl, dr, bs, blocks, n) in [(128, 16, 16, 4, 1), (96, 16, 16, 4, 37), (512, 64, 16, 40, 601),
                                        (512, 64, 32, 9, 270), (128, 16, 64, 3, 192), (512, 64, 16, 6, 64)] {
            let d = dl + dr
            let (cache, rows, slotBytes) = makeCache(dl: dl, dr: dr, bs: bs, blocks: blocks, rng: &rng)
            let table: [Int32] = (0..<Int32(blocks)).map { ($0 * 7 + 5) % Int32(blocks) }
            let stride = n + 3
            for g in [1, 2, 3, 5, 8, 9, 16] {
                let q = rng.floats(g * d, 2)
                // Softmax-like weights: one peak per head over a flat tail, a head of all zeros when g > 2.
                var w = [Float](repeating: 0, count: g * stride)
                for h in 0..<g where !(g > 2 && h == 1) {
                    for p in 0..<n { w[h * stride + p] = abs(rng.float()) / Float(n) }
                    w[h * stride + (h * 13) % n] += 0.5
                }
                var sRef = [Float](repeating: 0, count: g * stride), oRef = [Float](repeating: 0, count: g * dl)
                cache.withUnsafeBytes { raw in
                    ck_mla_q8_scores_ref(q, Int64(d), Int64(g), Int64(dl), Int64(dr), raw.baseAddress!, slotBytes, table,
                                         Int64(bs), Int64(n), 0.125, &sRef, Int64(stride))
                    ck_mla_q8_values_ref(w, Int64(stride), Int64(g), Int64(dl), Int64(dr), raw.baseAddress!, slotBytes,
                                         table, Int64(bs), Int64(n), &oRef, Int64(dl))
                }
                for (name, scores, values) in builds {
                    var s = [Float](repeating: 0, count: g * stride), o = [Float](repeating: 1, count: g * dl)
                    cache.withUnsafeBytes { raw in
                        scores(q, Int64(d), Int64(g), Int64(dl), Int64(dr), raw.baseAddress!, slotBytes, table, Int64(bs),
                               Int64(n), 0.125, &s, Int64(stride))
                        values(w, Int64(stride), Int64(g), Int64(dl), Int64(dr), raw.baseAddress!, slotBytes, table,
                               Int64(bs), Int64(n), &o, Int64(dl))
                    }
                    for h in 0..<g {
                        XCTAssertEqual(s[(h * stride)..<(h * stride + n)].map(\.bitPattern),
                                       sRef[(h * stride)..<(h * stride + n)].map(\.bitPattern), "\(name) scores dl=\(dl) n=\(n) g=\(g) h=\(h)")
                    }
                    XCTAssertEqual(o.map(\.bitPattern), oRef.map(\.bitPattern), "\(name) values dl=\(dl) n=\(n) g=\(g)")
                }
                // Against float arithmetic on the stored (unquantized) rows: scores within the query's and the
                // rows' rounding (half a step each of 127 per part), values within the weights' and rows' rounding.
                for h in 0..<g {
                    let qh = Array(q[(h * d)..<(h * d + d)])
                    let qLat = qh[0..<dl].map(abs).max()!, qRope = qh[dl...].map(abs).max()!
                    for p in Set([0, n / 2, n - 1]) {
                        let slot = Int(table[p / bs]) * bs + p % bs
                        let row = Array(rows[(slot * d)..<(slot * d + d)])
                        var exact = 0.0, bound = 0.0
                        for i in 0..<d {
                            exact += Double(qh[i]) * Double(row[i])
                            let rowStep = Double(i < dl ? row[(i / 64 * 64)..<min(i / 64 * 64 + 64, dl)].map(abs).max()! : row[dl...].map(abs).max()!) / 127
                            let qStep = Double(i < dl ? qLat : qRope) / 127
                            bound += 0.5 * (abs(Double(qh[i])) * rowStep + abs(Double(row[i])) * qStep) + 0.25 * rowStep * qStep
                        }
                        XCTAssertEqual(Double(sRef[h * stride + p]), exact * 0.125, accuracy: bound * 0.125 + 1e-5,
                                       "scores dl=\(dl) n=\(n) g=\(g) h=\(h) p=\(p)")
                    }
                    for i in Set([0, dl / 3, dl - 1]) {
                        var exact = 0.0, bound = 0.0
                        var wmax = [Double](repeating: 0, count: (n + 63) / 64)
                        for p in 0..<n {
                            let slot = Int(table[p / bs]) * bs + p % bs
                            let vs = Double(rows[(slot * d)..<(slot * d + dl)].map(abs).max()!) / 127
                            wmax[p / 64] = max(wmax[p / 64], Double(w[h * stride + p]) * vs)
                        }
                        for p in 0..<n {
                            let slot = Int(table[p / bs]) * bs + p % bs
                            let v = Double(rows[slot * d + i]), wp = Double(w[h * stride + p])
                            let vs = Double(rows[(slot * d)..<(slot * d + dl)].map(abs).max()!) / 127
                            exact += wp * v
                            // w·vs rounded to a step of wmax/255, v to a step of vs.
                            bound += 0.5 * wp * vs + 0.5 * wmax[p / 64] / 255 * 127 * (1 + 0.5 / 127) + 1e-7
                        }
                        XCTAssertEqual(Double(oRef[h * dl + i]), exact, accuracy: bound, "values dl=\(dl) n=\(n) g=\(g) h=\(h) i=\(i)")
                    }
                }
            }
        }
    }
}
