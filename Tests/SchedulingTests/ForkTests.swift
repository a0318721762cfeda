import XCTest
@testable import Scheduling

/// `n > 1`: one prefill, then the block table is forked (full blocks shared, the partial last block copied).
final class ForkTests: XCTestCase {
    private func scheduler(blocks: Int = 16) -> Scheduler {
        Scheduler(config: SchedulerConfig(maxNumSeqs: 4, maxNumBatchedTokens: 64, blockSize: 4, numBlocks: blocks,
                                          maxModelLen: 64, stopTokenIds: [2]))
    }

    func testForkSharesFullBlocksAndCopiesThePartialOne() throws {
        var s = scheduler()
        try s.add(id: 1, promptTokens: [5, 6, 7, 8, 9, 10], maxNewTokens: 8, forks: 2)
        let prefill = s.schedule()
        XCTAssertEqual(prefill.scheduled.map(\.tokenIds.count), [6])
        s.update(after: prefill, sampled: [1: 11])
        let parentTable = s.request(1)!.blockIds
        XCTAssertEqual(parentTable.count, 2)
        let f2 = s.fork(parent: 1, child: 2, sampled: 12)!
        let f3 = s.fork(parent: 1, child: 3, sampled: 2)!   // its first token is the stop token
        XCTAssertNil(s.fork(parent: 1, child: 4, sampled: 12))  // only two forks were asked for
        XCTAssertEqual(f2.copy?.from, parentTable[1])
        XCTAssertNil(f2.finish)
        XCTAssertEqual(f3.finish, .stop)
        let child = s.request(2)!
        XCTAssertEqual(child.blockIds[0], parentTable[0])          // full block shared
        XCTAssertNotEqual(child.blockIds[1], parentTable[1])       // partial block copied
        XCTAssertEqual(child.blockIds[1], f2.copy?.to)
        XCTAssertEqual(child.tokens, [5, 6, 7, 8, 9, 10, 12])
        XCTAssertEqual(child.numComputedTokens, 6)
        XCTAssertEqual(s.kv.pool.numUsedBlocks, 2 + 1 + 1)
        s.finish(id: 3, reason: .stop)
        // The next step decodes one token per sequence: no child recomputes the prompt.
        let decode = s.schedule()
        XCTAssertEqual(Set(decode.scheduled.map(\.requestId)), [1, 2])
        XCTAssertEqual(decode.scheduled.map(\.tokenIds.count), [1, 1])
        s.update(after: decode, sampled: [1: 13, 2: 14])
        s.finish(id: 1, reason: .stop)
        XCTAssertEqual(s.request(2)!.blockIds[0], parentTable[0])  // still held by the child
        s.finish(id: 2, reason: .stop)
        XCTAssertEqual(s.kv.pool.numFreeBlocks, 16)
    }

    func testForkOfABlockAlignedPromptCopiesNothing() throws {
        var s = scheduler()
        try s.add(id: 1, promptTokens: [5, 6, 7, 8], maxNewTokens: 1, forks: 1)
        let out = s.schedule()
        s.update(after: out, sampled: [1: 11])
        let f = s.fork(parent: 1, child: 2, sampled: 12)!
        XCTAssertNil(f.copy)
        XCTAssertEqual(f.finish, .length)   // max_tokens 1: the first token is the last
        XCTAssertEqual(s.request(2)!.blockIds, s.request(1)!.blockIds)
    }

    func testForksReserveRunningSlots() throws {
        var s = scheduler()
        try s.add(id: 1, promptTokens: [5, 6, 7], maxNewTokens: 4, forks: 3)   // fills all 4 slots
        try s.add(id: 10, promptTokens: [5, 6], maxNewTokens: 4)
        let out = s.schedule()
        XCTAssertEqual(out.scheduled.map(\.requestId), [1])   // 10 waits: the forks hold the other slots
        s.update(after: out, sampled: [1: 11])
        for c in 2...4 { XCTAssertNotNil(s.fork(parent: 1, child: c, sampled: 12)) }
        XCTAssertEqual(s.numRunning, 4)
        s.finish(id: 3, reason: .stop)
        let next = s.schedule()
        XCTAssertEqual(Set(next.scheduled.map(\.requestId)), [1, 2, 4, 10])
    }

    func testWithoutAFreeBlockTheChildRecomputesThePartialBlock() throws {
        var s = scheduler(blocks: 2)
        try s.add(id: 1, promptTokens: [5, 6, 7, 8, 9, 10], maxNewTokens: 2, forks: 1)
        let out = s.schedule()
        s.update(after: out, sampled: [1: 11])
        let f = s.fork(parent: 1, child: 2, sampled: 12)!
        XCTAssertNil(f.copy)
        XCTAssertEqual(s.request(2)!.numComputedTokens, 4)
        XCTAssertEqual(s.request(2)!.blockIds, [s.request(1)!.blockIds[0]])
    }
}

/// Prompt log-probabilities (`echo` with `logprobs`): every prompt position's logits, in chunks of at most
/// `SchedulerConfig.promptLogitsRows`, never from the prefix cache.
final class PromptLogitsTests: XCTestCase {
    func testPromptIsChunkedWithAllLogitsAndSkipsThePrefixCache() throws {
        var s = Scheduler(config: SchedulerConfig(maxNumSeqs: 4, maxNumBatchedTokens: 512, blockSize: 4, numBlocks: 64,
                                                  maxModelLen: 128))
        let prompt = (0..<70).map { Int32(100 + $0) }
        // A first request puts the prompt's blocks in the prefix cache.
        try s.add(id: 1, promptTokens: prompt, maxNewTokens: 1)
        var out = s.schedule()
        XCTAssertEqual(out.scheduled.map(\.allLogits), [false])
        s.update(after: out, sampled: [1: 5])
        s.finish(id: 1, reason: .length)
        try s.add(id: 2, promptTokens: prompt, maxNewTokens: 2, promptLogprobs: true)
        try s.add(id: 3, promptTokens: [7, 8], maxNewTokens: 2, promptLogprobs: true)
        var chunks: [Int] = []
        for _ in 0..<3 {
            out = s.schedule()
            let mine = out.scheduled.first { $0.requestId == 2 }!
            XCTAssertTrue(mine.allLogits)
            XCTAssertEqual(mine.startPosition, chunks.reduce(0, +))
            chunks.append(mine.tokenIds.count)
            // Request 3 waits while request 2 holds this step's prompt-logits rows.
            XCTAssertLessThanOrEqual(out.scheduled.filter(\.allLogits).map(\.tokenIds.count).reduce(0, +),
                                     SchedulerConfig.promptLogitsRows)
            var sampled: [Int: Int32] = [:]
            for x in out.scheduled where x.samplesToken { sampled[x.requestId] = 5 }
            s.update(after: out, sampled: sampled)
        }
        XCTAssertEqual(chunks, [32, 32, 6])
        XCTAssertEqual(s.request(2)!.numCachedTokens, 0)
        let decode = s.schedule()
        XCTAssertEqual(decode.scheduled.first { $0.requestId == 2 }?.allLogits, false)
    }
}
