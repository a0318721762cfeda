import Atomics
import Engine
import Foundation
import HTTPServer
import Model
import Prometheus

/// `GET /metrics`: Prometheus text format (0.0.4), names as vLLM's with the `sputnik:` prefix and vLLM's
/// `model_name` label, so a vLLM Grafana board works after a prefix swap.
///
/// Gauges and token counters (the swift-prometheus registry, which `sputnik serve` also bootstraps swift-metrics
/// with) are read from the engine at scrape time; counters advance by what the engine counted since the last
/// scrape. The latency histograms, prefix-cache and admission counters and the MoE per-expert counts are recorded by
/// the engine thread into lock-free atomics (`EngineMetrics`, `ExpertTokenCounts`) and written out here by hand, so
/// neither side allocates or locks on the engine's path.
final class ServerMetrics: @unchecked Sendable {
    /// The registry; `sputnik serve` also bootstraps swift-metrics with it.
    let registry: PrometheusCollectorRegistry
    private let running, waiting, kvUsage: Gauge
    private let promptTokens, generationTokens, preemptions, finished, cachedTokens: Counter
    private let lock = NSLock()
    private var last: EngineStats?
    /// The engine's own recorders, once the model is loaded (`attach`); nil while loading.
    private var engineMetrics: EngineMetrics?
    private var expertCounts: ExpertTokenCounts?
    /// `{model_name="<id>"}`'s inside, escaped.
    private let label: String

    /// Metrics labelled `model_name` = `modelName`; the engine's recorders join with `attach` once it is loaded.
    init(modelName: String) {
        label = "model_name=\"\(Self.escapeLabel(modelName))\""
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let l = [("model_name", modelName)]
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: l)
        }
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: .init(metricName: name, unitName: "total", helpText: help), labels: l)
        }
        running = gauge("sputnik:num_requests_running", "Requests in the running batch (each of a request's n choices counts).")
        waiting = gauge("sputnik:num_requests_waiting", "Requests waiting to be scheduled (each of a request's n choices counts).")
        kvUsage = gauge("sputnik:kv_cache_usage_perc", "Fraction of KV cache blocks in use, 0-1.")
        promptTokens = counter("sputnik:prompt_tokens", "Prompt tokens of requests that ran (counted when they start).")
        generationTokens = counter("sputnik:generation_tokens", "Generated tokens, counted at every engine step.")
        preemptions = counter("sputnik:num_preemptions", "Requests preempted (KV blocks ran out).")
        finished = counter("sputnik:request_finished", "Requests finished, any reason.")
        cachedTokens = counter("sputnik:prefix_cache_hit_tokens", "Prompt tokens served from the prefix cache, once per request (as prompt_tokens).")
    }

    /// Adds the latency histograms, prefix-cache and admission counters and the MoE per-expert counts of `engine`
    /// (called once, when the model has loaded).
    func attach(_ engine: EngineCore) {
        lock.lock()
        defer { lock.unlock() }
        engineMetrics = engine.metrics
        expertCounts = engine.model.expertTokenCounts
    }

    /// Refreshes every metric from `stats` and renders the whole exposition; nil `stats` (no engine yet: the model is
    /// loading) renders the values as they last were (zeros before any).
    func render(_ stats: EngineStats?) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        let last = self.last ?? EngineStats.zero
        let stats = stats ?? last
        running.set(Double(stats.numRunning))
        waiting.set(Double(stats.numWaiting))
        kvUsage.set(stats.kvCacheUsage)
        promptTokens.increment(by: Int64(stats.promptTokensTotal - last.promptTokensTotal))
        generationTokens.increment(by: Int64(stats.generationTokensTotal - last.generationTokensTotal))
        preemptions.increment(by: Int64(stats.numPreemptions - last.numPreemptions))
        finished.increment(by: Int64(stats.requestsFinished - last.requestsFinished))
        cachedTokens.increment(by: Int64(stats.cachedTokensTotal - last.cachedTokensTotal))
        self.last = stats
        var out = registry.emitToBuffer()
        var text = ""
        if let m = engineMetrics {
            histogram(&text, "sputnik:time_to_first_token_seconds", "Histogram of time to first token in seconds.", m.timeToFirstToken)
            histogram(&text, "sputnik:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", m.interTokenLatency)
            histogram(&text, "sputnik:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", m.e2eRequestLatency)
            histogram(&text, "sputnik:request_queue_time_seconds", "Histogram of time spent waiting to be scheduled in seconds.",
                      m.requestQueueTime)
            counter(&text, "sputnik:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens (one lookup per choice, as vLLM's).",
                    [(label, m.prefixCacheQueries.load(ordering: .relaxed))])
            counter(&text, "sputnik:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens (one lookup per choice, as vLLM's).",
                    [(label, m.prefixCacheHits.load(ordering: .relaxed))])
            counter(&text, "sputnik:admission_rejections", "Requests refused at admission, by reason.", [
                (label + ",reason=\"queue_full\"", m.rejectedQueueFull.load(ordering: .relaxed)),
                (label + ",reason=\"context_length\"", m.rejectedContextLength.load(ordering: .relaxed)),
            ])
            if let c = expertCounts {
                var samples: [(labels: String, value: Int)] = []
                samples.reserveCapacity(c.numLayers * c.numExperts)
                for layer in 0..<c.numLayers {
                    let row = (0..<c.numExperts).map { c.count(layer: layer, expert: $0) }
                    guard row.contains(where: { $0 > 0 }) else { continue }  // dense layers of a MoE model
                    for (e, n) in row.enumerated() { samples.append((label + ",layer=\"\(layer)\",expert=\"\(e)\"", n)) }
                }
                counter(&text, "sputnik:moe_expert_tokens", "Tokens routed to each expert of each MoE layer.", samples)
            }
        }
        out.append(contentsOf: text.utf8)
        return out
    }

    private func histogram(_ text: inout String, _ name: String, _ help: String, _ h: LatencyHistogram) {
        let (counts, sum) = h.snapshot()
        text += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cumulative = 0
        for (i, c) in counts.enumerated() {
            cumulative += c
            let le = i < h.upperBounds.count ? Self.number(h.upperBounds[i]) : "+Inf"
            text += "\(name)_bucket{\(label),le=\"\(le)\"} \(cumulative)\n"
        }
        text += "\(name)_sum{\(label)} \(Self.number(sum))\n\(name)_count{\(label)} \(cumulative)\n"
    }

    /// A counter family `name_total` with one sample per label set.
    private func counter(_ text: inout String, _ name: String, _ help: String, _ samples: [(labels: String, value: Int)]) {
        text += "# HELP \(name)_total \(help)\n# TYPE \(name)_total counter\n"
        for s in samples { text += "\(name)_total{\(s.labels)} \(s.value)\n" }
    }

    /// A float as Prometheus writes it (`0.005`, `1.0`, `2560.0`).
    private static func number(_ v: Double) -> String { "\(v)" }

    /// Label value escaping of the text format: backslash, double quote and line feed.
    static func escapeLabel(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
