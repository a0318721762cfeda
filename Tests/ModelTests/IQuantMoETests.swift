import CKernels
import CQuantize
import Compute
import Foundation
import GGUF
import GGUFWriting
import Model
import TestSupport
import XCTest

/// The tiny DeepSeek-V3 MoE fixture whose routed experts are re-quantized to each i-quant type: the served path
/// (i-quant weights · q8_K activations) against the exact-dequantization reference (every weight of the same file
/// dequantized to F32 and run through the f32 kernels), and the float reference path on the i-quant file against it.
final class IQuantMoETests: XCTestCase {
    static let types: [GGMLType] = [.iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m]
    /// hidden size 256, so the rows of ffn_gate_exps / ffn_up_exps are whole 256-element blocks (ffn_down_exps rows
    /// have 32 elements and keep their type). The fixture's one GGUF is its Q4_K_M file: the experts' Q4_K values
    /// are dequantized and re-quantized.
    let fixture = MoEFixture(name: "deepseek-v3-tiny-k256")
    let source = "q4_k_m"

    /// Copies `src` to `path` with the routed experts' gate and up tensors quantized to `type`; with `dequantized`,
    /// every quantized tensor (those experts included, after their quantization to `type`) is written dequantized to
    /// F32 instead: the exact-dequant reference. Returns the number of expert tensors re-quantized.
    func rewrite(_ src: GGUFFile, to path: String, type: GGMLType, dequantized: Bool) throws -> Int {
        var w = GGUFWriter()
        for k in src.keys { w.add(k, src.metadata[k]!) }
        var count = 0
        for info in src.tensors {
            let elems = info.dimensions.reduce(1, *)
            let raw = src.data(for: info)
            var x = [Float](repeating: 0, count: elems)
            if info.type != .f32 { ck_dequantize_row(Int32(info.type.rawValue), raw, &x, Int64(elems)) }
            else { x = Array(UnsafeBufferPointer(start: raw.assumingMemoryBound(to: Float.self), count: elems)) }
            guard info.name.hasSuffix("ffn_gate_exps.weight") || info.name.hasSuffix("ffn_up_exps.weight") else {
                if dequantized { w.addTensor(name: info.name, dims: info.dimensions, floats: x) }
                else { w.addTensor(name: info.name, dims: info.dimensions, type: info.type,
                                   data: Array(UnsafeRawBufferPointer(start: raw, count: info.type.byteCount(elements: elems)))) }
                continue
            }
            count += 1
            let cols = info.dimensions[0], rows = elems / cols
            var q = [UInt8](repeating: 0, count: type.byteCount(elements: elems))
            let done = q.withUnsafeMutableBytes { ckq_quantize_rows(Int32(type.rawValue), x, $0.baseAddress!, Int64(rows), Int64(cols)) }
            XCTAssertEqual(Int(done), q.count, "\(info.name) \(type)")
            if dequantized {
                var f = [Float](repeating: 0, count: elems)
                q.withUnsafeBytes { ck_dequantize_row(Int32(type.rawValue), $0.baseAddress!, &f, Int64(elems)) }
                w.addTensor(name: info.name, dims: info.dimensions, floats: f)
            } else {
                w.addTensor(name: info.name, dims: info.dimensions, type: type, data: q)
            }
        }
        try w.write(to: path)
        return count
    }

    func load(_ path: String, floatReference: Bool = false) throws -> LanguageModel {
        try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: 2, kvCacheType: .f32, floatReference: floatReference))
    }

    /// llama.cpp's own gap between its run on the fixture's quantized file and on the dequantized copy (quantized
    /// activations against float32 ones): the median over positions of the per-position max |Δ|, and the argmax
    /// agreement.
    func llamaCppGap() throws -> (median: Float, agree: Double) {
        var per: [Float] = [], agree = 0
        for (seq, _) in try fixture.sequences() {
            let q = try fixture.reference("lcpp_logits.\(source).s\(seq).f32"), d = try fixture.reference("lcpp_logits.\(source).dequant.s\(seq).f32")
            for t in 0..<q.count {
                per.append(maxAbsDiff(q[t], d[t]))
                if argmax(q[t]) == argmax(d[t]) { agree += 1 }
            }
        }
        return (per.sorted()[per.count / 2], Double(agree) / Double(per.count))
    }

    /// Served path (i-quant experts, q8_K activations): median per-position max |Δ| to the exact-dequant reference
    /// within 1.5× llama.cpp's own quantized-vs-dequant gap on this fixture and argmax agreement no more than 5 points
    /// below llama.cpp's. Float reference path on the i-quant file: ≤ 1e-3 from the exact-dequant reference at every
    /// position (the same weights in float32 arithmetic).
    func testExpertsInEveryIQuantTypeMatchTheExactDequantReference() throws {
        let src = try GGUFFile(path: fixture.ggufPath(source))
        let gap = try llamaCppGap()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("iquant-moe-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let seqs = try fixture.sequences()
        for type in Self.types {
            let iqPath = dir.appendingPathComponent("\(type).gguf").path, refPath = dir.appendingPathComponent("\(type).deq.gguf").path
            let n = try rewrite(src, to: iqPath, type: type, dequantized: false)
            XCTAssertGreaterThan(n, 0)
            _ = try rewrite(src, to: refPath, type: type, dequantized: true)
            let served = try load(iqPath), floatPath = try load(iqPath, floatReference: true), reference = try load(refPath)
            var per: [Float] = [], worstFloat: Float = 0, agree = 0
            for (_, tokens) in seqs {
                let want = SequenceRunner(model: reference).run(tokens)
                let got = SequenceRunner(model: served).run(tokens)
                let flt = SequenceRunner(model: floatPath).run(tokens)
                for t in 0..<tokens.count {
                    per.append(maxAbsDiff(got[t], want[t]))
                    worstFloat = max(worstFloat, maxAbsDiff(flt[t], want[t]))
                    if argmax(got[t]) == argmax(want[t]) { agree += 1 }
                }
            }
            let median = per.sorted()[per.count / 2], agreement = Double(agree) / Double(per.count)
            print("\(type) experts (\(n) tensors): served median max |Δ| \(median) (llama.cpp's own gap \(gap.median)), "
                  + "worst \(per.max()!), argmax \(agree)/\(per.count) (llama.cpp \(gap.agree)); float path max |Δ| \(worstFloat)")
            XCTAssertLessThanOrEqual(worstFloat, 1e-3, "\(type): float reference path vs exact dequant")
            XCTAssertLessThanOrEqual(median, 1.5 * gap.median, "\(type): served path vs exact dequant")
            XCTAssertGreaterThanOrEqual(agreement, gap.agree - 0.05, "\(type): argmax agreement")
        }
    }
}
