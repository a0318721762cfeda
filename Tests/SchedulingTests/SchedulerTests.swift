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
        XCTAssertEqual(o2.scheduled.map(\.tokenIds), [[7]], "its full first block is still cached: only the rest is recomputed")
        XCTAssertEqual(o2.scheduled[0].startPosition, 4)
        XCTAssertEqual(s.kv.pool.numFreeBlocks, 1)
        var noCache = Scheduler(config: SchedulerConfig(maxNumSeqs: 4, maxNumBatchedTokens: 64, blockSize: 4, numBlocks: 3,
                                                        maxModelLen: 12, enablePrefixCaching: false))
        try noCache.add(id: 1, promptTokens: [1, 1, 1, 1], maxNewTokens: 8)
        try noCache.add(id: 2, promptTokens: [2, 2, 2, 2], maxNewTokens: 8)
        step(&noCache)
        XCTAssertEqual(step(&noCache).preempted, [2])
        noCache.finish(id: 1, reason: .stop)
        XCTAssertEqual(step(&noCache).scheduled.map(\.tokenIds), [[2, 2, 2, 2, 7]], "without caching: the whole sequence")
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

    func testPrefixCacheReusesFullBlocksOfASharedPrefix() throws {
        var s = Scheduler(config: config(block: 4, blocks: 16))
        let system: [Int32] = [9, 8, 7, 6, 5, 4, 3, 2, 1]  // two full blocks + 1
        try s.add(id: 1, promptTokens: system + [100, 101], maxNewTokens: 4)
        step(&s)
        XCTAssertEqual(s.request(1)?.numCachedTokens, 0)
        try s.add(id: 2, promptTokens: system + [200, 201, 202], maxNewTokens: 4)
        let o = step(&s)
        let second = o.scheduled.first { $0.requestId == 2 }!
        XCTAssertEqual(second.startPosition, 8, "two full blocks come from the cache")
        XCTAssertEqual(second.tokenIds, [1, 200, 201, 202])
        XCTAssertEqual(s.request(2)?.numCachedTokens, 8)
        XCTAssertEqual(Array(second.blockTable.prefix(2)), Array(s.request(1)!.blockIds.prefix(2)), "shared blocks")
        // Both finish: the shared blocks stay cached (free but reusable) and usage drops to zero.
        s.finish(id: 1, reason: .stop)
        s.finish(id: 2, reason: .stop)
        XCTAssertEqual(s.kvCacheUsage, 0)
        try s.add(id: 3, promptTokens: system + [100, 101, 7, 7, 7], maxNewTokens: 2)
        // Request 1's third block [1, 100, 101, 7] (a generated token included) was cached too: a follow-up turn
        // reuses all three.
        let o3 = step(&s)
        XCTAssertEqual(o3.scheduled[0].startPosition, 12)
        XCTAssertEqual(s.request(3)?.numCachedTokens, 12)
        // A prompt that is exactly full blocks keeps its last block to compute (its logits are needed).
        try s.add(id: 4, promptTokens: Array(system.prefix(8)), maxNewTokens: 2)
        let o4 = step(&s).scheduled.first { $0.requestId == 4 }!
        XCTAssertEqual(o4.startPosition, 4)
    }

    func testLRUEvictionOfCachedBlocks() {
        var p = BlockPool(numBlocks: 3, blockSize: 2)
        let a = p.allocate(3)!
        var parent: UInt64 = 0
        for (i, b) in a.enumerated() { parent = p.register(b, parent: parent, tokens: [Int32(i), Int32(i)][...]) }
        p.release([a[0]])
        p.release([a[1]])
        p.release([a[2]])
        XCTAssertEqual(p.numFreeBlocks, 3)
        // Allocation evicts the least recently freed first: a[0].
        XCTAssertEqual(p.allocate(1), [a[0]])
        XCTAssertEqual(p.acquireCachedPrefix([0, 0, 1, 1], maxTokens: 4).blocks, [], "the chain's first block is gone")
        let t = p.acquireCachedPrefix([0, 0, 1, 1], maxTokens: 4)
        XCTAssertTrue(t.blocks.isEmpty)
    }

    func testHashCollisionsAreCheckedAgainstTokens() {
        var p = BlockPool(numBlocks: 2, blockSize: 2)
        let a = p.allocate(1)!
        p.register(a[0], parent: 0, tokens: [1, 2][...])
        XCTAssertEqual(p.acquireCachedPrefix([1, 2, 3], maxTokens: 2).blocks, a)
        XCTAssertEqual(p.acquireCachedPrefix([2, 1, 3], maxTokens: 2).blocks, [])
    }

    func testBlockPoolHandsOutEachBlockOnce() {
        var p = BlockPool(numBlocks: 8, blockSize: 4)
        let a = p.allocate(5)!
        XCTAssertNil(p.allocate(4))
        let b = p.allocate(3)!
        XCTAssertEqual(Set(a + b).count, 8)
        p.release(a)
        XCTAssertEqual(p.numFreeBlocks, 5)
    }
}
