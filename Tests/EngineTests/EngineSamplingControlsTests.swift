import Foundation
import GGUF
import Logging
import Model
import Scheduling
import TestSupport
import Tokenizer
import XCTest
@testable import Engine

/// Issue 15 through the engine loop on the tiny llama fixture: logprobs arrive one per emitted token id and agree
/// with the greedy choice; `logit_bias` bans; `stop_token_ids` stop; neutral processing changes nothing.
final class EngineSamplingControlsTests: XCTestCase {
    private final class Collector: @unchecked Sendable {
        let lock = NSLock()
        var ids: [Int32] = []
        var logprobs: [TokenLogprobs] = []
        var reason: FinishReason?
        var mismatched = false
    }

    private static let engine: EngineCore = {
        let gguf = try! GGUFFile(path: Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf"))
        let model = try! ModelLoader.load(gguf, options: ModelOptions(threads: 2, kvCacheType: .f32))
        let tok = try! Tokenizer(gguf: gguf)
        let e = EngineCore(model: model, tokenizer: tok,
                           config: EngineConfig(contextSize: 64, maxNumSeqs: 4, maxNumBatchedTokens: 64, blockSize: 4),
                           logger: Logger(label: "test"))
        e.start()
        return e
    }()

    private func run(_ r: GenerationRequest) throws -> Collector {
        let c = Collector()
        let done = DispatchSemaphore(value: 0)
        _ = try Self.engine.submit(r) { event in
            c.lock.lock()
            defer { c.lock.unlock() }
            switch event {
            case .text(_, let ids, let lps):
                c.ids += ids
                c.logprobs += lps
                if r.logprobs != nil && lps.map(\.tokenId) != ids { c.mismatched = true }
            case .finished(let reason, _):
                c.reason = reason
                done.signal()
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success)
        return c
    }

    private let prompt: [Int32] = [0, 17, 230, 41, 99]

    private func greedy(_ processing: LogitsProcessing = LogitsProcessing(), stopTokenIds: [Int32] = [],
                        logprobs: Int? = nil, max: Int = 12) -> GenerationRequest {
        GenerationRequest(promptTokens: prompt, maxNewTokens: max, sampling: SamplingParams(temperature: 0), ignoreEOS: true,
                          processing: processing, stopTokenIds: stopTokenIds, logprobs: logprobs)
    }

    func testLogprobsOnePerTokenAndGreedyIsTheTop() throws {
        let base = try run(greedy())
        let c = try run(greedy(logprobs: 4))
        XCTAssertEqual(c.ids, base.ids)
        XCTAssertFalse(c.mismatched)
        XCTAssertEqual(c.logprobs.count, 12)
        for e in c.logprobs {
            XCTAssertEqual(e.top.count, 4)
            XCTAssertEqual(e.top[0].tokenId, e.tokenId)
            XCTAssertEqual(e.top[0].logprob, e.logprob)
            XCTAssertLessThanOrEqual(e.logprob, 0)
            XCTAssertLessThanOrEqual(e.top.reduce(0.0) { $0 + exp(Double($1.logprob)) }, 1 + 1e-5)
        }
    }

    func testNeutralProcessingIsIdentical() throws {
        let base = try run(greedy())
        let neutral = try run(greedy(LogitsProcessing(presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1)))
        XCTAssertEqual(neutral.ids, base.ids)
    }

    func testBanAndPenaltiesChangeTheOutput() throws {
        let base = try run(greedy())
        let banned = try run(greedy(LogitsProcessing(logitBias: [base.ids[0]: -100])))
        XCTAssertFalse(banned.ids.contains(base.ids[0]))
        let penalised = try run(greedy(LogitsProcessing(frequencyPenalty: 2, repetitionPenalty: 1.5)))
        XCTAssertNotEqual(penalised.ids, base.ids)
    }

    func testStopTokenIdsEndTheRequest() throws {
        let base = try run(greedy())
        let stop = base.ids[3]
        let c = try run(greedy(stopTokenIds: [stop]))
        let first = base.ids.firstIndex(of: stop)!
        XCTAssertEqual(c.reason, .stop)
        XCTAssertEqual(c.ids, Array(base.ids[..<first]))   // the stop token itself is not emitted
    }
}
