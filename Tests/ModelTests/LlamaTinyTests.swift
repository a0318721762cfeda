import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// End-to-end `llama` forward on the tiny random-weight fixture against HF and llama.cpp logits.
final class LlamaTinyTests: XCTestCase {
    func testF32MatchesHFLogitsAtEveryPosition() throws {
        let model = try LlamaTiny.load("f32")
        for (name, tokens) in try LlamaTiny.sequences() {
            let got = SequenceRunner(model: model).run(tokens)
            let want = try LlamaTiny.reference("hf_logits.s\(name).f32")
            XCTAssertEqual(got.count, want.count)
            var worst: Float = 0
            for t in 0..<want.count { worst = max(worst, maxAbsDiff(got[t], want[t])) }
            print("llama-tiny f32 s\(name): max |Δ| vs HF = \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-3, "s\(name)")
        }
    }

    func testF32HiddenStatesMatchHF() throws {
        let model = try LlamaTiny.load("f32")
        let tokens = try LlamaTiny.sequences()["9"]!
        let hp = model.hyperparameters
        var captured: [Int: [Float]] = [:]   // index into hf_hidden's outer dimension
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
        let ref = try Fixtures.floats(LlamaTiny.dir + "hf_hidden.s9.f32")
        let per = tokens.count * hp.embeddingLength
        XCTAssertEqual(ref.count, (hp.numLayers + 2) * per)
        for i in 0...(hp.numLayers + 1) {
            let got = try XCTUnwrap(captured[i], "no trace for hidden index \(i)")
            let d = maxAbsDiff(got, Array(ref[(i * per)..<((i + 1) * per)]))
            print("llama-tiny hidden[\(i)] max |Δ| = \(d)")
            XCTAssertLessThanOrEqual(d, 1e-4, "hidden index \(i)")
        }
    }

    func testPrefillDecodeChunksAndBatchingAgree() throws {
        let model = try LlamaTiny.load("f32", maxBatchTokens: 16)
        let seqs = try LlamaTiny.sequences()
        let tokens = seqs["40"]!, other = seqs["9"]!
        let runner = SequenceRunner(model: model, numBlocks: 128)
        let prefill = runner.run(tokens)                                   // (a) one prefill (chunked inside at 16)
        let oneByOne = runner.run(tokens, chunks: [1])                     // (b) token by token
        let chunked = runner.run(tokens, chunks: [7, 3, 13])               // (c) chunks
        // (d) batched with another sequence: both advance together, in mixed chunk sizes.
        let a = runner.newSequence(), b = runner.newSequence()
        var batched: [[Float]] = [], otherLogits: [[Float]] = []
        var ia = 0, ib = 0
        for sizes in [(5, 9), (1, 0), (10, 0), (24, 0)] {
            var parts: [(SequenceRunner.Sequence, [Int32])] = []
            let na = min(sizes.0, tokens.count - ia), nb = min(sizes.1, other.count - ib)
            if nb > 0 { parts.append((b, Array(other[ib..<(ib + nb)]))) }
            if na > 0 { parts.append((a, Array(tokens[ia..<(ia + na)]))) }
            let out = runner.step(parts)
            otherLogits += out.prefix(nb)
            batched += out.dropFirst(nb)
            ia += na; ib += nb
        }
        XCTAssertEqual(batched.count, tokens.count)
        let hf = try LlamaTiny.reference("hf_logits.s40.f32")
        for t in 0..<tokens.count {
            XCTAssertLessThanOrEqual(maxAbsDiff(prefill[t], oneByOne[t]), 1e-4, "decode, position \(t)")
            XCTAssertLessThanOrEqual(maxAbsDiff(prefill[t], chunked[t]), 1e-4, "chunks, position \(t)")
            XCTAssertLessThanOrEqual(maxAbsDiff(prefill[t], batched[t]), 1e-4, "batched, position \(t)")
            XCTAssertLessThanOrEqual(maxAbsDiff(prefill[t], hf[t]), 1e-3, "vs HF, position \(t)")
        }
        let hf9 = try LlamaTiny.reference("hf_logits.s9.f32")
        for t in 0..<other.count { XCTAssertLessThanOrEqual(maxAbsDiff(otherLogits[t], hf9[t]), 1e-3, "other, position \(t)") }
    }

    func testQuantizedFilesMatchLlamaCpp() throws {
        for (variant, tol) in [("q8_0", Float(0.2)), ("f16", Float(0.02))] {
            let model = try LlamaTiny.load(variant)
            for (name, tokens) in try LlamaTiny.sequences() {
                let got = SequenceRunner(model: model).run(tokens)
                let want = try LlamaTiny.reference("lcpp_logits.\(variant).s\(name).f32")
                var worst: Float = 0
                for t in 0..<want.count { worst = max(worst, maxAbsDiff(got[t], want[t])) }
                let hf = try LlamaTiny.reference("hf_logits.s\(name).f32")
                var vsHF: Float = 0
                for t in 0..<hf.count { vsHF = max(vsHF, maxAbsDiff(got[t], hf[t])) }
                print("llama-tiny \(variant) s\(name): max |Δ| vs llama.cpp = \(worst), vs HF f32 = \(vsHF)")
                XCTAssertLessThanOrEqual(worst, tol, "\(variant) s\(name)")
                // The quantized weights really are used: the run is off the float32 reference by their rounding.
                if name != "1" { XCTAssertGreaterThan(vsHF, 1e-4, "\(variant) s\(name) suspiciously equal to HF f32") }
            }
        }
    }

    func testFloatReferencePathMatchesLlamaCppDequantRuns() throws {
        for variant in ["q8_0", "f16"] {
            let gguf = try GGUFFile(path: Fixtures.path(LlamaTiny.dir + "llama-tiny.\(variant).gguf"))
            let model = try ModelLoader.load(gguf, options: ModelOptions(threads: 2, kvCacheType: .f32, floatReference: true))
            for (name, tokens) in try LlamaTiny.sequences() {
                let got = SequenceRunner(model: model).run(tokens)
                let want = try LlamaTiny.reference("lcpp_logits.\(variant).dequant.s\(name).f32")
                var worst: Float = 0
                for t in 0..<want.count { worst = max(worst, maxAbsDiff(got[t], want[t])) }
                print("llama-tiny \(variant) float reference s\(name): max |Δ| vs llama.cpp dequant = \(worst)")
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(variant) s\(name)")
            }
        }
    }

    func testF16KVCacheMatchesLlamaCppKVF16() throws {
        let model = try LlamaTiny.load("f32", kv: .f16)
        for (name, tokens) in try LlamaTiny.sequences() {
            let got = SequenceRunner(model: model).run(tokens)
            let want = try LlamaTiny.reference("lcpp_logits.f32.kvf16.s\(name).f32")
            var worst: Float = 0
            for t in 0..<want.count { worst = max(worst, maxAbsDiff(got[t], want[t])) }
            print("llama-tiny f32 weights, f16 KV s\(name): max |Δ| vs llama.cpp kvf16 = \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-3, "s\(name)")
        }
    }
}
