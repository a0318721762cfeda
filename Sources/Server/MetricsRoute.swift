import Engine
import Foundation
import HTTPServer
import Prometheus

/// `GET /metrics`: Prometheus text format, names as vLLM's with the `sputnik:` prefix.
///
/// Gauges are read from the engine at scrape time; counters advance by what the engine counted since the last
/// scrape, so a scrape never touches the engine thread.
final class ServerMetrics: @unchecked Sendable {
    /// The registry; `sputnik serve` also bootstraps swift-metrics with it.
    let registry = PrometheusCollectorRegistry()
    private let running, waiting, kvUsage: Gauge
    private let promptTokens, generationTokens, preemptions, finished, cachedTokens: Counter
    private let lock = NSLock()
    private var last: EngineStats?

    init() {
        running = registry.makeGauge(descriptor: .init(metricName: "sputnik:num_requests_running", unitName: "", helpText: "Requests in the running batch."))
        waiting = registry.makeGauge(descriptor: .init(metricName: "sputnik:num_requests_waiting", unitName: "", helpText: "Requests waiting to be scheduled."))
        kvUsage = registry.makeGauge(descriptor: .init(metricName: "sputnik:kv_cache_usage_perc", unitName: "", helpText: "Fraction of KV cache blocks in use, 0-1."))
        promptTokens = registry.makeCounter(descriptor: .init(metricName: "sputnik:prompt_tokens", unitName: "total", helpText: "Prompt tokens of finished requests."))
        generationTokens = registry.makeCounter(descriptor: .init(metricName: "sputnik:generation_tokens", unitName: "total", helpText: "Generated tokens of finished requests."))
        preemptions = registry.makeCounter(descriptor: .init(metricName: "sputnik:num_preemptions", unitName: "total", helpText: "Requests preempted (KV blocks ran out)."))
        finished = registry.makeCounter(descriptor: .init(metricName: "sputnik:request_finished", unitName: "total", helpText: "Requests finished, any reason."))
        cachedTokens = registry.makeCounter(descriptor: .init(metricName: "sputnik:prefix_cache_hit_tokens", unitName: "total", helpText: "Prompt tokens served from the prefix cache."))
    }

    /// Refreshes every metric from `stats` and renders the registry.
    func render(_ stats: EngineStats) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        let last = self.last ?? EngineStats.zero
        running.set(Double(stats.numRunning))
        waiting.set(Double(stats.numWaiting))
        kvUsage.set(stats.kvCacheUsage)
        promptTokens.increment(by: Int64(stats.promptTokensTotal - last.promptTokensTotal))
        generationTokens.increment(by: Int64(stats.generationTokensTotal - last.generationTokensTotal))
        preemptions.increment(by: Int64(stats.numPreemptions - last.numPreemptions))
        finished.increment(by: Int64(stats.requestsFinished - last.requestsFinished))
        cachedTokens.increment(by: Int64(stats.cachedTokensTotal - last.cachedTokensTotal))
        self.last = stats
        return registry.emitToBuffer()
    }
}
