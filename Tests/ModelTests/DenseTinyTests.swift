import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// A tiny random-weight dense fixture under `Tests/Fixtures/dense/<name>/` (see the README there).
struct TinyFixture {
    let name: String
    var dir: String { "dense/\(name)/" }
    let vocab = 512

    func sequences() throws -> [String: [Int32]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(dir + "manifest.json")))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["sequences"] as! [String: [Int]]).mapValues { $0.map(Int32.init) }
    }

    func load(_ variant: String, kv: KVCacheType = .f32, floatReference: Bool = false) throws -> LanguageModel {
        let gguf = try GGUFFile(path: Fixtures.path(dir + "\(name).\(variant).gguf"))
        return try ModelLoader.load(gguf, options: ModelOptions(threads: 2, kvCacheType: kv, floatReference: floatReference))
    }

    /// Reference logits `[T][vocab]`.
    func reference(_ file: String) throws -> [[Float]] {
        let flat = try Fixtures.floats(dir + file)
        return stride(from: 0, to: flat.count, by: vocab).map { Array(flat[$0..<($0 + vocab)]) }
    }

    /// max |Δ| over all positions of all sequences between `model` and the reference files `prefix.s<N>.f32`.
    func worst(_ model: LanguageModel, against prefix: String) throws -> Float {
        var worst: Float = 0
        for (name, tokens) in try sequences() {
            let got = SequenceRunner(model: model).run(tokens)
            let want = try reference("\(prefix).s\(name).f32")
            precondition(got.count == want.count)
            for t in 0..<want.count { worst = max(worst, maxAbsDiff(got[t], want[t])) }
        }
        return worst
    }
}

/// `qwen2` forward on the tiny random-weight fixture (q/k/v biases, NEOX RoPE, untied output) against HF and
/// llama.cpp logits, plus the llama-tiny Q4_K_M file (Q5_0 blocks).
final class DenseTinyTests: XCTestCase {
    let qwen = TinyFixture(name: "qwen2-tiny")

    func testQwen2F32MatchesHF() throws {
        let model = try qwen.load("f32")
        XCTAssertEqual(model.hyperparameters.architecture, "qwen2")
        let d = try qwen.worst(model, against: "hf_logits")
        print("qwen2-tiny f32 (F32 KV): max |Δ| vs HF = \(d)")
        XCTAssertLessThanOrEqual(d, 1e-3)
    }

    func testQwen2HiddenStatesMatchHF() throws {
        let model = try qwen.load("f32")
        let tokens = try qwen.sequences()["9"]!
        let hp = model.hyperparameters
        var captured: [Int: [Float]] = [:]
        model.trace = { name, layer, data, _ in
            switch name {
            case "embeddings": captured[0] = Array(data)
            case "layer_output": captured[layer + 1] = Array(data)
            case "output_norm": captured[hp.numLayers + 1] = Array(data)
            default: break
            }
        }
        _ = SequenceRunner(model: model).run(tokens)
        model.trace = nil
        let ref = try Fixtures.floats(qwen.dir + "hf_hidden.s9.f32")
        let per = tokens.count * hp.embeddingLength
        for i in 0...(hp.numLayers + 1) {
            let got = try XCTUnwrap(captured[i], "no trace for hidden index \(i)")
            let d = maxAbsDiff(got, Array(ref[(i * per)..<((i + 1) * per)]))
            XCTAssertLessThanOrEqual(d, 1e-4, "hidden index \(i)")
        }
    }

    func testQwen2F16KVCacheMatchesLlamaCpp() throws {
        let d = try qwen.worst(try qwen.load("f32", kv: .f16), against: "lcpp_logits.f32.kvf16")
        print("qwen2-tiny f32 weights, F16 KV: max |Δ| vs llama.cpp kvf16 = \(d)")
        XCTAssertLessThanOrEqual(d, 1e-3)
    }

