// A STREAM-style memory read-bandwidth probe (McCalpin, "STREAM: Sustainable Memory Bandwidth in High
// Performance Computers"; here a read-only sum kernel, the access pattern of a decode step that streams the
// weights once). The buffer is split into one contiguous slice per thread; all threads start together and the
// time of a pass is from the start signal until the last thread finishes.
import CKernels
import Compute
import Foundation

/// Result of one probe at one thread count.
struct BandwidthResult {
    /// Threads reading in parallel.
    let threads: Int
    /// Buffer size, bytes.
    let bytes: Int
    /// Best (shortest) pass, nanoseconds — STREAM reports the best of its repetitions.
    let bestNs: UInt64
    /// Median pass, nanoseconds.
    let medianNs: UInt64

    /// Read bandwidth of the best pass, GB/s (10^9 bytes per second).
    var bestGBps: Double { Double(bytes) / Double(bestNs) }
    /// Read bandwidth of the median pass, GB/s.
    var medianGBps: Double { Double(bytes) / Double(medianNs) }
}

/// Errors of the bandwidth probe.
enum BandwidthError: Error, CustomStringConvertible {
    /// The sum over the buffer differs from the known fill: the kernel did not read every byte.
    case checksum(expected: UInt64, actual: UInt64)
    /// The probe buffer could not be mapped.
    case allocation(bytes: Int)

    var description: String {
        switch self {
        case .checksum(let e, let a): return "bandwidth probe read a wrong checksum (expected \(e), got \(a))"
        case .allocation(let n): return "bandwidth probe could not map \(n) bytes"
        }
    }
}

/// Sums `count` 64-bit words with the C read loop (`ck_read_sum`: 32-byte AVX2 loads, four accumulators).
/// A Swift SIMD loop here compiled to 16-byte loads and read ~24 GB/s where the machine sustains ~60.
@inline(__always)
func sumWords(_ p: UnsafePointer<UInt64>, _ count: Int) -> UInt64 {
    precondition(count % 16 == 0, "slice must be a multiple of 128 bytes")
    return ck_read_sum(p, count * 8)
}

/// Scalar twin of `sumWords` for checking it.
func sumWords_ref(_ p: UnsafePointer<UInt64>, _ count: Int) -> UInt64 { ck_read_sum_ref(p, count * 8) }

/// The buffer and per-thread sums, shared with the reader threads (each thread writes only its own sum slot,
/// and the semaphores order those writes before the calling thread's reads).
private struct ProbePointers: @unchecked Sendable {
    let words: UnsafePointer<UInt64>
    let results: UnsafeMutablePointer<UInt64>
}

/// Reader threads over one buffer; `measure` runs timed passes.
final class BandwidthProbe: @unchecked Sendable {
    let bytes: Int
    private let words: UnsafeMutablePointer<UInt64>
    private let count: Int
    private let mapped: Int

    /// Allocates and fills `bytes` (rounded down to 128 bytes) with a known pattern (touching every page). The
    /// buffer is in huge-page memory like the weights decode streams (`WeightRepacker`), so the probe and the
    /// roofline see the same TLB behaviour.
    init(bytes: Int) throws {
        count = bytes / 128 * 16
        self.bytes = count * 8
        mapped = HugePageMemory.roundUp(max(self.bytes, 1))
        guard let p = HugePageMemory.allocate(mapped) else { throw BandwidthError.allocation(bytes: mapped) }
        words = p.bindMemory(to: UInt64.self, capacity: count)
        for i in 0..<count { words[i] = UInt64(i & 0xFF) }
    }

    deinit { HugePageMemory.free(UnsafeMutableRawPointer(words), mapped) }

    /// Expected sum of the fill pattern.
    private var expectedSum: UInt64 {
        var s: UInt64 = 0
        for i in 0..<count { s &+= UInt64(i & 0xFF) }
        return s
    }

    /// `passes` timed passes over the whole buffer with `threads` threads (after one untimed warm-up pass).
    /// - Throws: `BandwidthError.checksum` when the kernel's sum is wrong.
    func measure(threads: Int, passes: Int) throws -> BandwidthResult {
        precondition(threads >= 1 && passes >= 1)
        let per = (count / threads) / 16 * 16
        let slices: [(Int, Int)] = (0..<threads).map { t in
            let start = t * per
            return (start, t == threads - 1 ? count - start : per)
        }
        let results = UnsafeMutablePointer<UInt64>.allocate(capacity: threads)
        defer { results.deallocate() }
        let start = (0..<threads).map { _ in DispatchSemaphore(value: 0) }
        let done = DispatchSemaphore(value: 0)
        let shared = ProbePointers(words: UnsafePointer(self.words), results: results)
        let words = shared.words
        // Workers 1..<threads run on their own threads; the calling thread is worker 0.
        for t in 1..<max(1, threads) {
            let (s, n) = slices[t]
            let sem = start[t]
            let th = Thread {
                for _ in 0...passes {
                    sem.wait()
                    shared.results[t] = sumWords(shared.words + s, n)
                    done.signal()
                }
            }
            th.stackSize = 1 << 20
            th.start()
        }
        var samples: [UInt64] = []
        var firstSum: UInt64 = 0
        for pass in 0...passes {
            let t0 = monotonicNanoseconds()
            for t in 1..<max(1, threads) { start[t].signal() }
            results[0] = sumWords(words + slices[0].0, slices[0].1)
            for _ in 1..<max(1, threads) { done.wait() }
            let dt = monotonicNanoseconds() - t0
            if pass > 0 { samples.append(dt) }
            if pass == 0 { for t in 0..<threads { firstSum &+= results[t] } }
        }
        // The SIMD kernel must agree with its scalar twin and with the fill pattern.
        let expected = expectedSum
        if firstSum != expected { throw BandwidthError.checksum(expected: expected, actual: firstSum) }
        let probe = min(count, 1 << 16)
        let simd = sumWords(words, probe), scalar = sumWords_ref(words, probe)
        if simd != scalar { throw BandwidthError.checksum(expected: scalar, actual: simd) }
        let sorted = samples.sorted()
        return BandwidthResult(threads: threads, bytes: bytes, bestNs: sorted[0], medianNs: sorted[sorted.count / 2])
    }
}
