// Request-latency histograms and counters the engine thread records and `/metrics` reads (vLLM's
// `vllm/v1/metrics/loggers.py` families and bucket bounds).
import Atomics

/// A fixed-bucket histogram of durations in seconds, recorded by one thread without a lock or an allocation and
/// read by any: every bucket and the sum (integer nanoseconds) are relaxed atomics. A reader may see a recording
/// half done (the sum one observation apart from the buckets); each value is whole and only grows.
public final class LatencyHistogram: @unchecked Sendable {
    /// Bucket upper bounds, seconds, ascending; an implicit `+Inf` bucket follows.
    public let upperBounds: [Double]
    private let storage: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>  // [upperBounds.count + 1] counts, then the sum (ns)

    /// An empty histogram over `upperBounds` (seconds, ascending).
    public init(upperBounds: [Double]) {
        precondition(zip(upperBounds, upperBounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds must ascend")
        self.upperBounds = upperBounds
        storage = .allocate(capacity: upperBounds.count + 2)
        for i in 0..<(upperBounds.count + 2) { (storage + i).initialize(to: .init(0)) }
    }

    deinit {
        storage.deinitialize(count: upperBounds.count + 2)
        storage.deallocate()
    }

    /// Records one duration of `nanoseconds`.
    public func observe(nanoseconds: UInt64) {
        let seconds = Double(nanoseconds) / 1e9
        var b = 0
        while b < upperBounds.count && seconds > upperBounds[b] { b += 1 }
        UnsafeAtomic<Int>(at: storage + b).wrappingIncrement(ordering: .relaxed)
        UnsafeAtomic<Int>(at: storage + upperBounds.count + 1).wrappingIncrement(by: Int(clamping: nanoseconds), ordering: .relaxed)
    }

    /// The counts per bucket (not cumulative; `upperBounds.count + 1` of them, the last `+Inf`) and the sum in
    /// seconds, read now.
    public func snapshot() -> (counts: [Int], sum: Double) {
        let counts = (0...upperBounds.count).map { UnsafeAtomic<Int>(at: storage + $0).load(ordering: .relaxed) }
        let sum = UnsafeAtomic<Int>(at: storage + upperBounds.count + 1).load(ordering: .relaxed)
        return (counts, Double(sum) / 1e9)
    }
}

/// The engine's request metrics (names as vLLM's, under `sputnik:` in `/metrics`). Written on the engine thread
/// (and by `submit` for rejections) without locks; read from any thread.
public final class EngineMetrics: Sendable {
    /// Arrival (`submit`) to the first sampled token: `time_to_first_token_seconds`.
    public let timeToFirstToken = LatencyHistogram(upperBounds: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                                                                 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0])
    /// Between consecutive sampled tokens of a request: `inter_token_latency_seconds`.
    public let interTokenLatency = LatencyHistogram(upperBounds: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                                                                  1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0])
    /// Arrival to finish (stop or length; aborted requests are not recorded): `e2e_request_latency_seconds`.
    public let e2eRequestLatency = LatencyHistogram(upperBounds: EngineMetrics.requestLatencyBounds)
    /// Arrival to the first step that schedules the request: `request_queue_time_seconds`.
    public let requestQueueTime = LatencyHistogram(upperBounds: EngineMetrics.requestLatencyBounds)
    /// Prompt tokens looked up in the prefix cache (every finished request's prompt while caching is on).
    public let prefixCacheQueries = ManagedAtomic<Int>(0)
    /// Of those, tokens whose KV came from the cache.
    public let prefixCacheHits = ManagedAtomic<Int>(0)
    /// Requests `submit` refused because the waiting queue was full.
    public let rejectedQueueFull = ManagedAtomic<Int>(0)
    /// Requests `submit` refused because the prompt plus `max_tokens` exceeds the context.
    public let rejectedContextLength = ManagedAtomic<Int>(0)

    /// vLLM's `request_latency_buckets`, seconds.
    public static let requestLatencyBounds = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                                              120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]

    /// Empty histograms, zero counters.
    public init() {}
}
