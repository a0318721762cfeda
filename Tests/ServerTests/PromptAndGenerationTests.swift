import Foundation
import Logging
import XCTest
import Engine
import OpenAIAPI
import TestSupport
@testable import Server

/// The whole path below HTTP on the real SmolLM2 model: chat template + tokenizer give llama.cpp's prompt ids,
/// and the engine's greedy continuation equals llama.cpp's up to the first near-tie.
final class PromptAndGenerationTests: XCTestCase {
    static let modelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    private func fixture() throws -> [[String: Any]] {
        let d = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("real/SmolLM2-135M-Instruct.Q4_1.json")))
        let j = try JSONSerialization.jsonObject(with: d) as! [String: Any]
        return j["conversations"] as! [[String: Any]]
    }

    private func server() throws -> SputnikServer {
        guard let path = Fixtures.model(Self.modelFile) else {
            throw XCTSkip("SKIPPED: \(Self.modelFile) is not in models/ (run `make models`)")
        }
        var o = ServerOptions()
        o.modelPath = path
        o.threads = 2
        o.maxNumSeqs = 4
        return try SputnikServer(options: o, logger: Logger(label: "test"))
    }

    private func request(_ messages: Any) throws -> ChatCompletionRequest {
        let body = try JSONSerialization.data(withJSONObject: ["messages": messages])
        return try ChatCompletionRequest.decode(Array(body)).get()
    }

    func testPromptIdsEqualLlamaCpp() throws {
        let s = try server()
        for c in try fixture() {
            let ids = try s.promptTokens(for: request(c["messages"]!))
            XCTAssertEqual(ids.map(Int.init), c["prompt_ids"] as? [Int], "\(c["id"]!)")
        }
    }

    func testGreedyContinuationMatchesLlamaCppUntilNearTie() throws {
        let s = try server()
        s.engine.start()
        defer { s.engine.shutdown() }
        var compared = 0, matched = 0
        for c in try fixture() {
            let prompt = (c["prompt_ids"] as! [Int]).map(Int32.init)
            let run = c["kv_f16"] as! [String: Any]
            let greedy = run["greedy"] as! [String: Any]
            let expected = greedy["ids"] as! [Int]
            let steps = greedy["steps"] as! [[String: Any]]
            // Compare until the first step whose top-2 logit gap is below 0.25.
            var limit = expected.count
            for (j, st) in steps.enumerated() {
                let top = st["top"] as! [[Double]]
                if top[0][1] - top[1][1] < 0.25 { limit = j; break }
            }
            let got = Generated()
            let done = expectation(description: "\(c["id"]!)")
            _ = try s.engine.submit(GenerationRequest(promptTokens: prompt, maxNewTokens: expected.count,
                                                      sampling: SamplingParams(temperature: 0), ignoreEOS: true)) { e in
                switch e {
                case .text(_, let ids, _): got.append(ids)
                case .finished: done.fulfill()
                default: break
                }
            }
            wait(for: [done], timeout: 300)
            let ids = got.ids.map(Int.init)
            let n = min(limit, ids.count)
            compared += n
            let same = zip(ids.prefix(n), expected.prefix(n)).prefix { $0 == $1 }.count
            matched += same
            XCTAssertEqual(Array(ids.prefix(n)), Array(expected.prefix(n)), "\(c["id"]!): first \(n) tokens (before a near-tie)")
        }
        print("SmolLM2 greedy vs llama.cpp kv_f16: \(matched)/\(compared) tokens before near-ties")
        XCTAssertGreaterThan(compared, 20)
    }
}

/// Token ids collected on the engine thread.
private final class Generated: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var ids: [Int32] = []
    func append(_ x: [Int32]) { lock.lock(); ids += x; lock.unlock() }
}
