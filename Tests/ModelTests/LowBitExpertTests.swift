import CQuantize
import Compute
import Foundation
import GGUF
import GGUFWriting
import Model
import TestSupport
import XCTest

/// The tiny DeepSeek-V3 MoE fixture (`moe/deepseek-v3-tiny-k256`, hidden 256: whole 256-blocks) with its routed
/// experts re-quantized to each low-bit type: the kernels (weights × q8_K / q8_0 activations) give logits within a
/// bound of the exact-dequantization reference (`floatReference`: the same quantized weights dequantized to f32,
/// f32 activations).
final class LowBitExpertTests: XCTestCase {
    static let fx = MoEFixture(name: "deepseek-v3-tiny-k256")

    /// A copy of the fixture's Q4_K_M file with every tensor dequantized to F32 except the `*_exps` ones, which are
    /// re-quantized to `type` (rows that are not whole blocks of it — the down projections: 32 columns — fall back
    /// to iq4_nl as llama.cpp's quantizer does for low-bit K-quants): the routed experts are then the only weights
    /// whose activations the kernels round. Returns the types written, by name.
    @discardableResult
    static func writeRequantized(of src: GGUFFile, type: GGMLType, to path: String) throws -> [String: GGMLType] {
        var w = GGUFWriter(alignment: src.alignment)
        for key in src.keys { w.add(key, src.metadata[key]!) }
        var types: [String: GGMLType] = [:]
        for info in src.tensors {
            let cols = info.dimensions[0], rows = info.elementCount / cols
            let stored = WeightMatrix(type: try XCTUnwrap(WeightType(rawValue: Int32(info.type.rawValue))),
                                      data: src.data(for: info), rows: rows, cols: cols)
            var floats = [Float](repeating: 0, count: info.elementCount)
            floats.withUnsafeMutableBufferPointer { f in
                for r in 0..<rows { stored.dequantizeRow(r, into: f.baseAddress! + r * cols) }
            }
            guard info.name.contains("_exps.") else {
                w.addTensor(name: info.name, dims: info.dimensions, floats: floats)
                continue
            }
            let t: GGMLType = cols % type.blockSize == 0 ? type : .iq4_nl
            var bytes = [UInt8](repeating: 0, count: t.byteCount(elements: info.elementCount))
            let n = bytes.withUnsafeMutableBytes {
                ckq_quantize_rows(Int32(t.rawValue), floats, $0.baseAddress!, Int64(rows), Int64(cols))
            }
            precondition(n == bytes.count, "quantizing \(info.name) to \(t)")
            w.addTensor(name: info.name, dims: info.dimensions, type: t, data: bytes)
            types[info.name] = t
        }
        try w.write(to: path)
        return types
    }

    func testRoutedExpertsInEachLowBitTypeMatchExactDequantReference() throws {
        let src = try GGUFFile(path: Self.fx.ggufPath("q4_k_m"))
        // Q4_K experts first: the same check on the established K-quant kernels sets the scale of the activation
        // rounding's effect on these logits.
        var control: Float = 0
        for type in [GGMLType.q4_K, .q2_K, .q3_K, .iq4_nl, .iq4_xs] {
            let path = NSTemporaryDirectory() + "sputnik-lowbit-\(type)-\(getpid()).gguf"
            defer { try? FileManager.default.removeItem(atPath: path) }
            let written = try Self.writeRequantized(of: src, type: type, to: path)
            XCTAssertTrue(written.values.contains(type), "\(type): no tensor written in the type")
            let file = try GGUFFile(path: path)
            let kernels = try ModelLoader.load(file, options: ModelOptions(threads: 2, kvCacheType: .f32))
            let exact = try ModelLoader.load(file, options: ModelOptions(threads: 2, kvCacheType: .f32, floatReference: true))
            var worst: Float = 0, agree = 0, total = 0
            for (_, tokens) in try Self.fx.sequences() {
                let got = SequenceRunner(model: kernels).run(tokens)
                let want = SequenceRunner(model: exact).run(tokens)
                for t in 0..<tokens.count {
                    XCTAssertTrue(got[t].allSatisfy(\.isFinite), "\(type): non-finite logits")
                    worst = max(worst, maxAbsDiff(got[t], want[t]))
                    if argmax(got[t]) == argmax(want[t]) { agree += 1 }
                    total += 1
                }
            }
            print("deepseek-v3-tiny-k256 experts \(type): kernels vs exact dequant max |Δ| = \(worst), argmax \(agree)/\(total)")
            // The activation rounding of the expert matmuls (q8_K / q8_0) is the only difference between the runs.
            if type == .q4_K { control = worst }
            XCTAssertLessThanOrEqual(worst, 0.15, "\(type): kernels vs exact dequantization")
            XCTAssertLessThanOrEqual(worst, 3 * control, "\(type): kernels vs exact dequantization, against Q4_K's")
            XCTAssertGreaterThanOrEqual(Double(agree), 0.95 * Double(total), "\(type): argmax agreement")
        }
    }
}
