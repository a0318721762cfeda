import Foundation
import Logging
import Model
import Scheduling
import Tokenizer

/// A submitted request; `cancel()` aborts it and frees its KV blocks within one engine step.
public final class GenerationHandle: Sendable {
    public let id: Int
    private let engine: Engine

    init(id: Int, engine: Engine) {
        self.id = id
        self.engine = engine
    }

    /// Aborts the request. Its `finished(.abort, …)` event is delivered unless it had already finished.
    public func cancel() { engine.cancel(id) }
}

/// The engine core: one thread that loops schedule → execute → sample → update, over every running request.
///
/// Requests come in from any thread through `submit`; their events are delivered on the engine thread.
public final class Engine: @unchecked Sendable {
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

    // Engine-thread state.
    private var scheduler: Scheduler
    private var live: [Int: LiveRequest] = [:]
    private var sampler: Sampler
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    private struct LiveRequest {
        let request: GenerationRequest
        let onEvent: @Sendable (GenerationEvent) -> Void
        var detokenizer: StreamingDetokenizer
        var stopMatcher: StopStringMatcher
        var rng: SeededGenerator
        var pendingIds: [Int32] = []
        var generated = 0
    }

    /// - Parameters: the model (its KV pool is allocated here from `config`), its tokenizer and limits.
    public init(model: LanguageModel, tokenizer: Tokenizer, config: EngineConfig, logger: Logger) {
        self.config = config
        self.tokenizer = tokenizer
        self.logger = logger
        runner = ModelRunner(model: model, numBlocks: config.numBlocks, blockSize: config.blockSize,
                             maxNumSeqs: config.maxNumSeqs)
        scheduler = Scheduler(config: SchedulerConfig(
            maxNumSeqs: config.maxNumSeqs, maxNumBatchedTokens: config.maxNumBatchedTokens,
            blockSize: config.blockSize, numBlocks: config.numBlocks, maxModelLen: config.contextSize,
            enablePrefixCaching: config.enablePrefixCaching))
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
    /// - Throws: `EngineError.contextLengthExceeded` when prompt + `maxNewTokens` exceeds `contextSize`,
    ///   `.queueFull` beyond `maxQueuedRequests` waiting requests, `.emptyPrompt`, `.shuttingDown`.
    public func submit(_ request: GenerationRequest,
                       onEvent: @escaping @Sendable (GenerationEvent) -> Void) throws -> GenerationHandle {
        guard !request.promptTokens.isEmpty else { throw EngineError.emptyPrompt }
        let limit = min(config.contextSize, config.numBlocks * config.blockSize)
        guard request.maxNewTokens >= 1, request.maxNewTokens <= limit - request.promptTokens.count else {
            throw EngineError.contextLengthExceeded(promptTokens: request.promptTokens.count,
                                                    maxNewTokens: request.maxNewTokens, limit: limit)
        }
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { throw EngineError.shuttingDown }
        guard inbox.count + sharedStats.numWaiting < config.maxQueuedRequests else { throw EngineError.queueFull(limit: config.maxQueuedRequests) }
        let id = nextId
        nextId += 1
        inbox.append((id, request, onEvent))
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
            try scheduler.add(id: id, promptTokens: req.promptTokens, maxNewTokens: req.maxNewTokens, priority: req.priority)
        } catch {
            // submit() checked the limits already; anything else is a broken invariant worth a clear log.
            logger.error("request \(id) rejected by the scheduler: \(error)")
            onEvent(.finished(.abort, GenerationUsage(promptTokens: req.promptTokens.count, completionTokens: 0, cachedTokens: 0)))
            return
        }
        let seed = req.sampling.seed ?? UInt64.random(in: .min ... .max)
        live[id] = LiveRequest(request: req, onEvent: onEvent,
                               detokenizer: StreamingDetokenizer(tokenizer: tokenizer),
                               stopMatcher: StopStringMatcher(stops: req.stop), rng: SeededGenerator(seed: seed))
    }

    private func step() {
        let output = scheduler.schedule()
        let rows = runner.execute(output)
        var sampled: [Int: Int32] = [:]
        for (id, row) in rows {
            let params = live[id]!.request.sampling
            sampled[id] = sampler.sample(runner.row(row), params: params, rng: &live[id]!.rng)
        }
        scheduler.update(after: output, sampled: sampled)
        for (id, token) in sampled { handleToken(id, token) }
    }

    private func handleToken(_ id: Int, _ token: Int32) {
        guard var r = live[id] else { return }
        r.generated += 1
        let req = r.request
        if !req.ignoreEOS && tokenizer.endOfGenerationIds.contains(token) {
            live[id] = r
            return finish(id, .stop)
        }
        r.pendingIds.append(token)
        let piece = r.detokenizer.append(token)
        var stopped = false
        if !piece.isEmpty {
            switch r.stopMatcher.append(piece) {
            case .text(let t):
                if !t.isEmpty {
                    r.onEvent(.text(t, tokenIds: r.pendingIds))
                    r.pendingIds.removeAll()
                }
            case .stopped(let before):
                if !before.isEmpty { r.onEvent(.text(before, tokenIds: r.pendingIds)) }
                r.pendingIds.removeAll()
                stopped = true
            }
        }
        live[id] = r
        if stopped { return finish(id, .stop, flush: false) }
        let seqLen = scheduler.request(id)?.numTokens ?? 0
        if r.generated >= req.maxNewTokens || seqLen >= config.contextSize { finish(id, .length) }
    }

    /// Ends a request: flushes held-back text (unless a stop string ended it), frees its blocks, sends `finished`.
    private func finish(_ id: Int, _ reason: FinishReason, flush: Bool = true) {
        guard var r = live.removeValue(forKey: id) else { return }
        let cached = scheduler.request(id)?.numCachedTokens ?? 0
        scheduler.finish(id: id, reason: reason)
        if flush && reason != .abort {
            // A character cut off by the end of generation is dropped: no chunk ever carries U+FFFD for it.
            r.detokenizer.discardIncomplete()
            let tail = r.stopMatcher.flush()
            if !tail.isEmpty || !r.pendingIds.isEmpty { r.onEvent(.text(tail, tokenIds: r.pendingIds)) }
        }
        let usage = GenerationUsage(promptTokens: r.request.promptTokens.count, completionTokens: r.generated, cachedTokens: cached)
        lock.lock()
        sharedStats.promptTokensTotal += r.request.promptTokens.count
        sharedStats.generationTokensTotal += r.generated
        sharedStats.requestsFinished += 1
        sharedStats.cachedTokensTotal += cached
        lock.unlock()
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
