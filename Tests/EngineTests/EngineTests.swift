import Foundation
import GGUF
import Logging
import Model
import Scheduling
import TestSupport
import Tokenizer
import XCTest
@testable import Engine

/// The engine loop on the tiny llama fixture: batching must not change greedy outputs, cancellation frees KV
/// blocks, limits are enforced.
final class EngineTests: XCTestCase {
    private func makeEngine(maxNumSeqs: Int = 8, budget: Int = 64, numBlocks: Int? = nil,
                            maxQueued: Int = 64, start: Bool = true) throws -> EngineCore {
        let gguf = try GGUFFile(path: Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf"))
        let model = try ModelLoader.load(gguf, options: ModelOptions(threads: 2, kvCacheType: .f32))
        let tok = try Tokenizer(gguf: gguf)
        let cfg = EngineConfig(contextSize: 64, maxNumSeqs: maxNumSeqs, maxNumBatchedTokens: budget, blockSize: 4,
                               numBlocks: numBlocks, maxQueuedRequests: maxQueued)
        let e = EngineCore(model: model, tokenizer: tok, config: cfg, logger: Logger(label: "test"))
        if start { e.start() }
        return e
    }

    /// Runs requests concurrently; returns each one's generated token ids and finish reason.
    private func run(_ engine: EngineCore, _ requests: [GenerationRequest]) throws -> [([Int32], FinishReason)] {
        let results = Results(count: requests.count)
        let group = DispatchGroup()
        for (i, r) in requests.enumerated() {
            group.enter()
            _ = try engine.submit(r) { event in
                switch event {
                case .text(_, let ids, _): results.add(i, ids)
                case .finished(let reason, let usage):
                    results.finish(i, reason, usage)
                    group.leave()
                default: break  // no output parsing here
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        return (0..<requests.count).map { (results.ids[$0], results.reasons[$0]!) }
    }

    private func prompt(_ seed: Int, _ n: Int) -> [Int32] {
        var g = SeededGenerator(seed: UInt64(seed))
        return [0] + (1..<n).map { _ in Int32(5 + g.next() % 500) }
    }

    func testBatchedGreedyEqualsAlone() throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let reqs = (0..<16).map { i in
            GenerationRequest(promptTokens: prompt(i, 3 + i * 2), maxNewTokens: 12,
                              sampling: SamplingParams(temperature: 0), ignoreEOS: true)
        }
        let alone = try reqs.map { try run(engine, [$0])[0].0 }
        let together = try run(engine, reqs).map(\.0)
        XCTAssertEqual(alone.map(\.count), Array(repeating: 12, count: 16))
        XCTAssertEqual(together, alone, "greedy outputs must not depend on the batch")
        // A small step budget forces chunked prefill mixed with decode: still the same tokens.
        let chunked = try makeEngine(budget: 5)
        defer { chunked.shutdown() }
        XCTAssertEqual(try run(chunked, reqs).map(\.0), alone)
    }

    func testSeededSamplingIsReproducibleUnderBatching() throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let r = GenerationRequest(promptTokens: prompt(99, 7), maxNewTokens: 10,
                                  sampling: SamplingParams(temperature: 1.0, seed: 5), ignoreEOS: true)
        let alone = try run(engine, [r])[0].0
        let others = (0..<5).map { GenerationRequest(promptTokens: prompt($0, 9), maxNewTokens: 10,
                                                      sampling: SamplingParams(temperature: 1.0), ignoreEOS: true) }
        XCTAssertEqual(try run(engine, others + [r]).last!.0, alone)
    }

    func testPreemptionKeepsOutputsIdentical() throws {
        // 12 blocks of 4 tokens for 6 sequences of up to 3 + 14 tokens: the pool runs dry and requests are
        // preempted and recomputed; greedy outputs must still equal the uncontended ones.
        let reqs = (0..<6).map { i in
            GenerationRequest(promptTokens: prompt(40 + i, 3), maxNewTokens: 14,
                              sampling: SamplingParams(temperature: 0), ignoreEOS: true)
        }
        let roomy = try makeEngine()
        let expected = try reqs.map { try run(roomy, [$0])[0].0 }
        roomy.shutdown()
        let tight = try makeEngine(numBlocks: 12)
        defer { tight.shutdown() }
        XCTAssertEqual(try run(tight, reqs).map(\.0), expected)
        XCTAssertGreaterThan(tight.stats.numPreemptions, 0)
        waitIdle(tight)
        XCTAssertEqual(tight.stats.kvCacheUsage, 0)
    }

    func testCancelFreesBlocksWithinAStep() throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let finished = expectation(description: "abort delivered")
        // The handle cancels from inside the token callback (on the engine thread), so the cancellation is
        // certain to arrive while the request runs, however fast the machine is.
        let box = HandleBox()
        let tokens = Results(count: 1)
        let h = try engine.submit(GenerationRequest(promptTokens: prompt(1, 20), maxNewTokens: 40, ignoreEOS: true)) { e in
            switch e {
            case .text(_, let ids, _):
                tokens.add(0, ids)
                box.waitForHandle().cancel()
            case .finished(let reason, _):
                XCTAssertEqual(reason, .abort)
                finished.fulfill()
            default: break
            }
        }
        box.handle = h
        wait(for: [finished], timeout: 30)
        XCTAssertLessThan(tokens.ids[0].count, 40)
        waitIdle(engine)
        XCTAssertEqual(engine.stats.kvCacheUsage, 0)
        XCTAssertEqual(engine.stats.numRunning, 0)
    }

    /// The graceful drain's first move: requests the engine has not started end with `.abort` and no `.started`
    /// (their clients can get a retryable 503), every choice of them; the running one goes on to its end, and later
    /// submissions are not affected. Each started request hears `.started` once, before any other event.
    func testAbortUnstartedEndsOnlyRequestsNeverScheduled() throws {
        let engine = try makeEngine(maxNumSeqs: 2, start: false)
        defer { engine.shutdown() }
        let log = EventLog()
        let done = DispatchGroup()
        func submit(_ name: String, n: Int = 1, onFirstText: (@Sendable () -> Void)? = nil) throws {
            for _ in 0..<n { done.enter() }
            var r = GenerationRequest(promptTokens: prompt(name.count, 5), maxNewTokens: 12, ignoreEOS: true)
            r.n = n
            _ = try engine.submit(r) { k, e in
                switch e {
                case .started: log.add("\(name)\(k) started")
                case .text:
                    if log.add("\(name)\(k) text") { onFirstText?() }
                case .finished(let reason, _):
                    log.add("\(name)\(k) \(reason)")
                    done.leave()
                default: break
                }
            }
        }
        // Two slots: "a" (two choices) runs; "bb" and "ccc" (two choices) wait. The drain starts while "a" decodes.
        try submit("a", n: 2) { engine.abortUnstarted() }
        try submit("bb")
        try submit("ccc", n: 2)
        engine.start()
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(log.lines.first, "a0 started")
        XCTAssertEqual(Set(log.lines.filter { !$0.hasSuffix(" text") }.suffix(2)), ["a0 length", "a1 length"])
        XCTAssertFalse(log.lines.contains("a1 started"), "only choice 0 hears .started")
        XCTAssertEqual(Set(log.lines.filter { $0.hasSuffix("abort") }), ["bb0 abort", "ccc0 abort", "ccc1 abort"])
        XCTAssertFalse(log.lines.contains { $0.hasPrefix("bb") && !$0.hasSuffix("abort") })
        XCTAssertFalse(log.lines.contains { $0.hasPrefix("ccc") && !$0.hasSuffix("abort") })
        // After the drain began, a new submission runs normally.
        let later = try run(engine, [GenerationRequest(promptTokens: prompt(3, 5), maxNewTokens: 4, ignoreEOS: true)])
        XCTAssertEqual(later[0].1, .length)
        XCTAssertEqual(later[0].0.count, 4)
        waitIdle(engine)
        XCTAssertEqual(engine.stats.kvCacheUsage, 0)
    }

    /// The prompts of one `submit(batch:)` go together at a drain: once one has started, the others are not aborted
    /// (its answer is under way), and the group is forgotten when the batch is done.
    func testAbortUnstartedKeepsABatchWithAStartedMember() throws {
        let engine = try makeEngine(maxNumSeqs: 1, start: false)
        defer { engine.shutdown() }
        let results = Results(count: 3)
        let done = DispatchGroup()
        for _ in 0..<3 { done.enter() }
        let reqs = (0..<3).map { GenerationRequest(promptTokens: prompt(60 + $0, 5), maxNewTokens: 6, ignoreEOS: true) }
        _ = try engine.submit(batch: reqs) { i, _, e in
            switch e {
            case .text(_, let ids, _):
                if i == 0 && results.ids[0].isEmpty { engine.abortUnstarted() }
                results.add(i, ids)
            case .finished(let reason, let usage):
                results.finish(i, reason, usage)
                done.leave()
            default: break
            }
        }
        engine.start()
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(results.reasons, [.length, .length, .length])
        waitIdle(engine)
        XCTAssertEqual(engine.startedGroups, [])
    }

    func testLimits() throws {
        let engine = try makeEngine(maxQueued: 0)
        defer { engine.shutdown() }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(promptTokens: prompt(1, 60), maxNewTokens: 10)) { _ in }) {
            XCTAssertEqual($0 as? EngineError, .contextLengthExceeded(promptTokens: 60, maxNewTokens: 10, limit: 64))
        }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(promptTokens: [], maxNewTokens: 1)) { _ in })
    }

    /// `maxQueuedRequests` counts only requests that wait because no slot or KV room is free: 0 on an idle
    /// engine admits what can start at once, and refuses the first request that would have to wait.
    func testQueueBoundCountsOnlyRequestsWaitingForRoom() throws {
        // Not started yet, so nothing finishes while we submit: the count is deterministic.
        let engine = try makeEngine(maxNumSeqs: 4, maxQueued: 0, start: false)
        defer { engine.shutdown() }
        let long = { (i: Int) in GenerationRequest(promptTokens: self.prompt(i, 4), maxNewTokens: 50, ignoreEOS: true) }
        var handles: [GenerationHandle] = []
        for i in 0..<4 { handles.append(try engine.submit(long(i)) { _ in }) }   // four free slots: none waits
        XCTAssertThrowsError(try engine.submit(long(9)) { _ in }) {          // a fifth would wait
            XCTAssertEqual($0 as? EngineError, .queueFull(limit: 0))
        }
        engine.start()
        for h in handles { h.cancel() }
        let deadline = Date().addingTimeInterval(10)
        while engine.unfinishedCount > 0 && Date() < deadline { usleep(1000) }
        XCTAssertEqual(engine.unfinishedCount, 0)
        XCTAssertNoThrow(try engine.submit(long(10)) { _ in }.cancel())      // idle again: admitted

        // A client that sends its next requests the moment the last answer arrives (here: from the finished
        // event itself, before the engine's end-of-step bookkeeping) finds the slots free again.
        let full = try makeEngine(maxNumSeqs: 2, maxQueued: 0)
        defer { full.shutdown() }
        let refused = Results(count: 1)
        let resubmitted = expectation(description: "resubmitted")
        var initial: [GenerationHandle] = []
        let remaining = Counter(2)
        let nextPrompts = (0..<2).map { prompt(30 + $0, 4) }
        for i in 0..<2 {
            initial.append(try full.submit(GenerationRequest(promptTokens: prompt(20 + i, 4), maxNewTokens: 3, ignoreEOS: true)) { e in
                guard case .finished = e, remaining.decrement() == 0 else { return }
                for j in 0..<2 {
                    do { _ = try full.submit(GenerationRequest(promptTokens: nextPrompts[j], maxNewTokens: 2)) { _ in } }
                    catch { refused.add(0, [Int32(j)]) }
                }
                resubmitted.fulfill()
            })
        }
        wait(for: [resubmitted], timeout: 30)
        XCTAssertEqual(refused.ids[0], [], "a request was refused while its slot was free")
        _ = initial

        // KV room counts too: a pool of 8 blocks of 4 tokens holds one 20-token prompt at a time.
        let small = try makeEngine(maxNumSeqs: 4, numBlocks: 8, maxQueued: 0, start: false)
        defer { small.shutdown() }
        let first = try small.submit(GenerationRequest(promptTokens: prompt(1, 20), maxNewTokens: 10, ignoreEOS: true)) { _ in }
        XCTAssertThrowsError(try small.submit(GenerationRequest(promptTokens: prompt(2, 20), maxNewTokens: 10)) { _ in }) {
            XCTAssertEqual($0 as? EngineError, .queueFull(limit: 0))
        }
        small.start()
        first.cancel()
    }

    func testPrefixCacheReuseGivesTheSameTokens() throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let shared = prompt(77, 13)  // three full blocks of 4 and one token
        let req = { (tail: [Int32]) in
            GenerationRequest(promptTokens: shared + tail, maxNewTokens: 6, sampling: SamplingParams(temperature: 0),
                              ignoreEOS: true)
        }
        let first = try runWithUsage(engine, req([11, 12]))
        XCTAssertEqual(first.1.cachedTokens, 0)
        let second = try runWithUsage(engine, req([11, 12]))
        XCTAssertEqual(second.1.cachedTokens, 12)
        XCTAssertEqual(second.0, first.0, "cached K/V give the same continuation")
        let other = try runWithUsage(engine, req([40, 41, 42]))
        XCTAssertEqual(other.1.cachedTokens, 12)
        let cold = try makeEngine()
        defer { cold.shutdown() }
        XCTAssertEqual(try runWithUsage(cold, req([40, 41, 42])).0, other.0)
    }

    /// Stats are published at the end of each engine step: wait (bounded) until the pool is empty.
    private func waitIdle(_ engine: EngineCore) {
        let deadline = Date().addingTimeInterval(5)
        while (engine.stats.kvCacheUsage > 0 || engine.stats.numRunning > 0) && Date() < deadline { usleep(1000) }
    }

    private func runWithUsage(_ engine: EngineCore, _ r: GenerationRequest) throws -> ([Int32], GenerationUsage) {
        let results = Results(count: 1)
        let done = DispatchSemaphore(value: 0)
        _ = try engine.submit(r) { e in
            switch e {
            case .text(_, let ids, _): results.add(0, ids)
            case .finished(let reason, let u): results.finish(0, reason, u); done.signal()
            default: break
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        return (results.ids[0], results.usage[0]!)
    }

    func testMaxTokensEndsWithLength() throws {
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let out = try run(engine, [GenerationRequest(promptTokens: prompt(3, 4), maxNewTokens: 5, ignoreEOS: true)])
        XCTAssertEqual(out[0].1, .length)
        XCTAssertEqual(out[0].0.count, 5)
    }
}

private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    var ids: [[Int32]]
    var reasons: [FinishReason?]
    var usage: [GenerationUsage?]

    init(count: Int) {
        ids = Array(repeating: [], count: count)
        reasons = Array(repeating: nil, count: count)
        usage = Array(repeating: nil, count: count)
    }

    func add(_ i: Int, _ x: [Int32]) { lock.lock(); ids[i] += x; lock.unlock() }
    func finish(_ i: Int, _ r: FinishReason, _ u: GenerationUsage) { lock.lock(); reasons[i] = r; usage[i] = u; lock.unlock() }
}

/// Event lines from any thread, in arrival order.
private final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [String] = []
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return seen }
    /// Adds `line`; true when it was not there before.
    @discardableResult
    func add(_ line: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let new = !seen.contains(line)
        seen.append(line)
        return new
    }
}

private final class HandleBox: @unchecked Sendable {
    private let lock = NSLock()
    private let set = DispatchSemaphore(value: 0)
    private var h: GenerationHandle?
    var handle: GenerationHandle? {
        get { lock.lock(); defer { lock.unlock() }; return h }
        set { lock.lock(); h = newValue; lock.unlock(); set.signal() }
    }
    /// The handle, waiting for `submit` to have returned it (the first event can come before that).
    func waitForHandle() -> GenerationHandle {
        if let h = handle { return h }
        set.wait()
        set.signal()
        return handle!
    }
}

/// A locked countdown.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int
    init(_ value: Int) { self.value = value }
    func decrement() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value -= 1
        return value
    }
}
