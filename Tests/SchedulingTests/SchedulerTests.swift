import XCTest
@testable import Scheduling

final class SchedulerTests: XCTestCase {
    private func config(seqs: Int = 4, budget: Int = 64, block: Int = 4, blocks: Int = 64, maxLen: Int = 256) -> SchedulerConfig {
        SchedulerConfig(maxNumSeqs: seqs, maxNumBatchedTokens: budget, blockSize: block, numBlocks: blocks, maxModelLen: maxLen)
    }

    /// Runs a step and appends token 7 to every sequence that samples.
    @discardableResult
    private func step(_ s: inout Scheduler) -> SchedulerOutput {
        let out = s.schedule()
        var sampled: [Int: Int32] = [:]
        for x in out.scheduled where x.samplesToken { sampled[x.requestId] = 7 }
        s.update(after: out, sampled: sampled)
        return out
    }

    func testPrefillThenDecode() throws {
        var s = Scheduler(config: config())
        try s.add(id: 1, promptTokens: [1, 2, 3, 4, 5], maxNewTokens: 3)
        let o1 = step(&s)
        XCTAssertEqual(o1.scheduled.map(\.tokenIds), [[1, 2, 3, 4, 5]])
        XCTAssertEqual(o1.scheduled[0].startPosition, 0)
        XCTAssertTrue(o1.scheduled[0].samplesToken)
        XCTAssertEqual(o1.scheduled[0].blockTable.count, 2)
        let o2 = step(&s)
        XCTAssertEqual(o2.scheduled.map(\.tokenIds), [[7]])
        XCTAssertEqual(o2.scheduled[0].startPosition, 5)
        XCTAssertEqual(s.request(1)?.tokens, [1, 2, 3, 4, 5, 7, 7])
        XCTAssertTrue(s.finish(id: 1, reason: .stop))
        XCTAssertEqual(s.kv.pool.numFreeBlocks, 64)
        XCTAssertFalse(s.hasWork)
    }

    func testChunkedPrefillMixesWithDecode() throws {
        var s = Scheduler(config: config(budget: 8))
        try s.add(id: 1, promptTokens: [1, 2], maxNewTokens: 10)
        step(&s)  // prefill of 1 (2 tokens), sampled
        try s.add(id: 2, promptTokens: Array(repeating: 3, count: 20), maxNewTokens: 2)
        let o = step(&s)
        XCTAssertEqual(o.scheduled.map(\.requestId), [1, 2])
        XCTAssertEqual(o.scheduled.map { $0.tokenIds.count }, [1, 7])
        XCTAssertEqual(o.scheduled.map(\.samplesToken), [true, false])
        let o2 = step(&s)
        XCTAssertEqual(o2.scheduled.map { $0.tokenIds.count }, [1, 7])
        XCTAssertEqual(o2.scheduled[1].startPosition, 7)
        let o3 = step(&s)
        XCTAssertEqual(o3.scheduled.map { $0.tokenIds.count }, [1, 6])
        XCTAssertEqual(o3.scheduled.map(\.samplesToken), [true, true])
        XCTAssertLessThanOrEqual(o3.numBatchedTokens, 8)
    }

    func testMaxNumSeqsAndPriority() throws {
        var s = Scheduler(config: config(seqs: 2))
        try s.add(id: 1, promptTokens: [1], maxNewTokens: 5, priority: 5)
        try s.add(id: 2, promptTokens: [1], maxNewTokens: 5, priority: 5)
        try s.add(id: 3, promptTokens: [1], maxNewTokens: 5, priority: 0)
        let o = step(&s)
        XCTAssertEqual(o.scheduled.map(\.requestId), [3, 1])
        XCTAssertEqual(s.numRunning, 2)
        XCTAssertEqual(s.numWaiting, 1)
    }

    func testPreemptionByRecomputeWhenBlocksRunOut() throws {
        // 3 blocks of 4 tokens: two requests of 4-token prompts fill 2 blocks, growth needs more.
        var s = Scheduler(config: config(block: 4, blocks: 3, maxLen: 12))
        try s.add(id: 1, promptTokens: [1, 1, 1, 1], maxNewTokens: 8)
        try s.add(id: 2, promptTokens: [2, 2, 2, 2], maxNewTokens: 8)
        step(&s)  // both prefilled: 2 blocks; each has 5 tokens now
        let o = step(&s)  // both need a second block: only one is free -> request 2 is preempted
        XCTAssertEqual(o.preempted, [2])
        XCTAssertEqual(o.scheduled.map(\.requestId), [1])
        XCTAssertEqual(s.request(2)?.status, .preempted)
        XCTAssertEqual(s.request(2)?.numComputedTokens, 0)
        XCTAssertEqual(s.request(2)?.tokens, [2, 2, 2, 2, 7], "generated tokens are kept and recomputed")
        XCTAssertEqual(s.numPreemptions, 1)
        s.finish(id: 1, reason: .stop)
        let o2 = step(&s)
        XCTAssertEqual(o2.scheduled.map(\.tokenIds), [[2, 2, 2, 2, 7]], "recompute of the whole sequence")
        XCTAssertEqual(s.kv.pool.numFreeBlocks, 1)
    }

    func testTooLargeIsRejectedAndAbortFreesBlocks() throws {
        var s = Scheduler(config: config(blocks: 4, maxLen: 100))
        XCTAssertThrowsError(try s.add(id: 1, promptTokens: Array(repeating: 1, count: 10), maxNewTokens: 10)) {
            XCTAssertEqual($0 as? SchedulingError, .requestTooLarge(needed: 20, limit: 16))
        }
        try s.add(id: 2, promptTokens: Array(repeating: 1, count: 10), maxNewTokens: 2)
        XCTAssertThrowsError(try s.add(id: 2, promptTokens: [1], maxNewTokens: 1))
        step(&s)
        XCTAssertEqual(s.kv.pool.numFreeBlocks, 1)
        XCTAssertEqual(s.kvCacheUsage, 0.75)
        XCTAssertTrue(s.finish(id: 2, reason: .abort))
        XCTAssertEqual(s.kv.pool.numFreeBlocks, 4)
        XCTAssertFalse(s.finish(id: 2, reason: .abort))
    }

    func testBlockPoolHandsOutEachBlockOnce() {
        var p = BlockPool(numBlocks: 8)
        let a = p.allocate(5)!
        XCTAssertNil(p.allocate(4))
        let b = p.allocate(3)!
        XCTAssertEqual(Set(a + b).count, 8)
        p.release(a)
        XCTAssertEqual(p.numFreeBlocks, 5)
    }
}