    func testQwen2QuantizedFilesMatchLlamaCpp() throws {
        for (variant, tol) in [("f16", Float(0.02)), ("q8_0", Float(0.2)), ("q4_k_m", Float(0.3))] {
            let model = try qwen.load(variant)
            let d = try qwen.worst(model, against: "lcpp_logits.\(variant)")
            let vsHF = try qwen.worst(model, against: "hf_logits")
            print("qwen2-tiny \(variant): max |Δ| vs llama.cpp same file = \(d), vs HF f32 = \(vsHF)")
            XCTAssertLessThanOrEqual(d, tol, variant)
            XCTAssertGreaterThan(vsHF, 1e-4, "\(variant): the quantized weights should move the logits off HF f32")
        }
    }

    /// Float32 on dequantized weights vs llama.cpp on a dequantized copy of the same file (same weights bit for bit).
    func testQwen2FloatReferenceMatchesLlamaCppDequant() throws {
        for variant in ["f16", "q8_0", "q4_k_m"] {
            let d = try qwen.worst(try qwen.load(variant, floatReference: true), against: "lcpp_logits.\(variant).dequant")
            print("qwen2-tiny \(variant) float reference: max |Δ| vs llama.cpp dequant = \(d)")
            XCTAssertLessThanOrEqual(d, 1e-4, variant)
        }
    }

    func testLlamaTinyQ4KMMatchesLlamaCpp() throws {
        let llama = TinyFixture(name: "llama-tiny")
        let d = try llama.worst(try llama.load("q4_k_m"), against: "lcpp_logits.q4_k_m")
        print("llama-tiny q4_k_m: max |Δ| vs llama.cpp same file = \(d)")
        XCTAssertLessThanOrEqual(d, 0.3)
        let f = try llama.worst(try llama.load("q4_k_m", floatReference: true), against: "lcpp_logits.q4_k_m.dequant")
        print("llama-tiny q4_k_m float reference: max |Δ| vs llama.cpp dequant = \(f)")
        XCTAssertLessThanOrEqual(f, 1e-4)
    }

    func testQwen2ChunkedDecodeMatchesPrefill() throws {
        let model = try qwen.load("q8_0")
        let tokens = try qwen.sequences()["40"]!
        let runner = SequenceRunner(model: model, numBlocks: 64)
        let prefill = runner.run(tokens)
        let steps = runner.run(tokens, chunks: [5, 1, 1, 11])
        for t in 0..<tokens.count { XCTAssertLessThanOrEqual(maxAbsDiff(prefill[t], steps[t]), 1e-4, "position \(t)") }
    }
}

/// The function behind `sputnik logits`: every position's logits of one sequence, and top-K.
final class SequenceLogitsTests: XCTestCase {
    func testAllPositionsMatchHFAndTopK() throws {
        let fx = TinyFixture(name: "qwen2-tiny")
        let model = try fx.load("f32")
        let tokens = try fx.sequences()["40"]!
        let got = SequenceLogits.compute(model: model, tokens: tokens, blockSize: 4)
        let want = try fx.reference("hf_logits.s40.f32")
        XCTAssertEqual(got.count, tokens.count * fx.vocab)
        for t in 0..<tokens.count {
            XCTAssertLessThanOrEqual(maxAbsDiff(Array(got[(t * fx.vocab)..<((t + 1) * fx.vocab)]), want[t]), 1e-3, "position \(t)")
        }
        let row = got[(5 * fx.vocab)..<(6 * fx.vocab)]
        let top = SequenceLogits.top(row, k: 3)
        XCTAssertEqual(top.map(\.id).first, argmax(want[5]))
        XCTAssertEqual(top.count, 3)
        XCTAssertGreaterThanOrEqual(top[0].logit, top[1].logit)
        XCTAssertGreaterThanOrEqual(top[1].logit, top[2].logit)
        XCTAssertEqual(SequenceLogits.top([1, 3, 3, 2], k: 2).map(\.id), [1, 2])
    }
}
