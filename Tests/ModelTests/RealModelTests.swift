import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// Runs a real model over a fixture's conversations (Tests/Fixtures/real/<model>.json) and compares the last prompt
/// position's top-64 logits and the greedy continuation with one of llama.cpp's runs (`kv_f16`, `kv_f32`,
/// `dequant_f32`). Greedy ids are compared until the first step whose recorded top-2 gap is below `tieGap`.
struct RealModelCheck {
    let fixture: String
    let modelFile: String

    struct Result { var worstTop64: Float = 0; var compared = 0; var matched = 0; var conversations = 0 }

    func run(_ testCase: XCTestCase, record: String, options: ModelOptions, tieGap: Double, top64Tolerance: Float,
             maxSteps: Int = 48) throws -> Result {
        guard let path = Fixtures.model(modelFile) else {
            throw XCTSkip("\(modelFile) not found (set SPUTNIK_MODELS_DIR or run scripts/fetch-models.sh); skipping")
        }
        let model = try ModelLoader.load(try GGUFFile(path: path), options: options)
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("real/\(fixture)")))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var result = Result()
        for conv in json["conversations"] as! [[String: Any]] {
            let id = conv["id"] as! String
            let prompt = (conv["prompt_ids"] as! [Int]).map(Int32.init)
            let run = conv[record] as! [String: Any]
            var numBlocks = (prompt.count + 64) / 16 + 1
            if numBlocks % 37 == 0 { numBlocks += 1 }                 // SequenceRunner scrambles blocks with stride 37
            let runner = SequenceRunner(model: model, numBlocks: numBlocks, blockSize: 16)
            let seq = runner.newSequence()
            var logits = runner.step([(seq, prompt)]).last!
            let last = run["last_prompt_logits"] as! [String: Any]
            var worst: Float = 0
            for pair in last["top"] as! [[Double]] { worst = max(worst, abs(logits[Int(pair[0])] - Float(pair[1]))) }
            XCTAssertLessThanOrEqual(worst, top64Tolerance, "\(id): last-prompt top-64 logits")
            let greedy = run["greedy"] as! [String: Any]
            let want = greedy["ids"] as! [Int], steps = greedy["steps"] as! [[String: Any]]
            let top0 = steps.first.map { $0["top"] as! [[Double]] }
            if let top0, top0[0][1] - top0[1][1] >= tieGap {   // argmax is only defined away from a near-tie
                XCTAssertEqual(argmax(logits), last["argmax"] as! Int, "\(id): last-prompt argmax")
            }
            var compared = 0, matched = 0
            for j in 0..<min(want.count, maxSteps) {
                let top = steps[j]["top"] as! [[Double]]
                if top[0][1] - top[1][1] < tieGap { break }
                compared += 1
                let got = argmax(logits)
                XCTAssertEqual(got, want[j], "\(id) (\(record)): greedy step \(j)")
                if got != want[j] { break }
                matched += 1
                if j + 1 < want.count { logits = runner.step([(seq, [Int32(got)])])[0] }
            }
            print("\(modelFile) \(record) \(id): last-prompt top-64 max |Δ| = \(worst); greedy matched \(matched)/\(compared) (of \(want.count))")
            result.worstTop64 = max(result.worstTop64, worst)
            result.compared += compared
            result.matched += matched
            result.conversations += 1
        }
        print("\(modelFile) \(record): worst top-64 |Δ| \(result.worstTop64), greedy matched \(result.matched)/\(result.compared) over \(result.conversations) conversations")
        return result
    }
}

/// The three real dense models against llama.cpp, one suite; each test is skipped with a message when its model is
/// absent (set SPUTNIK_MODELS_DIR or run scripts/fetch-models.sh).
final class RealModelTests: XCTestCase {
    // MARK: SmolLM2-135M-Instruct Q4_1 (llama)
    // The real SmolLM2-135M-Instruct Q4_1 model against llama.cpp's greedy continuations and last-prompt logits
    // (Tests/Fixtures/real/SmolLM2-135M-Instruct.Q4_1.json). Skipped with a message when the model is absent.

    static let smolLM2File = "SmolLM2-135M-Instruct.Q4_1.gguf"

    struct Conversation {
        let id: String
        let promptIDs: [Int32]
        let run: [String: Any]     // kv_f16 / kv_f32 record
    }

