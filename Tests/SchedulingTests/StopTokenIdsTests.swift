import XCTest
@testable import Scheduling

/// vLLM's `stop_token_ids`: a request's own stop tokens end it with `.stop`, even with `ignore_eos`.
final class StopTokenIdsTests: XCTestCase {
    private func run(ignoreEOS: Bool, stopTokenIds: Set<Int32>, sampling tokens: [Int32]) throws -> (FinishReason?, Int) {
        var s = Scheduler(config: SchedulerConfig(maxNumSeqs: 2, maxNumBatchedTokens: 64, blockSize: 4, numBlocks: 16,
                                                  maxModelLen: 64, stopTokenIds: [2]))
        try s.add(id: 1, promptTokens: [1, 1, 1], maxNewTokens: 10, ignoreEOS: ignoreEOS, stopTokenIds: stopTokenIds)
        for t in tokens {
            let out = s.schedule()
            let done = s.update(after: out, sampled: [1: t])
            if let r = done[1] { return (r, s.request(1)!.numOutputTokens) }
        }
        return (nil, s.request(1)!.numOutputTokens)
    }

    func testOwnStopTokenEndsTheRequest() throws {
        let (reason, n) = try run(ignoreEOS: false, stopTokenIds: [9], sampling: [5, 6, 9, 5])
        XCTAssertEqual(reason, .stop)
        XCTAssertEqual(n, 3)
    }

    func testOwnStopTokenEndsEvenWithIgnoreEOS() throws {
        let (r1, n1) = try run(ignoreEOS: true, stopTokenIds: [9], sampling: [2, 5, 9, 5])
        XCTAssertEqual(r1, .stop)
        XCTAssertEqual(n1, 3)   // the end-of-generation token 2 did not end it
        let (r2, _) = try run(ignoreEOS: false, stopTokenIds: [], sampling: [5, 9, 5])
        XCTAssertNil(r2)        // 9 is nobody's stop token here
    }
}
