import Foundation
import CKernels
import Compute
import XCTest

/// A flag shared by the threads of a job (set once per job by the first worker chunk).
private final class JoinFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func reset() { lock.lock(); value = false; lock.unlock() }
    /// Sets the flag; true when this call set it.
    func set() -> Bool { lock.lock(); defer { lock.unlock() }; if value { return false }; value = true; return true }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

final class ThreadPoolTests: XCTestCase {
    func testParallelForCoversEveryIndexOnce() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threads: threads, spinIterations: 100)
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: 1000)
            let owners = UnsafeMutablePointer<Int>.allocate(capacity: 1000)
            defer { hits.deallocate(); owners.deallocate() }
            hits.initialize(repeating: 0, count: 1000)
            for round in 0..<300 {
                let count = 1 + round * 7 % 1000
                pool.parallelFor(count, chunk: 1 + round % 13) { range, participant in
                    precondition(participant >= 0 && participant < threads)
                    for i in range { hits[i] += 1; owners[i] = participant }
                }
                for i in 0..<1000 { XCTAssertEqual(hits[i], i < count ? 1 : 0, "threads \(threads) round \(round) index \(i)") ; hits[i] = 0 }
            }
        }
    }

    func testWorkersShareTheWork() {
        let pool = ThreadPool(threads: 2, soloJobsAfterStall: 0)
        let owners = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        defer { owners.deallocate() }
        var sawWorker = false
        let deadline = Date().addingTimeInterval(20)  // bounded in time, not in tries: a loaded machine is slow
        while !sawWorker && Date() < deadline {
            owners.initialize(repeating: -1, count: 64)
            pool.forEach(64) { i, participant in
                var x = 0.0
                for k in 0..<20_000 { x += Double(k) }   // enough work for the worker to join
                owners[i] = x > 0 ? participant : participant
            }
            sawWorker = (0..<64).contains { owners[$0] == 1 }
            XCTAssertFalse((0..<64).contains { owners[$0] == -1 })
        }
        XCTAssertTrue(sawWorker, "the worker thread never took a chunk")
    }

    /// Runs `rounds` jobs of 16 one-index chunks; in the rounds of `stallRounds` the worker's first chunk sleeps 5 ms
    /// (a descheduled worker, as the caller sees it). The caller's first chunk waits (≤ 1 s) until the worker has
    /// joined, so the stall happens even when the worker was parked. Every job must cover every index once.
    private func runJobs(_ pool: ThreadPool, rounds: Int, stallRounds: Set<Int>) {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        let joined = JoinFlag()
        defer { hits.deallocate() }
        for round in 0..<rounds {
            hits.initialize(repeating: 0, count: 16)
            joined.reset()
            let stall = stallRounds.contains(round)
            pool.parallelFor(16, chunk: 1) { range, participant in
                if participant == 1, stall, joined.set() { usleep(5_000) }
                if participant == 0, stall {
                    let deadline = DispatchTime.now().uptimeNanoseconds + 1_000_000_000
                    while !joined.isSet && DispatchTime.now().uptimeNanoseconds < deadline { usleep(20) }
                }
                for i in range { hits[i] += 1 }
            }
            for i in 0..<16 { XCTAssertEqual(hits[i], 1, "round \(round) index \(i)") }
        }
    }

    func testSingleStallKeepsThePool() {
        // One late worker is not contention: the following jobs still use both threads.
        let pool = ThreadPool(threads: 2, spinIterations: 100, soloJobsAfterStall: 3)
        runJobs(pool, rounds: 6, stallRounds: [0])
        XCTAssertEqual(pool.stallCount, 1)
        XCTAssertEqual(pool.soloJobsRun, 0)
    }

    func testRepeatedStallsSwitchToSoloJobsAndResultsStayCorrect() {
        // Three stalls within the window look like a worker that keeps losing its core: the next jobs run on the
        // calling thread alone (3 of them here), and every job still covers every index once.
        let pool = ThreadPool(threads: 2, spinIterations: 100, soloJobsAfterStall: 3)
        runJobs(pool, rounds: 8, stallRounds: [0, 1, 2])
        XCTAssertEqual(pool.stallCount, 3)
        XCTAssertEqual(pool.soloJobsRun, 3)
    }

    func testChunksTileTheRange() {
        for total in [0, 1, 7, 64, 1001] {
            for parts in 1...5 {
                var covered = 0
                for i in 0..<parts {
                    let r = ThreadPool.chunk(total, parts: parts, index: i, align: 4)
                    XCTAssertEqual(r.lowerBound, covered)
                    covered = r.upperBound
                }
                XCTAssertEqual(covered, total)
            }
        }
    }

    func testParkedWorkersWakeUp() {
        let pool = ThreadPool(threads: 2, spinIterations: 10)
        let out = UnsafeMutablePointer<Int>.allocate(capacity: 8)
        defer { out.deallocate() }
        for round in 0..<5 {
            usleep(20_000)   // long enough for the worker to park
            out.initialize(repeating: -1, count: 8)
            pool.forEach(8) { i, _ in out[i] = round }
            for i in 0..<8 { XCTAssertEqual(out[i], round) }
        }
    }

    func testMatmulOnPoolMatchesSingleThreadedReference() {
        var rng = TestRNG(state: 21)
        let rows = 70, n = 96, tokens = 9
        let wf = rng.floats(rows * n), x = rng.floats(tokens * n)
        var wq = [UInt8](repeating: 0, count: rows * WeightType.q8_0.rowBytes(n))
        wq.withUnsafeMutableBytes { raw in
            for r in 0..<rows { ck_quantize_row_q8_0(Array(wf[(r * n)..<((r + 1) * n)]), raw.baseAddress! + r * WeightType.q8_0.rowBytes(n), Int64(n)) }
        }
        let pool = ThreadPool(threads: 3)
        let mm = Matmul(pool: pool, maxTokens: 16, maxInDim: n)
        var y0 = [Float](repeating: 0, count: tokens * rows), y1 = y0
        wq.withUnsafeBytes { wp in
            let w = WeightMatrix(type: .q8_0, data: wp.baseAddress!, rows: rows, cols: n)
            mm(x, numTokens: tokens, w, &y0, w, &y1)
            // Single-threaded reference: dequantized weights · quantized-then-dequantized activations.
            var wd = [Float](repeating: 0, count: n), xq = [UInt8](repeating: 0, count: WeightType.q8_0.rowBytes(n))
            var xd = [Float](repeating: 0, count: n)
            for t in 0..<tokens {
                ck_quantize_row_q8_0(Array(x[(t * n)..<((t + 1) * n)]), &xq, Int64(n))
                xq.withUnsafeBytes { ck_dequantize_row(8, $0.baseAddress!, &xd, Int64(n)) }
                for r in 0..<rows {
                    w.dequantizeRow(r, into: &wd)
                    var s: Float = 0
                    for i in 0..<n { s += wd[i] * xd[i] }
                    XCTAssertEqual(y0[t * rows + r], s, accuracy: 1e-3)
                    XCTAssertEqual(y1[t * rows + r], y0[t * rows + r], accuracy: 1e-5)
                }
            }
        }
    }
}
