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
            case .reasoning, .toolCallBegin, .toolCallArguments:
                XCTFail("no output parsing was asked for: \(event)")
            case .started: break
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

/// `n > 1` through the engine: every choice of a greedy request equals the single greedy answer (so the forked
/// KV, copied partial block included, is right); sampled choices differ from each other and reproduce with `seed`.
final class EngineChoicesTests: XCTestCase {
    private final class Choices: @unchecked Sendable {
        let lock = NSLock()
        var ids: [[Int32]]
        var reasons: [FinishReason?]
        var lps: [[TokenLogprobs]]
        init(_ n: Int) {
            ids = Array(repeating: [], count: n)
            reasons = Array(repeating: nil, count: n)
            lps = Array(repeating: [], count: n)
        }
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

    private func run(_ r: GenerationRequest) throws -> Choices {
        let c = Choices(r.n)
        let group = DispatchGroup()
        for _ in 0..<r.n { group.enter() }
        _ = try Self.engine.submit(r) { k, event in
            c.lock.lock()
            defer { c.lock.unlock() }
            switch event {
            case .text(_, let ids, let lps):
                c.ids[k] += ids
                c.lps[k] += lps
            case .finished(let reason, _):
                c.reasons[k] = reason
                group.leave()
            case .reasoning, .toolCallBegin, .toolCallArguments:
                XCTFail("no output parsing was asked for: \(event)")
            case .started: break
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        return c
    }

    private func request(n: Int, temperature: Double, seed: UInt64? = nil) -> GenerationRequest {
        var r = GenerationRequest(promptTokens: [0, 17, 230, 41, 99], maxNewTokens: 10,
                                  sampling: SamplingParams(temperature: temperature, seed: seed), ignoreEOS: true, logprobs: 1)
        r.n = n
        return r
    }

    func testGreedyChoicesEqualTheSingleAnswer() throws {
        let one = try run(request(n: 1, temperature: 0))
        let four = try run(request(n: 4, temperature: 0))
        XCTAssertEqual(one.ids[0].count, 10)
        for k in 0..<4 {
            XCTAssertEqual(four.ids[k], one.ids[0], "choice \(k)")
            XCTAssertEqual(four.reasons[k], .length)
            XCTAssertEqual(four.lps[k].map(\.logprob), one.lps[0].map(\.logprob), "choice \(k)")
        }
    }

    func testSampledChoicesDifferAndReproduce() throws {
        let a = try run(request(n: 3, temperature: 1.5, seed: 42))
        let b = try run(request(n: 3, temperature: 1.5, seed: 42))
        XCTAssertEqual(a.ids, b.ids)
        XCTAssertEqual(Set(a.ids.map { $0.map(String.init).joined(separator: ",") }).count, 3)
        let single = try run(request(n: 1, temperature: 1.5, seed: 42))
        XCTAssertEqual(single.ids[0], a.ids[0])   // choice 0 keeps the request's own seed
    }

    func testTooManyChoicesIsRefused() {
        XCTAssertThrowsError(try Self.engine.submit(request(n: 5, temperature: 0)) { _, _ in }) { e in
            XCTAssertEqual(e as? EngineError, .tooManyChoices(n: 5, limit: 4))
        }
    }
}
