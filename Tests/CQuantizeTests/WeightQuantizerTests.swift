import CQuantize
import Foundation
import GGUF
import TestSupport
import XCTest

/// The synthetic-model weight quantizers (CQuantize/quantize_weights.c): round-trip error bounds, agreement with
/// an independent dequantizer written here from the documented block layouts (ggml-common.h), and byte-exact
/// agreement with blocks llama.cpp's `llama_model_quantize` wrote into the fixture GGUFs.
final class WeightQuantizerTests: XCTestCase {
    // MARK: independent dequantizer (written from the format description, not from quantize_weights.c)

    private func half(_ p: UnsafeRawPointer, _ off: Int) -> Float {
        Float(Float16(bitPattern: UInt16(p.load(fromByteOffset: off, as: UInt8.self))
                      | UInt16(p.load(fromByteOffset: off + 1, as: UInt8.self)) << 8))
    }

    /// Dequantizes `n` elements of `type` at `p`.
    private func dequant(_ type: GGMLType, _ p: UnsafeRawPointer, _ n: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: n)
        func u8(_ o: Int) -> Int { Int(p.load(fromByteOffset: o, as: UInt8.self)) }
        func i8(_ o: Int) -> Int { Int(p.load(fromByteOffset: o, as: Int8.self)) }
        switch type {
        case .q8_0:                                    // d f16 | 32 × int8
            for b in 0..<(n / 32) {
                let o = b * 34, d = half(p, o)
                for i in 0..<32 { y[b * 32 + i] = d * Float(i8(o + 2 + i)) }
            }
        case .q5_0:                                    // d f16 | qh u32 (bit i = bit 4 of element i) | 16 nibble bytes
            for b in 0..<(n / 32) {
                let o = b * 22, d = half(p, o)
                let qh = (0..<4).reduce(0) { $0 | u8(o + 2 + $1) << (8 * $1) }
                for i in 0..<32 {
                    let byte = u8(o + 6 + i % 16), low = i < 16 ? byte & 15 : byte >> 4
                    y[b * 32 + i] = d * Float((low | ((qh >> i) & 1) << 4) - 16)
                }
            }
        case .q4_K:                                    // d, dmin f16 | 12 scale bytes | 128 nibble bytes
            for b in 0..<(n / 256) {
                let o = b * 144, d = half(p, o), dmin = half(p, o + 2), s = o + 4
                for j in 0..<8 {
                    let sc = j < 4 ? u8(s + j) & 63 : (u8(s + j + 4) & 15) | (u8(s + j - 4) >> 6) << 4
                    let m = j < 4 ? u8(s + j + 4) & 63 : (u8(s + j + 4) >> 4) | (u8(s + j) >> 6) << 4
                    for l in 0..<32 {
                        let byte = u8(o + 16 + 32 * (j / 2) + l), q = j % 2 == 0 ? byte & 15 : byte >> 4
                        y[b * 256 + 32 * j + l] = d * Float(sc) * Float(q) - dmin * Float(m)
                    }
                }
            }
        case .q6_K:                                    // ql[128] | qh[64] | scales int8[16] | d f16
            for b in 0..<(n / 256) {
                let o = b * 210, d = half(p, o + 208)
                for e in 0..<256 {
                    let h = e / 128, r = e % 128, quarter = r / 32, l = r % 32
                    let qlByte = u8(o + 64 * h + l + (quarter % 2) * 32)
                    let low = quarter < 2 ? qlByte & 15 : qlByte >> 4
                    let high = (u8(o + 128 + 32 * h + l) >> (2 * quarter)) & 3
                    let sc = i8(o + 192 + 8 * h + l / 16 + 2 * quarter)
                    y[b * 256 + e] = d * Float(sc) * Float((low | high << 4) - 32)
                }
            }
        default:
            XCTFail("no test dequantizer for \(type)")
        }
        return y
    }

    private func quantize(_ type: GGMLType, _ x: [Float], rows: Int) -> [UInt8] {
        let cols = x.count / rows
        var out = [UInt8](repeating: 0, count: rows * type.byteCount(elements: cols))
        let n = out.withUnsafeMutableBytes { ckq_quantize_rows(Int32(type.rawValue), x, $0.baseAddress!, Int64(rows), Int64(cols)) }
        XCTAssertEqual(n, Int64(out.count))
        return out
    }

    private func normals(_ n: Int, stream: UInt64) -> [Float] {
        var x = [Float](repeating: 0, count: n)
        ckq_fill_normal(7, stream, 0, 1, &x, Int64(n))
        return x
    }

    // MARK: tests

    func testNormalGeneratorMoments() {
        let x = normals(1 << 20, stream: 3)
        let mean = x.reduce(0, +) / Float(x.count)
        let varc = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(x.count)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(varc, 1, accuracy: 0.01)
        XCTAssertLessThanOrEqual(x.map(abs).max()!, 3.47)
        XCTAssertEqual(normals(64, stream: 3), Array(x.prefix(64)), "same (seed, stream) must repeat")
        XCTAssertNotEqual(normals(64, stream: 4), Array(x.prefix(64)))
    }

    func testRoundTripErrorBoundsAndLayoutAgreement() {
        // relative RMS error bounds for N(0,1) rows: about step/√12 of each format (amax/127, amax/32 over 16
        // values, amax/16, range/15 with the scale search); the lower bounds catch a quantizer that stores floats
        let bounds: [(GGMLType, ClosedRange<Double>)] = [(.q8_0, 0.003...0.006), (.q6_K, 0.012...0.021),
                                                          (.q5_0, 0.028...0.05), (.q4_K, 0.05...0.085)]
        let rows = 8, cols = 4096
        let x = normals(rows * cols, stream: 11)
        for (type, bound) in bounds {
            let q = quantize(type, x, rows: rows)
            let y = q.withUnsafeBytes { dequant(type, $0.baseAddress!, x.count) }
            var c = [Float](repeating: 0, count: x.count)
            XCTAssertEqual(q.withUnsafeBytes { ckq_dequantize_row(Int32(type.rawValue), $0.baseAddress!, &c, Int64(x.count)) }, 0)
            XCTAssertEqual(c, y, "\(type): C dequantizer disagrees with the independent one")
            let err = zip(x, y).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
            let ref = x.reduce(0.0) { $0 + Double($1 * $1) }
            let rel = (err / ref).squareRoot()
            XCTAssertTrue(bound.contains(rel), "\(type): relative RMS error \(rel) outside \(bound)")
            print(String(format: "%@ relative RMS error %.4f", type.description, rel))
        }
    }

    func testBlockEdgeCases() {
        // all-zero rows quantize to zero; a single spike is kept to within the format's step
        for type in [GGMLType.q8_0, .q5_0, .q4_K, .q6_K] {
            let zeros = [Float](repeating: 0, count: 256)
            XCTAssertEqual(quantize(type, zeros, rows: 1).withUnsafeBytes { dequant(type, $0.baseAddress!, 256) }, zeros)
            var spike = zeros
            spike[37] = -3.5
            let y = quantize(type, spike, rows: 1).withUnsafeBytes { dequant(type, $0.baseAddress!, 256) }
            XCTAssertEqual(y[37], -3.5, accuracy: 0.01, "\(type)")
            XCTAssertEqual(y.enumerated().filter { $0.offset != 37 }.map { abs($0.element) }.max()!, 0, accuracy: 0.01, "\(type)")
        }
    }

    /// Quantizes the HF float embeddings of the s9 tokens and compares the bytes with the rows llama.cpp wrote.
    private func checkAgainstLlamaCpp(model: String, file: String, type: GGMLType, hidden: Int) throws {
        let dir = "moe/\(model)/"
        let gguf = try GGUFFile(path: Fixtures.path(dir + file))
        let info = try XCTUnwrap(gguf.tensorInfo(named: "token_embd.weight"))
        XCTAssertEqual(info.type, type)
        let emb = try Fixtures.floats(dir + "hf_hidden.s9.f32")          // [layers + 2, 9, hidden], index 0 = embeddings
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path(dir + "manifest.json")))) as! [String: Any]
        let ids = ((manifest["sequences"] as! [String: Any])["9"] as! [Int])
        let rowBytes = type.byteCount(elements: hidden)
        var checked = 0
        for (t, id) in ids.enumerated() {
            let x = Array(emb[(t * hidden)..<((t + 1) * hidden)])
            let mine = quantize(type, x, rows: 1)
            let theirs = [UInt8](UnsafeRawBufferPointer(start: gguf.data(for: info) + id * rowBytes, count: rowBytes))
            XCTAssertEqual(mine, theirs, "\(model) \(type): token \(id) row differs from llama.cpp's")
            checked += 1
        }
        XCTAssertEqual(checked, 9)
    }

    func testQ4KMatchesLlamaCppBytes() throws {
        try checkAgainstLlamaCpp(model: "deepseek-v3-tiny-k256", file: "deepseek-v3-tiny-k256.q4_k_m.gguf", type: .q4_K, hidden: 256)
    }

    func testQ8_0MatchesLlamaCppBytes() throws {
        try checkAgainstLlamaCpp(model: "deepseek-v3-tiny", file: "deepseek-v3-tiny.q8_0.gguf", type: .q8_0, hidden: 64)
    }

    func testQ5_0MatchesLlamaCppBytes() throws {
        try checkAgainstLlamaCpp(model: "deepseek-v3-tiny", file: "deepseek-v3-tiny.q4_k_m.gguf", type: .q5_0, hidden: 64)
    }

    /// llama.cpp's Q6_K `output.weight` rows, dequantized by the independent dequantizer, requantize with ours to
    /// values within a small fraction of a quantization step (a wrong sub-block/scale layout would not).
    func testQ6KRequantizesLlamaCppBlocks() throws {
        let gguf = try GGUFFile(path: Fixtures.path("moe/deepseek-v3-tiny-k256/deepseek-v3-tiny-k256.q4_k_m.gguf"))
        let info = try XCTUnwrap(gguf.tensorInfo(named: "output.weight"))
        XCTAssertEqual(info.type, .q6_K)
        let rows = info.dimensions[1], cols = info.dimensions[0]
        let x = dequant(.q6_K, gguf.data(for: info), rows * cols)
        let y = quantize(.q6_K, x, rows: rows).withUnsafeBytes { dequant(.q6_K, $0.baseAddress!, x.count) }
        let err = zip(x, y).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
        let ref = x.reduce(0.0) { $0 + Double($1 * $1) }
        XCTAssertLessThan((err / ref).squareRoot(), 0.002, "requantized llama.cpp Q6_K drifts")
        let std = (ref / Double(x.count)).squareRoot()
        XCTAssertEqual(std, 0.1, accuracy: 0.02, "initializer_range 0.1 weights expected")
    }
}
