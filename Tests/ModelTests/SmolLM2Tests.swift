import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// The real SmolLM2-135M-Instruct Q4_1 model against llama.cpp's greedy continuations and last-prompt logits
/// (Tests/Fixtures/real/SmolLM2-135M-Instruct.Q4_1.json). Skipped with a message when the model is absent.
final class SmolLM2Tests: XCTestCase {
    static let modelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    struct Conversation {
        let id: String
        let promptIDs: [Int32]
        let run: [String: Any]     // kv_f16 / kv_f32 record
    }

    func loadFixture(_ kv: String) throws -> [Conversation] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("real/SmolLM2-135M-Instruct.Q4_1.json")))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["conversations"] as! [[String: Any]]).map {
            Conversation(id: $0["id"] as! String, promptIDs: ($0["prompt_ids"] as! [Int]).map(Int32.init),
                         run: $0[kv] as! [String: Any])
        }
    }

    func checkGreedy(kv: KVCacheType) throws {
        guard let path = Fixtures.model(Self.modelFile) else {
            throw XCTSkip("\(Self.modelFile) not found (set SPUTNIK_MODELS_DIR); skipping the SmolLM2 greedy test")
        }
        let model = try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: 2, kvCacheType: kv))
        let vocab = model.hyperparameters.vocabSize
        var totalCompared = 0, totalMatched = 0
        for conv in try loadFixture("kv_\(kv.rawValue)") {
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
    func testFloatReferenceMatchesDequantF32Run() throws {
        guard let path = Fixtures.model(Self.modelFile) else {
            throw XCTSkip("\(Self.modelFile) not found (set SPUTNIK_MODELS_DIR); skipping the SmolLM2 float reference test")
        }
        let model = try ModelLoader.load(try GGUFFile(path: path),
                                         options: ModelOptions(threads: 2, kvCacheType: .f32, floatReference: true))
        var compared = 0
        for conv in try loadFixture("dequant_f32") {
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

    func testGreedyMatchesLlamaCppF16Cache() throws { try checkGreedy(kv: .f16) }
    func testGreedyMatchesLlamaCppF32Cache() throws { try checkGreedy(kv: .f32) }
}
