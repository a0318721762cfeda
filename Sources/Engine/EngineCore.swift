import Atomics
import Foundation
import Logging
import Model
import Scheduling
import Tokenizer

/// A submitted request; `cancel()` aborts it and frees its KV blocks within one engine step.
public final class GenerationHandle: Sendable {
    public let id: Int
    private let engine: EngineCore

    init(id: Int, engine: EngineCore) {
        self.id = id
        self.engine = engine
    }

    /// Aborts the request. Its `finished(.abort, …)` event is delivered unless it had already finished.
    public func cancel() { engine.cancel(id) }
}

/// The engine core: one thread that loops schedule → execute → sample → update, over every running request
/// (vLLM v1 `EngineCore`). The scheduler decides token-level stops (length, end-of-generation tokens); each
/// request's `OutputProcessor` turns its tokens into text and decides stop strings.
///
/// Requests come in from any thread through `submit`; their events are delivered on the engine thread.
public final class EngineCore: @unchecked Sendable {
    public let config: EngineConfig
    public let tokenizer: Tokenizer
    private let runner: ModelRunner
    private let logger: Logger

    // Shared with other threads, guarded by `lock`.
    private let lock = NSCondition()
    private var inbox: [(Int, GenerationRequest, @Sendable (GenerationEvent) -> Void, arrival: UInt64)] = []
    private var cancellations: [Int] = []
    private var nextId = 1
    private var stopping = false
    private var sharedStats = EngineStats()

    /// The scheduler's limits, readable from any thread (`submit` checks requests against them).
    private let schedulerConfig: SchedulerConfig

    // Engine-thread state.
    private var scheduler: Scheduler
    private var live: [Int: LiveRequest] = [:]
    private var sampler: Sampler
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    private struct LiveRequest {
        let request: GenerationRequest
        let onEvent: @Sendable (GenerationEvent) -> Void
        var output: OutputProcessor
        var rng: SeededGenerator
        /// `submit` time, then the first scheduling and the last sampled token (0: not yet), uptime ns.
        let arrival: UInt64
        var firstScheduled: UInt64 = 0
        var lastToken: UInt64 = 0
    }

    /// Latency histograms and counters for `/metrics` (recorded on the engine thread, lock-free).
    public let metrics = EngineMetrics()

    /// - Parameters: the model (its KV pool is allocated here from `config`), its tokenizer and limits.
    public init(model: LanguageModel, tokenizer: Tokenizer, config: EngineConfig, logger: Logger) {
        self.config = config
        self.tokenizer = tokenizer
        self.logger = logger
        runner = ModelRunner(model: model, numBlocks: config.numBlocks, blockSize: config.blockSize,
                             maxNumSeqs: config.maxNumSeqs)
        schedulerConfig = SchedulerConfig(
            maxNumSeqs: config.maxNumSeqs, maxNumBatchedTokens: config.maxNumBatchedTokens,
            blockSize: config.blockSize, numBlocks: config.numBlocks, maxModelLen: config.contextSize,
            enablePrefixCaching: config.enablePrefixCaching, policy: config.schedulingPolicy,
            stopTokenIds: tokenizer.endOfGenerationIds)
        scheduler = Scheduler(config: schedulerConfig)
        sampler = Sampler(vocabSize: model.hyperparameters.vocabSize)
    }

    /// The model being served.
    public var model: LanguageModel { runner.model }