    func smolLM2Fixture(_ kv: String) throws -> [Conversation] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("real/SmolLM2-135M-Instruct.Q4_1.json")))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["conversations"] as! [[String: Any]]).map {
            Conversation(id: $0["id"] as! String, promptIDs: ($0["prompt_ids"] as! [Int]).map(Int32.init),
                         run: $0[kv] as! [String: Any])
        }
    }

    func checkSmolLM2Greedy(kv: KVCacheType) throws {
        guard let path = Fixtures.model(Self.smolLM2File) else {
            throw XCTSkip("\(Self.smolLM2File) not found (set SPUTNIK_MODELS_DIR); skipping the SmolLM2 greedy test")
        }
        let model = try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: 2, kvCacheType: kv))
        let vocab = model.hyperparameters.vocabSize
        var totalCompared = 0, totalMatched = 0
        for conv in try smolLM2Fixture("kv_\(kv.rawValue)") {
            let runner = SequenceRunner(model: model, numBlocks: 16, blockSize: 16)
            let seq = runner.newSequence()
            var logits = runner.step([(seq, conv.promptIDs)]).last!
            // Last prompt position: top-64 logits of llama.cpp.
            let last = conv.run["last_prompt_logits"] as! [String: Any]
            var worst: Float = 0
            for pair in last["top"] as! [[Double]] { worst = max(worst, abs(logits[Int(pair[0])] - Float(pair[1]))) }
            XCTAssertEqual(argmax(logits), last["argmax"] as! Int, "\(conv.id): last-prompt argmax")
            XCTAssertLessThanOrEqual(worst, 1.0, "\(conv.id): last-prompt top-64 logits")
            // Greedy decode, compared token by token until the first near-tie in the record.
            let greedy = conv.run["greedy"] as! [String: Any]
            let want = greedy["ids"] as! [Int]
            let steps = greedy["steps"] as! [[String: Any]]
            var compared = 0, matched = 0
            for j in 0..<want.count {
                let top = steps[j]["top"] as! [[Double]]
                if top[0][1] - top[1][1] < 0.25 { break }
                compared += 1
                let got = argmax(logits)
                XCTAssertEqual(got, want[j], "\(conv.id) (\(kv)): greedy step \(j)")
                if got != want[j] { break }
                matched += 1
                if j + 1 < want.count { logits = runner.step([(seq, [Int32(got)])])[0] }
            }
            XCTAssertEqual(logits.count, vocab)
            print("SmolLM2 \(kv) \(conv.id): last-prompt top-64 max |Δ| = \(worst); greedy matched \(matched)/\(compared) steps before the first gap < 0.25 (of \(want.count))")
            totalCompared += compared
            totalMatched += matched
        }
        print("SmolLM2 \(kv): greedy matched \(totalMatched)/\(totalCompared) compared steps")
    }

    /// Float32 compute on dequantized weights with an F32 cache against the fixture's `dequant_f32` run
    /// (transformers and llama.cpp agree on it to ~2e-5): the tight end-to-end check of the Q4_1/Q8_0 loaders.
    func testSmolLM2FloatReferenceMatchesDequantF32Run() throws {
        guard let path = Fixtures.model(Self.smolLM2File) else {
            throw XCTSkip("\(Self.smolLM2File) not found (set SPUTNIK_MODELS_DIR); skipping the SmolLM2 float reference test")
        }
        let model = try ModelLoader.load(try GGUFFile(path: path),
                                         options: ModelOptions(threads: 2, kvCacheType: .f32, floatReference: true))
        var compared = 0
        for conv in try smolLM2Fixture("dequant_f32") {
            let runner = SequenceRunner(model: model, numBlocks: 8, blockSize: 16)
            let seq = runner.newSequence()
            var logits = runner.step([(seq, conv.promptIDs)]).last!
            let last = conv.run["last_prompt_logits"] as! [String: Any]
            var worst: Float = 0
            for pair in last["top"] as! [[Double]] { worst = max(worst, abs(logits[Int(pair[0])] - Float(pair[1]))) }
            print("SmolLM2 float reference \(conv.id): last-prompt top-64 max |Δ| vs dequant_f32 = \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-3, "\(conv.id)")
            XCTAssertEqual(argmax(logits), last["argmax"] as! Int, "\(conv.id)")
            let greedy = conv.run["greedy"] as! [String: Any]
            let want = greedy["ids"] as! [Int], steps = greedy["steps"] as! [[String: Any]]
            for j in 0..<min(8, want.count) {   // bounded: the float path is slow
                let top = steps[j]["top"] as! [[Double]]
                if top[0][1] - top[1][1] < 1e-3 { break }
                XCTAssertEqual(argmax(logits), want[j], "\(conv.id): step \(j)")
                compared += 1
                logits = runner.step([(seq, [Int32(want[j])])])[0]
            }
        }
        print("SmolLM2 float reference: \(compared) greedy steps compared")
    }

    func testSmolLM2GreedyMatchesLlamaCppF16Cache() throws { try checkSmolLM2Greedy(kv: .f16) }
    func testSmolLM2GreedyMatchesLlamaCppF32Cache() throws { try checkSmolLM2Greedy(kv: .f32) }

    // MARK: Qwen2.5-Coder-0.5B-Instruct Q4_K_M (qwen2)
    // The real Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Q5_0/Q8_0/Q4_K/Q6_K tensors) against llama.cpp. Skipped with a
    // message when the model is absent.

    let qwenCoder = RealModelCheck(fixture: "qwen2.5-coder-0.5b-instruct-q4_k_m.json",
                               modelFile: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")

    func testQwen25CoderGreedyMatchesLlamaCppF16Cache() throws {
        let r = try qwenCoder.run(self, record: "kv_f16", options: ModelOptions(threads: 2, kvCacheType: .f16),
                              tieGap: 0.25, top64Tolerance: 0.5)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    func testQwen25CoderGreedyMatchesLlamaCppF32Cache() throws {
        let r = try qwenCoder.run(self, record: "kv_f32", options: ModelOptions(threads: 2, kvCacheType: .f32),
                              tieGap: 0.25, top64Tolerance: 0.5)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    /// `--no-repack`: the weights stay in the file mapping (plain layouts, no copies) and give the same greedy run.
    func testQwen25CoderWeightsInTheFileMappingMatchLlamaCpp() throws {
        let r = try qwenCoder.run(self, record: "kv_f16", options: ModelOptions(threads: 2, kvCacheType: .f16, repackWeights: false),
                              tieGap: 0.25, top64Tolerance: 0.5)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    /// Float32 on dequantized weights, F32 cache, against the `dequant_f32` record (tight: same weights, no
    /// activation rounding on either side). Bounded to 6 greedy steps per conversation (the float path is slow).
    func testQwen25CoderFloatReferenceMatchesDequantF32Run() throws {
        let r = try qwenCoder.run(self, record: "dequant_f32",
                              options: ModelOptions(threads: 2, kvCacheType: .f32, floatReference: true),
                              tieGap: 1e-3, top64Tolerance: 2e-3, maxSteps: 6)
        XCTAssertEqual(r.matched, r.compared)
    }

    // MARK: Gemma 3 270m Q4_K_M (gemma3)
    // The real Gemma 3 270m Q4_K_M (Q8_0/Q5_0/Q4_K/Q6_K tensors, sliding-window layers) against llama.cpp logits
    // (Tests/Fixtures/real/gemma-3-270m-q4_k_m.json, made by make_gemma3_reference.py next to it; the `long` prompt
    // exceeds the 512-token window). Skipped with a message when the model is absent.
    // Tolerance: llama.cpp's own F16-vs-F32 KV cache runs differ by up to 0.76 on these top-64 logits (top logit ≈ 20),
    // so activation-rounding differences between two Q8_0/Q8_K implementations are of that order (measured ≤ 1.2);
    // greedy ids must match exactly up to the first near-tie.

    let gemma3 = RealModelCheck(fixture: "gemma-3-270m-q4_k_m.json", modelFile: "gemma-3-270m-q4_k_m.gguf")

    func testGemma3GreedyMatchesLlamaCppF32Cache() throws {
        let r = try gemma3.run(self, record: "kv_f32", options: ModelOptions(threads: 2, kvCacheType: .f32, maxBatchTokens: 1024),
                              tieGap: 0.25, top64Tolerance: 1.5, maxSteps: 24)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    func testGemma3GreedyMatchesLlamaCppF16Cache() throws {
        let r = try gemma3.run(self, record: "kv_f16", options: ModelOptions(threads: 2, kvCacheType: .f16, maxBatchTokens: 1024),
                              tieGap: 0.25, top64Tolerance: 1.5, maxSteps: 24)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }
}
