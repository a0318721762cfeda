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
    private var inbox: [(Int, GenerationRequest, @Sendable (GenerationEvent) -> Void)] = []
    private var cancellations: [Int] = []
    private var nextId = 1
    private var stopping = false
    private var sharedStats = EngineStats()
    /// Requests taken from `inbox` by the engine thread and not yet reflected in `sharedStats` (counted as not
    /// running by `submit`).
    private var admitting = 0

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
    }

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
        sharedStats.numFreeBlocks = scheduler.kv.pool.numFreeBlocks
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

    /// Requests submitted and not finished: queued, waiting or running (0 on an idle engine).
    public var unfinishedCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return inbox.count + admitting + sharedStats.numRunning + sharedStats.numWaiting
    }

    /// Current load.
    public var stats: EngineStats {
        lock.lock()
        defer { lock.unlock() }
        return sharedStats
    }

    /// Queues a request.
    /// - Throws: `EngineError.contextLengthExceeded` when the prompt plus `maxNewTokens` does not fit the context
    ///   (the scheduler's `SchedulerConfig.completionBudget` decides), `.queueFull` when more than `maxQueuedRequests`
    ///   requests would wait for a free slot or KV room, `.emptyPrompt`, `.shuttingDown`.
    public func submit(_ request: GenerationRequest,
                       onEvent: @escaping @Sendable (GenerationEvent) -> Void) throws -> GenerationHandle {
        guard !request.promptTokens.isEmpty else { throw EngineError.emptyPrompt }
        do {
            _ = try schedulerConfig.completionBudget(promptLength: request.promptTokens.count,
                                                      maxNewTokens: request.maxNewTokens)
        } catch {
            throw EngineError.contextLengthExceeded(promptTokens: request.promptTokens.count,
                                                    maxNewTokens: request.maxNewTokens ?? 0,
                                                    limit: schedulerConfig.maxSequenceLength)
        }
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { throw EngineError.shuttingDown }
        guard requestsWaitingForRoom(including: request) <= config.maxQueuedRequests else {
            throw EngineError.queueFull(limit: config.maxQueuedRequests)
        }
        let id = nextId
        nextId += 1
        inbox.append((id, request, onEvent))
        lock.signal()
        return GenerationHandle(id: id, engine: self)
    }

    /// How many requests would wait for a sequence slot or KV room if `request` joined now, itself included:
    /// the requests not yet running (queued ones and `request`) beyond what the free slots and the free KV blocks
    /// can start at once. Requests that are about to run are not waiting. Called with `lock` held.
    private func requestsWaitingForRoom(including request: GenerationRequest) -> Int {
        let notRunning = inbox.count + admitting + sharedStats.numWaiting + 1
        let freeSlots = max(0, config.maxNumSeqs - sharedStats.numRunning)
        let blocksPerRequest = max(1, (request.promptTokens.count + 1 + config.blockSize - 1) / config.blockSize)
        let startable = min(freeSlots, sharedStats.numFreeBlocks / blocksPerRequest)
        return max(0, notRunning - startable)
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
            admitting = newRequests.count
            cancellations.removeAll()
            lock.unlock()

            for (id, req, onEvent) in newRequests { admit(id, req, onEvent) }
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

    private func admit(_ id: Int, _ req: GenerationRequest, _ onEvent: @escaping @Sendable (GenerationEvent) -> Void) {
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
                               rng: SeededGenerator(seed: seed))
    }

    private func step() {
        let output = scheduler.schedule()
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
        let usage = GenerationUsage(promptTokens: r.request.promptTokens.count, completionTokens: generated, cachedTokens: cached)
        lock.lock()
        sharedStats.promptTokensTotal += r.request.promptTokens.count
        sharedStats.generationTokensTotal += generated
        sharedStats.requestsFinished += 1
        sharedStats.cachedTokensTotal += cached
        // The load figures change now, before the client hears of it: a client that sends its next request at
        // once must not be counted against a slot this request no longer holds (`submit`'s queue bound).
        publishLoad()
        lock.unlock()
        r.onEvent(.finished(reason, usage))
    }

    private func publishStats() {
        lock.lock()
        publishLoad()
        lock.unlock()
    }

    /// Copies the scheduler's load into `sharedStats`. With `lock` held, on the engine thread, after this
    /// iteration's admissions (so the requests counted in `admitting` are in the scheduler's counts now).
    private func publishLoad() {
        sharedStats.numRunning = scheduler.numRunning
        sharedStats.numWaiting = scheduler.numWaiting
        sharedStats.kvCacheUsage = scheduler.kvCacheUsage
        sharedStats.numPreemptions = scheduler.numPreemptions
        sharedStats.numFreeBlocks = scheduler.kv.pool.numFreeBlocks
        admitting = 0
    }
}