    /// Starts the engine thread.
    public func start() {
        let t = Thread { [self] in loop() }
        t.name = "sputnik-engine"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Stops the engine thread; unfinished requests end with `.abort`.
    public func shutdown() {
        lock.lock()
        stopping = true
        lock.signal()
        lock.unlock()
        if thread != nil { done.wait() }
        thread = nil
    }

    /// Current load.
    public var stats: EngineStats {
        lock.lock()
        defer { lock.unlock() }
        return sharedStats
    }

    /// Queues a request.
    /// - Throws: `EngineError.contextLengthExceeded` when the prompt plus `maxNewTokens` does not fit the context
    ///   (the scheduler's `SchedulerConfig.completionBudget` decides), `.queueFull` beyond `maxQueuedRequests`
    ///   waiting requests, `.emptyPrompt`, `.shuttingDown`.
    public func submit(_ request: GenerationRequest,
                       onEvent: @escaping @Sendable (GenerationEvent) -> Void) throws -> GenerationHandle {
        guard !request.promptTokens.isEmpty else { throw EngineError.emptyPrompt }
        do {
            _ = try schedulerConfig.completionBudget(promptLength: request.promptTokens.count,
                                                      maxNewTokens: request.maxNewTokens)
        } catch {
            metrics.rejectedContextLength.wrappingIncrement(ordering: .relaxed)
            throw EngineError.contextLengthExceeded(promptTokens: request.promptTokens.count,
                                                    maxNewTokens: request.maxNewTokens ?? 0,
                                                    limit: schedulerConfig.maxSequenceLength)
        }
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { throw EngineError.shuttingDown }
        guard inbox.count + sharedStats.numWaiting < config.maxQueuedRequests else {
            metrics.rejectedQueueFull.wrappingIncrement(ordering: .relaxed)
            throw EngineError.queueFull(limit: config.maxQueuedRequests)
        }
        let id = nextId
        nextId += 1
        inbox.append((id, request, onEvent, DispatchTime.now().uptimeNanoseconds))
        lock.signal()
        return GenerationHandle(id: id, engine: self)
    }

    func cancel(_ id: Int) {
        lock.lock()
        cancellations.append(id)
        lock.signal()
        lock.unlock()
    }

    // MARK: engine thread

    private func loop() {
        while true {
            lock.lock()
            while inbox.isEmpty && cancellations.isEmpty && !scheduler.hasWork && !stopping { lock.wait() }
            let newRequests = inbox
            let cancelled = cancellations
            let stop = stopping
            inbox.removeAll()
            cancellations.removeAll()
            lock.unlock()

            for (id, req, onEvent, arrival) in newRequests { admit(id, req, onEvent, arrival: arrival) }
            for id in cancelled { finish(id, .abort) }
            if stop {
                for id in Array(live.keys) { finish(id, .abort) }
                publishStats()
                done.signal()
                return
            }
            if scheduler.hasWork { step() }
            publishStats()
        }
    }

    private func admit(_ id: Int, _ req: GenerationRequest, _ onEvent: @escaping @Sendable (GenerationEvent) -> Void,
                       arrival: UInt64) {
        do {
            try scheduler.add(id: id, promptTokens: req.promptTokens, maxNewTokens: req.maxNewTokens,
                              priority: req.priority, ignoreEOS: req.ignoreEOS)
        } catch {
            // submit() checked the limits already; anything else is a broken invariant worth a clear log.
            logger.error("request \(id) rejected by the scheduler: \(error)")
            onEvent(.finished(.abort, GenerationUsage(promptTokens: req.promptTokens.count, completionTokens: 0, cachedTokens: 0)))
            return
        }
        let seed = req.sampling.seed ?? UInt64.random(in: .min ... .max)
        live[id] = LiveRequest(request: req, onEvent: onEvent, output: OutputProcessor(tokenizer: tokenizer, stop: req.stop),
                               rng: SeededGenerator(seed: seed), arrival: arrival)
    }

    private func step() {
        let output = scheduler.schedule()
        let now = DispatchTime.now().uptimeNanoseconds
        for s in output.scheduled where live[s.requestId]?.firstScheduled == 0 {
            live[s.requestId]!.firstScheduled = now
            metrics.requestQueueTime.observe(nanoseconds: now &- live[s.requestId]!.arrival)
        }
        let rows = runner.execute(output)
        var sampled: [Int: Int32] = [:]
        for (id, row) in rows {
            let params = live[id]!.request.sampling
            sampled[id] = sampler.sample(runner.row(row), params: params, rng: &live[id]!.rng)
        }
        let stops = scheduler.update(after: output, sampled: sampled)
        for (id, token) in sampled { handleToken(id, token, stop: stops[id]) }
    }

    /// Emits the text of a sampled token, then ends the request if the scheduler (`stop`: length or a stop token)
    /// or a stop string says so. A stop token's own text is never emitted.
    private func handleToken(_ id: Int, _ token: Int32, stop: FinishReason?) {
        guard var r = live[id] else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if r.lastToken == 0 {
            metrics.timeToFirstToken.observe(nanoseconds: now &- r.arrival)
        } else {
            metrics.interTokenLatency.observe(nanoseconds: now &- r.lastToken)
        }
        r.lastToken = now
        live[id] = r
        if stop == .stop { return finish(id, .stop) }
        let out = r.output.append(token)
        live[id] = r
        switch out {
        case .text(let t, let ids):
            if !t.isEmpty { r.onEvent(.text(t, tokenIds: ids)) }
        case .stopped(let before, let ids):
            if !before.isEmpty { r.onEvent(.text(before, tokenIds: ids)) }
            return finish(id, .stop, flush: false)
        }
        if let stop { finish(id, stop) }
    }

    /// Ends a request: flushes held-back text (unless a stop string ended it), frees its blocks, sends `finished`.
    private func finish(_ id: Int, _ reason: FinishReason, flush: Bool = true) {
        guard var r = live.removeValue(forKey: id) else { return }
        let state = scheduler.request(id)
        let cached = state?.numCachedTokens ?? 0
        let generated = state?.numOutputTokens ?? 0
        scheduler.finish(id: id, reason: reason)
        if flush && reason != .abort, let tail = r.output.finish() {
            r.onEvent(.text(tail.text, tokenIds: tail.tokenIds))
        }
        if reason != .abort { metrics.e2eRequestLatency.observe(nanoseconds: DispatchTime.now().uptimeNanoseconds &- r.arrival) }
        if config.enablePrefixCaching && r.firstScheduled != 0 {
            metrics.prefixCacheQueries.wrappingIncrement(by: r.request.promptTokens.count, ordering: .relaxed)
            metrics.prefixCacheHits.wrappingIncrement(by: cached, ordering: .relaxed)
        }
        let usage = GenerationUsage(promptTokens: r.request.promptTokens.count, completionTokens: generated, cachedTokens: cached,
                                    stopSequence: r.output.matchedStop)
        lock.lock()
        sharedStats.promptTokensTotal += r.request.promptTokens.count
        sharedStats.generationTokensTotal += generated
        sharedStats.requestsFinished += 1
        sharedStats.cachedTokensTotal += cached
        lock.unlock()
        publishStats()  // before the client hears of it: a scrape after the answer never shows this request running
        r.onEvent(.finished(reason, usage))
    }

    private func publishStats() {
        lock.lock()
        sharedStats.numRunning = scheduler.numRunning
        sharedStats.numWaiting = scheduler.numWaiting
        sharedStats.kvCacheUsage = scheduler.kvCacheUsage
        sharedStats.numPreemptions = scheduler.numPreemptions
        lock.unlock()
    }
}
