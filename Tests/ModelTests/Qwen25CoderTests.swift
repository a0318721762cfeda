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

/// The real Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Q5_0/Q8_0/Q4_K/Q6_K tensors) against llama.cpp. Skipped with a
/// message when the model is absent.
final class Qwen25CoderTests: XCTestCase {
    let check = RealModelCheck(fixture: "qwen2.5-coder-0.5b-instruct-q4_k_m.json",
                               modelFile: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")

    func testGreedyMatchesLlamaCppF16Cache() throws {
        let r = try check.run(self, record: "kv_f16", options: ModelOptions(threads: 2, kvCacheType: .f16),
                              tieGap: 0.25, top64Tolerance: 0.5)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    func testGreedyMatchesLlamaCppF32Cache() throws {
        let r = try check.run(self, record: "kv_f32", options: ModelOptions(threads: 2, kvCacheType: .f32),
                              tieGap: 0.25, top64Tolerance: 0.5)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    /// `--no-repack`: the weights stay in the file mapping (plain layouts, no copies) and give the same greedy run.
    func testWeightsInTheFileMappingMatchLlamaCpp() throws {
        let r = try check.run(self, record: "kv_f16", options: ModelOptions(threads: 2, kvCacheType: .f16, repackWeights: false),
                              tieGap: 0.25, top64Tolerance: 0.5)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    /// Float32 on dequantized weights, F32 cache, against the `dequant_f32` record (tight: same weights, no
    /// activation rounding on either side). Bounded to 6 greedy steps per conversation (the float path is slow).
    func testFloatReferenceMatchesDequantF32Run() throws {
        let r = try check.run(self, record: "dequant_f32",
                              options: ModelOptions(threads: 2, kvCacheType: .f32, floatReference: true),
                              tieGap: 1e-3, top64Tolerance: 2e-3, maxSteps: 6)
        XCTAssertEqual(r.matched, r.compared)
    }
}
