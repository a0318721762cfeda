import Compute
import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// One tiny MoE fixture model under `Tests/Fixtures/moe/<name>/` and the checks every MoE family runs on it.
struct MoEFixture {
    let name: String
    var dir: String { "moe/\(name)/" }
    let vocab = 512

    var manifest: [String: Any] {
        get throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(dir + "manifest.json")))
            return try JSONSerialization.jsonObject(with: data) as! [String: Any]
        }
    }

    /// Sequence name ("1", "9", "40") → token ids.
    func sequences() throws -> [(String, [Int32])] {
        let seqs = try manifest["sequences"] as! [String: [Int]]
        return seqs.map { ($0.key, $0.value.map(Int32.init)) }.sorted { $0.1.count < $1.1.count }
    }

    func sequence(_ name: String) throws -> [Int32] { try sequences().first { $0.0 == name }!.1 }

    func ggufPath(_ variant: String) -> String { Fixtures.path(dir + "\(name).\(variant).gguf") }

    func load(_ variant: String, kv: KVCacheType = .f32, maxBatchTokens: Int = 512, floatReference: Bool = false) throws -> LanguageModel {
        let gguf = try GGUFFile(path: ggufPath(variant))
        return try ModelLoader.load(gguf, options: ModelOptions(threads: 2, kvCacheType: kv, maxBatchTokens: maxBatchTokens,
                                                                floatReference: floatReference))
    }

    /// Reference logits `[T][vocab]` from a fixture file.
    func reference(_ file: String) throws -> [[Float]] {
        let flat = try Fixtures.floats(dir + file)
        return stride(from: 0, to: flat.count, by: vocab).map { Array(flat[$0..<($0 + vocab)]) }
    }

    /// Per sequence: HF routing entries (`module`, `topk_ids`, `topk_weights`, `margin`, `router_logits`).
    func routing(_ seq: String) throws -> [[String: Any]] {
        let r = try manifest["hf_routing"] as! [String: Any]
        return r["s" + seq] as! [[String: Any]]
    }

    /// Per position of a sequence: the smallest HF routing margin over the MoE layers.
    func minMargins(_ seq: String) throws -> [Double] {
        let layers = try routing(seq)
        let n = (layers.first?["margin"] as? [Double])?.count ?? 0
        return (0..<n).map { t in layers.map { ($0["margin"] as! [Double])[t] }.min() ?? 1 }
    }

    // MARK: checks

    /// F32 GGUF, F32 KV cache vs HF logits at every position of every sequence; returns the worst max |Δ|.
    @discardableResult
    func checkF32VersusHF(_ model: LanguageModel, tolerance: Float = 1e-3, file: StaticString = #filePath,
                          line: UInt = #line) throws -> Float {
        var overall: Float = 0
        for (seq, tokens) in try sequences() {
            let got = SequenceRunner(model: model).run(tokens)
            let want = try reference("hf_logits.s\(seq).f32")
            XCTAssertEqual(got.count, want.count, file: file, line: line)
            var worst: Float = 0
            for t in 0..<want.count {
                worst = max(worst, maxAbsDiff(got[t], want[t]))
            }
            print("\(name) f32 s\(seq): max |Δ| vs HF = \(worst)")
            XCTAssertLessThanOrEqual(worst, tolerance, "\(name) s\(seq)", file: file, line: line)
            overall = max(overall, worst)
        }
        return overall
    }

    /// Per-layer hidden states of s9 vs `hf_hidden.s9.f32` (`[layers + 2, 9, embd]`).
    func checkHiddenStates(_ model: LanguageModel, tolerance: Float = 1e-4, file: StaticString = #filePath,
                           line: UInt = #line) throws {
        let tokens = try sequence("9")
        let hp = model.hyperparameters
        let captured = SequenceRunner(model: model).hiddenStates(tokens)   // index into hf_hidden's outer dimension
        let ref = try Fixtures.floats(dir + "hf_hidden.s9.f32")
        let per = tokens.count * hp.embeddingLength
        XCTAssertEqual(ref.count, (hp.numLayers + 2) * per, file: file, line: line)
        for i in 0...(hp.numLayers + 1) {
            let got = try XCTUnwrap(captured[i], "no trace for hidden index \(i)", file: file, line: line)
            let d = maxAbsDiff(got, Array(ref[(i * per)..<((i + 1) * per)]))
            print("\(name) hidden[\(i)] max |Δ| = \(d)")
            XCTAssertLessThanOrEqual(d, tolerance, "\(name) hidden index \(i)", file: file, line: line)
        }
    }

    /// The forward's routing (traced) equals HF's chosen sets at every position of every sequence, weights within
    /// 1e-5, except where HF's margin is below 1e-5.
    func checkForwardRouting(_ model: LanguageModel, file: StaticString = #filePath, line: UInt = #line) throws {
        for (seq, tokens) in try sequences() {
            var ids: [Int: [Float]] = [:], weights: [Int: [Float]] = [:]
            var k = 0
            model.trace = { name, layer, data, shape in
                if name == "moe_topk_ids" { ids[layer, default: []] += Array(data); k = shape[1] }
                if name == "moe_topk_weights" { weights[layer, default: []] += Array(data) }
            }
            let counts = try XCTUnwrap(model.expertTokenCounts, "a MoE model counts routed tokens", file: file, line: line)
            let before = (0..<counts.numLayers).map { l in (0..<counts.numExperts).map { counts.count(layer: l, expert: $0) } }
            _ = SequenceRunner(model: model).run(tokens)
            model.trace = nil
            // The /metrics counters moved by exactly the traced routing.
            for l in 0..<counts.numLayers {
                var want = [Int](repeating: 0, count: counts.numExperts)
                for e in ids[l] ?? [] { want[Int(e)] += 1 }
                let got = (0..<counts.numExperts).map { counts.count(layer: l, expert: $0) - before[l][$0] }
                XCTAssertEqual(got, want, "\(name) s\(seq) layer \(l) expert counts", file: file, line: line)
            }
            let hf = try routing(seq)
            XCTAssertEqual(ids.count, hf.count, "MoE layers traced", file: file, line: line)
            var checked = 0
            for entry in hf {
                let module = entry["module"] as! String
                let layer = Int(module.split(separator: ".")[2])!
                let wantIds = entry["topk_ids"] as! [[Int]], wantW = entry["topk_weights"] as! [[Double]]
                let margin = entry["margin"] as! [Double]
                let gotIds = try XCTUnwrap(ids[layer], file: file, line: line), gotW = weights[layer]!
                for t in 0..<tokens.count where margin[t] >= 1e-5 {
                    let got = (0..<k).map { Int(gotIds[t * k + $0]) }
                    XCTAssertEqual(Set(got), Set(wantIds[t]), "\(name) s\(seq) layer \(layer) position \(t)", file: file, line: line)
                    for (j, e) in got.enumerated() {
                        guard let hfj = wantIds[t].firstIndex(of: e) else { continue }
                        XCTAssertEqual(Double(gotW[t * k + j]), wantW[t][hfj], accuracy: 1e-5,
                                       "\(name) s\(seq) layer \(layer) position \(t) expert \(e)", file: file, line: line)
                    }
                    checked += 1
                }
            }
            XCTAssertGreaterThan(checked, 0, file: file, line: line)
        }
    }

    /// One prefill vs token-by-token vs chunks vs batched with another sequence vs the forced per-token and grouped
    /// MoE paths: all within 1e-4 of each other.
    func checkExecutionPathsAgree(variant: String = "f32", file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try load(variant, maxBatchTokens: 16)
        let tokens = try sequence("40"), other = try sequence("9")
        let runner = SequenceRunner(model: model, numBlocks: 160)
        let prefill = runner.run(tokens)
        let oneByOne = runner.run(tokens, chunks: [1])
        let chunked = runner.run(tokens, chunks: [7, 3, 13])
        let (batched, otherLogits) = runner.runBatched(tokens, with: other)
        var paths: [MoEExecution: [[Float]]] = [:]
        let moe = try XCTUnwrap(model as? DecoderModel, file: file, line: line)
        for path in [MoEExecution.perToken, .grouped] {
            moe.moeExecution = path
            paths[path] = runner.run(tokens)
        }
        moe.moeExecution = .automatic
        var worst: Float = 0
        for t in 0..<tokens.count {
            let diffs = [maxAbsDiff(prefill[t], oneByOne[t]), maxAbsDiff(prefill[t], chunked[t]), maxAbsDiff(prefill[t], batched[t])]
                + paths.values.map { maxAbsDiff(prefill[t], $0[t]) }
            worst = max(worst, diffs.max()!)
        }
        let ref9 = try reference("hf_logits.s9.f32")
        for t in 0..<other.count { XCTAssertLessThanOrEqual(maxAbsDiff(otherLogits[t], ref9[t]), 1e-3, "other sequence", file: file, line: line) }
        print("\(name) \(variant): prefill vs decode/chunks/batched/per-token/grouped max |Δ| = \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-4, "\(name) execution paths", file: file, line: line)
    }

    /// Decoding a quantized file one token at a time through the fused expert jobs (`FusedExperts`) gives the
    /// logits of one matmul per expert, and the fused path does run.
    func checkFusedDecodeAgrees(variant: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try load(variant, maxBatchTokens: 16)
        let moe = try XCTUnwrap(model as? DecoderModel, file: file, line: line)
        let tokens = try sequence("40")
        let runner = SequenceRunner(model: model, numBlocks: 160)
        moe.moeFusedDecode = false
        let plain = runner.run(tokens, chunks: [1])
        XCTAssertEqual(moe.moeFusedSteps, 0, file: file, line: line)
        moe.moeFusedDecode = true
        let fused = runner.run(tokens, chunks: [1])
        XCTAssertGreaterThanOrEqual(moe.moeFusedSteps, tokens.count, "\(name) \(variant): fused path not taken", file: file, line: line)
        let worst = (0..<tokens.count).map { maxAbsDiff(plain[$0], fused[$0]) }.max()!
        print("\(name) \(variant): fused vs per-expert decode max |Δ| = \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-5, "\(name) \(variant) fused decode", file: file, line: line)
        // Several tokens per step (prefill chunks, and two sequences batched): one fused step for all of them, each
        // distinct expert read once against the tokens that chose it. It must equal the per-expert path on the same
        // steps; against one token at a time, matrices that see four or more tokens run the GEMM kernels (other
        // rounding of the per-block terms) in both paths, hence the looser bound there.
        let perRun = moe.moeFusedSteps                           // tokens × MoE layers, from the one-token run
        let chunked = runner.run(tokens, chunks: [16, 7, 3, 14])
        XCTAssertEqual(moe.moeFusedSteps - perRun, perRun,
                       "\(name) \(variant): multi-token steps did not take the fused path", file: file, line: line)
        let (batched, _) = runner.runBatched(tokens, with: try sequence("9"))
        moe.moeFusedDecode = false
        let plainChunked = runner.run(tokens, chunks: [16, 7, 3, 14])
        let (plainBatched, _) = runner.runBatched(tokens, with: try sequence("9"))
        moe.moeFusedDecode = true
        var worstMulti: Float = 0, worstSame: Float = 0
        for t in 0..<tokens.count {
            worstMulti = max(worstMulti, maxAbsDiff(plain[t], chunked[t]), maxAbsDiff(plain[t], batched[t]))
            worstSame = max(worstSame, maxAbsDiff(plainChunked[t], chunked[t]), maxAbsDiff(plainBatched[t], batched[t]))
        }
        print("\(name) \(variant): fused multi-token steps vs per-expert: same steps max |Δ| = \(worstSame), vs one token at a time \(worstMulti)")
        XCTAssertLessThanOrEqual(worstSame, 1e-5, "\(name) \(variant) fused vs per-expert multi-token steps", file: file, line: line)
        XCTAssertLessThanOrEqual(worstMulti, 0.05, "\(name) \(variant) multi-token vs one-token steps", file: file, line: line)
    }

    /// A file vs llama.cpp's logits `lcpp_logits.<reference>.*`: max |Δ| over positions whose smallest HF routing
    /// margin is ≥ `minMargin` (near-tie positions flip experts under any rounding difference), the number of
    /// positions so skipped, and the argmax agreement fraction over all positions.
    func compareWithLlamaCpp(_ variant: String, reference ref: String? = nil, minMargin: Double = 0,
                             floatReference: Bool = false) throws -> (maxAbs: Float, skipped: Int, agree: Double, total: Int) {
        let model = try load(variant, floatReference: floatReference)
        let ref = ref ?? variant
        var worst: Float = 0, agree = 0, total = 0, skipped = 0
        for (seq, tokens) in try sequences() {
            let got = SequenceRunner(model: model).run(tokens)
            let want = try reference("lcpp_logits.\(ref).s\(seq).f32")
            let margins = try minMargins(seq)
            var w: Float = 0, a = 0
            for t in 0..<want.count {
                if margins[t] >= minMargin { w = max(w, maxAbsDiff(got[t], want[t])) } else { skipped += 1 }
                if argmax(got[t]) == argmax(want[t]) { a += 1 }
            }
            print("\(name) \(variant) s\(seq): max |Δ| vs llama.cpp \(ref) = \(w), argmax \(a)/\(want.count)")
            worst = max(worst, w)
            agree += a
            total += want.count
        }
        return (worst, skipped, Double(agree) / Double(total), total)
    }

    /// F16 file. (1) ≤ `tolerance` vs llama.cpp's F16 run (Sputnik rounds activations to f16 like llama.cpp, see
    /// `RoundingMatmul`) at every position except near routing ties: HF margin < 1e-3, or llama.cpp's own F16 run
    /// and its float32 run on the same dequantized weights already differ by more than `tolerance` there (the
    /// rounding alone flips an expert); at most `maxSkipped` of the positions may be skipped. (2) The float reference path
    /// (f32 activations) ≤ 1e-3 vs llama.cpp's float32 run on the dequantized weights at every position.
    func checkF16(tolerance: Float = 0.05, maxSkipped: Double = 0.1, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try load("f16")
        var worst: Float = 0, skipped = 0, agree = 0, total = 0
        for (seq, tokens) in try sequences() {
            let got = SequenceRunner(model: model).run(tokens)
            let lcpp = try reference("lcpp_logits.f16.s\(seq).f32"), dequant = try reference("lcpp_logits.f16.dequant.s\(seq).f32")
            let margins = try minMargins(seq)
            var seqWorst: Float = 0
            for t in 0..<tokens.count {
                total += 1
                if argmax(got[t]) == argmax(lcpp[t]) { agree += 1 }
                if margins[t] < 1e-3 || maxAbsDiff(lcpp[t], dequant[t]) > tolerance { skipped += 1; continue }
                seqWorst = max(seqWorst, maxAbsDiff(got[t], lcpp[t]))
            }
            print("\(name) f16 s\(seq): max |Δ| vs llama.cpp f16 = \(seqWorst) (near ties excluded)")
            worst = max(worst, seqWorst)
        }
        print("\(name) f16: max |Δ| vs llama.cpp f16 = \(worst) (\(skipped) of \(total) near-tie positions skipped), argmax \(agree)/\(total)")
        XCTAssertLessThanOrEqual(worst, tolerance, "\(name) f16", file: file, line: line)
        XCTAssertLessThanOrEqual(Double(skipped), maxSkipped * Double(total), "\(name) f16: too many near-tie positions skipped",
                                 file: file, line: line)
        let d = try compareWithLlamaCpp("f16", reference: "f16.dequant", floatReference: true)
        print("\(name) f16 float reference: max |Δ| vs llama.cpp f16.dequant = \(d.maxAbs) at all positions")
        XCTAssertLessThanOrEqual(d.maxAbs, 1e-3, "\(name) f16 float reference vs dequant", file: file, line: line)
    }

    /// Q8_0 file: argmax equal to llama.cpp's at ≥ `fraction` of all positions; the float reference path ≤ 1e-3 vs
    /// llama.cpp's float32 run on the dequantized weights (positions with HF routing margin < 1e-3 excluded).
    func checkQ8_0(fraction: Double = 0.85, file: StaticString = #filePath, line: UInt = #line) throws {
        let (worst, _, agree, total) = try compareWithLlamaCpp("q8_0")
        print("\(name) q8_0: max |Δ| vs llama.cpp \(worst), argmax agreement \(agree) of \(total)")
        XCTAssertGreaterThanOrEqual(agree, fraction, "\(name) q8_0 argmax agreement", file: file, line: line)
        // Float reference path on the same Q8_0 weights vs llama.cpp's float32 run on the dequantized copy.
        let d = try compareWithLlamaCpp("q8_0", reference: "q8_0.dequant", minMargin: 1e-3, floatReference: true)
        print("\(name) q8_0 float reference: max |Δ| vs llama.cpp q8_0.dequant = \(d.maxAbs) (\(d.skipped) near ties skipped)")
        XCTAssertLessThanOrEqual(d.maxAbs, 1e-3, "\(name) q8_0 float reference vs dequant", file: file, line: line)
    }

    /// Q4_K_M file: argmax agreement with llama.cpp ≥ `fraction`; skipped (with the missing weight type named)
    /// while Compute lacks one of the file's tensor types.
    func checkQ4KM(fraction: Double = 0.8, file: StaticString = #filePath, line: UInt = #line) throws {
        do {
            _ = try load("q4_k_m")
        } catch let e as ModelLoadError {
            if case .unsupportedTensorType(let tensor, let type) = e {
                let gguf = try GGUFFile(path: ggufPath("q4_k_m"))
                let kernels = Set(WeightType.allCases.map { UInt32($0.rawValue) })
                let missing = Set(gguf.tensors.map(\.type).filter { !kernels.contains($0.rawValue) }).map { "\($0)" }.sorted()
                throw XCTSkip("\(name) Q4_K_M skipped: Compute has no matmul kernel for weight type(s) "
                              + "\(missing.isEmpty ? [type] : missing) (first: tensor \(tensor), \(type)); the Q4_K_M files need "
                              + "Q5_0/Q5_1/Q4_K/Q6_K, which another helper is adding")
            }
            throw e
        }
        let (worst, _, agree, total) = try compareWithLlamaCpp("q4_k_m")
        print("\(name) q4_k_m: max |Δ| vs llama.cpp \(worst), argmax agreement \(agree) of \(total)")
        XCTAssertGreaterThanOrEqual(agree, fraction, "\(name) q4_k_m argmax agreement", file: file, line: line)
    }

    /// Hyper-parameters a server needs are filled.
    func checkHyperparameters(_ model: LanguageModel, arch: String, file: StaticString = #filePath, line: UInt = #line) {
        let hp = model.hyperparameters
        XCTAssertEqual(hp.architecture, arch, file: file, line: line)
        XCTAssertEqual(hp.vocabSize, vocab, file: file, line: line)
        XCTAssertEqual(hp.contextLength, 256, file: file, line: line)
        XCTAssertGreaterThan(hp.numLayers, 0, file: file, line: line)
        XCTAssertGreaterThan(hp.embeddingLength, 0, file: file, line: line)
        XCTAssertGreaterThan(hp.rmsNormEpsilon, 0, file: file, line: line)
    }
}
