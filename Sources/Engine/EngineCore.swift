import Atomics
import Compute
import Foundation
import Grammar
import Logging
import Model
import Scheduling
import Tokenizer

/// A submitted request; `cancel()` aborts it and frees its KV blocks within one engine step.
public final class GenerationHandle: Sendable {
    /// The request's id (its first choice's, when `n > 1`).
    public let id: Int
    /// Number of choices: ids `id ..< id + n`.
    let n: Int
    private let engine: EngineCore

    init(id: Int, n: Int = 1, engine: EngineCore) {
        self.id = id
        self.n = n
        self.engine = engine
    }

    /// Aborts the request (every choice). Each `finished(.abort, …)` event is delivered unless that choice had
    /// already finished.
    public func cancel() {
        for k in 0..<n { engine.cancel(id + k) }
    }
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
    /// Submitted requests not yet admitted; `group`: the id of the first request of its `submit(batch:)` (its own id
    /// when submitted alone).
    private var inbox: [(Int, GenerationRequest, [@Sendable (GenerationEvent) -> Void], arrival: UInt64, group: Int)] = []
    private var cancellations: [Int] = []
    private var nextId = 1
    private var stopping = false
    /// Set by `abortUnstarted`: the engine thread aborts every request not yet scheduled.
    private var abortingUnstarted = false
    private var sharedStats = EngineStats()
    /// Requests taken from `inbox` by the engine thread and not yet reflected in `sharedStats` (counted as not
    /// running by `submit`).
    private var admitting = 0

    /// The scheduler's limits, readable from any thread (`submit` checks requests against them).
    private let schedulerConfig: SchedulerConfig

    // Engine-thread state.
    private var scheduler: Scheduler
    private var live: [Int: LiveRequest] = [:]
    /// Groups (`LiveRequest.group`) with a request that has started; a group leaves when its last request finishes.
    /// Engine thread only (internal for tests, read once the engine is idle).
    private(set) var startedGroups: Set<Int> = []
    /// Choices 1…n−1 of a request whose prompt is still being computed, by the request's id; forked from it in
    /// the step that samples its first token.
    private var unforked: [Int: [(id: Int, live: LiveRequest)]] = [:]
    private var sampler: Sampler
    private var logprobCalculator: LogprobCalculator
    /// Token-level grammars of constrained requests, by grammar (their mask caches outlive one request).
    private var constraints: GrammarCache
    /// A constrained request's logits row before its penalties and `logit_bias` (`[vocabSize]`, allocated once): the
    /// grammar's fallback when they ban every token it allows.
    private var unprocessed: [Float]
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    private struct LiveRequest {
        let request: GenerationRequest
        let onEvent: @Sendable (GenerationEvent) -> Void
        var output: OutputProcessor
        var rng: SeededGenerator
        /// Penalties, bias and `min_tokens` state (token counts kept incrementally).
        var processor: LogitsProcessor
        /// Log-probabilities of the tokens whose text is still held back by `output` (when the request asked).
        var pendingLogprobs: [TokenLogprobs] = []
        /// Which of the request's `n` choices this is.
        var choice = 0
        /// Generated tokens delivered in `reasoning` events so far.
        var reasoningTokens = 0
        /// Prompt log-probabilities gathered so far (`request.onPromptLogprobs`): entry i is prompt position i + 1.
        var promptEntries: [TokenLogprobs] = []
        /// Whether `onPromptLogprobs` was called (a recomputed prompt after preemption is not reported again).
        var promptDelivered = false
        /// Where a constrained request stands in its grammar; nil when unconstrained (with `lazy`: between calls).
        var matcher: GrammarMatcher?
        /// `request.lazyGrammar` bound to the vocabulary, and its trigger's bytes (and its start trigger and stretch).
        var lazy: (grammar: TokenGrammar, trigger: [UInt8], start: [(trigger: TokenGrammar, grammar: TokenGrammar)])?
        /// With start triggers: where the output so far stands in each (nil once it cannot match: it no longer counts).
        var lazyStart: [GrammarMatcher?] = []
        /// The open grammar came from the start trigger (when it ends, the start trigger counts again: a second bare call).
        var lazyFromStart = false
        /// With `lazy`, while no grammar is open: the last bytes of output (at most the trigger's length), where a
        /// trigger may be forming across tokens.
        var lazyTail: [UInt8] = []
        /// The id of the first request of its `submit(batch:)` (its own id when submitted alone).
        var group = 0
        /// `submit` time, then the first scheduling and the last sampled token (0: not yet), uptime ns.
        let arrival: UInt64
        var firstScheduled: UInt64 = 0
        var lastToken: UInt64 = 0

        /// With `lazy`: output bytes (a sampled token's, or the prefill's) pass through. A trigger at the end of free
        /// output opens the grammar and the bytes after it go to the matcher; where the matcher reaches the grammar's
        /// free tail the output is free again (the rest of that token is free text). Bytes the open grammar refuses
        /// (a prefill's, or the rest of a token that finished the trigger mid-token) leave that stretch unconstrained.
        mutating func followLazy<C: Collection>(_ bytes: C) where C.Element == UInt8 {
            guard let lazy else { return }
            for b in bytes {
                if matcher != nil {
                    if !matcher!.accept(byte: b) || matcher!.isFree {
                        matcher = nil
                        if lazyFromStart { lazyStart = lazy.start.map { GrammarMatcher($0.trigger) } }
                        lazyFromStart = false
                    }
                    continue
                }
                if !lazyStart.isEmpty {
                    var opened = false
                    for k in lazyStart.indices where lazyStart[k] != nil {
                        if !lazyStart[k]!.accept(byte: b) {
                            lazyStart[k] = nil
                        } else if lazyStart[k]!.isComplete {
                            matcher = GrammarMatcher(lazy.start[k].grammar)
                            opened = true
                            break
                        }
                    }
                    if opened || lazyStart.allSatisfy({ $0 == nil }) { lazyStart.removeAll(keepingCapacity: true) }
                    if opened {
                        lazyFromStart = true
                        lazyTail.removeAll(keepingCapacity: true)
                        continue
                    }
                }
                lazyTail.append(b)
                if lazyTail.count > lazy.trigger.count { lazyTail.removeFirst() }
                if lazyTail.elementsEqual(lazy.trigger) {
                    matcher = GrammarMatcher(lazy.grammar)
                    lazyTail.removeAll(keepingCapacity: true)
                }
            }
        }
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
        sharedStats.numFreeBlocks = scheduler.kv.pool.numFreeBlocks
        logprobCalculator = LogprobCalculator(vocabSize: model.hyperparameters.vocabSize)
        constraints = GrammarCache(tokenizer: tokenizer, vocabSize: model.hyperparameters.vocabSize)
        unprocessed = [Float](repeating: 0, count: model.hyperparameters.vocabSize)
        if ProcessInfo.processInfo.environment["SPUTNIK_PROFILE_STEPS"] == "1" { StepProfile.enable(true) }
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

    /// Ends every request the engine has not started yet (queued or waiting, never scheduled) with
    /// `finished(.abort)`: they have had no `.started` event, so their clients can be told to retry (a 503). Requests
    /// already started, preempted ones included, go on. New submissions are not affected. Used by the graceful drain.
    public func abortUnstarted() {
        lock.lock()
        abortingUnstarted = true
        lock.signal()
        lock.unlock()
    }

    /// Requests submitted and not finished: queued, waiting or running (0 on an idle engine).
    public var unfinishedCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return inboxSequences + admitting + sharedStats.numRunning + sharedStats.numWaiting
    }

    /// Choices submitted and not yet taken by the engine thread (a request of `n` choices counts `n`). With `lock` held.
    private var inboxSequences: Int { inbox.reduce(0) { $0 + $1.2.count } }

    /// Current load, in sequences (each of a request's `n` choices counts, as vLLM counts its child requests).
    /// `numWaiting` includes the requests submitted since the engine thread last took its inbox
    /// (during a long step they have reached no scheduler queue yet, but they wait all the same).
    public var stats: EngineStats {
        lock.lock()
        defer { lock.unlock() }
        var s = sharedStats
        s.numWaiting += inboxSequences + admitting
        return s
    }

    /// Queues a request.
    /// - Throws: `EngineError.contextLengthExceeded` when the prompt plus `maxNewTokens` does not fit the context
    ///   (the scheduler's `SchedulerConfig.completionBudget` decides), `.queueFull` when more than `maxQueuedRequests`
    ///   requests would wait for a free slot or KV room, `.emptyPrompt`, `.shuttingDown`.
    public func submit(_ request: GenerationRequest,
                       onEvent: @escaping @Sendable (GenerationEvent) -> Void) throws -> GenerationHandle {
        try submit(request, callbacks: [onEvent])
    }

    /// Queues a request of `request.n` choices; `onChoiceEvent(k, event)` delivers the events of choice k
    /// (0 ..< n), each choice in order. - Throws: as `submit(_:onEvent:)`, and `.tooManyChoices` when `n` is
    /// not in 1…`maxNumSeqs`.
    public func submit(_ request: GenerationRequest,
                       onChoiceEvent: @escaping @Sendable (Int, GenerationEvent) -> Void) throws -> GenerationHandle {
        guard request.n >= 1 && request.n <= config.maxNumSeqs else {
            throw EngineError.tooManyChoices(n: request.n, limit: config.maxNumSeqs)
        }
        return try submit(request, callbacks: (0..<request.n).map { k in { onChoiceEvent(k, $0) } })
    }

    private func submit(_ request: GenerationRequest,
                        callbacks: [@Sendable (GenerationEvent) -> Void]) throws -> GenerationHandle {
        try submit([(request, callbacks)])[0]
    }

    /// Queues several requests (the prompts of one `/v1/completions` request) all together or none: the queue limit
    /// is checked for the whole batch, so none starts and is then aborted because a later one found the queue
    /// full. `onChoiceEvent(i, k, event)` delivers choice k of request i.
    /// - Throws: as `submit(_:onChoiceEvent:)`; `.batchTooLarge` when the batch exceeds what an idle server starts
    ///   at once (sequence slots, KV blocks) plus the queue: it could never be admitted.
    public func submit(batch: [GenerationRequest],
                       onChoiceEvent: @escaping @Sendable (Int, Int, GenerationEvent) -> Void) throws -> [GenerationHandle] {
        for r in batch where r.n < 1 || r.n > config.maxNumSeqs {
            throw EngineError.tooManyChoices(n: r.n, limit: config.maxNumSeqs)
        }
        // What an idle server could start at once (slots, and KV blocks for the longest prompt), plus the queue.
        let longest = batch.map(\.promptTokens.count).max() ?? 0
        let startable = min(config.maxNumSeqs, config.numBlocks / max(1, (longest + 1 + config.blockSize - 1) / config.blockSize))
        let choices = batch.reduce(0) { $0 + $1.n }   // sequences: each prompt's n choices
        guard choices <= startable + config.maxQueuedRequests else {
            throw EngineError.batchTooLarge(count: choices, limit: startable + config.maxQueuedRequests)
        }
        return try submit(batch.enumerated().map { i, r in (r, (0..<r.n).map { k in { onChoiceEvent(i, k, $0) } }) })
    }

    private func submit(_ batch: [(request: GenerationRequest, callbacks: [@Sendable (GenerationEvent) -> Void])]) throws -> [GenerationHandle] {
        for (request, _) in batch {
            guard !request.promptTokens.isEmpty else { throw EngineError.emptyPrompt }
            do {
                _ = try schedulerConfig.completionBudget(promptLength: request.promptTokens.count,
                                                          maxNewTokens: request.maxNewTokens)
            } catch {
                metrics.rejectedContextLength.wrappingIncrement(ordering: .relaxed)
                // With no max_tokens at least one token is generated: the prompt must leave room for it.
                throw EngineError.contextLengthExceeded(promptTokens: request.promptTokens.count,
                                                        maxNewTokens: request.maxNewTokens ?? 1,
                                                        limit: schedulerConfig.maxSequenceLength)
            }
        }
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { throw EngineError.shuttingDown }
        guard requestsWaitingForRoom(including: batch.map(\.request), choices: batch.reduce(0) { $0 + $1.callbacks.count })
                <= config.maxQueuedRequests else {
            metrics.rejectedQueueFull.wrappingIncrement(ordering: .relaxed)
            throw EngineError.queueFull(limit: config.maxQueuedRequests)
        }
        let arrival = DispatchTime.now().uptimeNanoseconds
        var handles: [GenerationHandle] = []
        let group = nextId
        for (request, callbacks) in batch {
            let id = nextId
            nextId += callbacks.count
            inbox.append((id, request, callbacks, arrival, group))
            handles.append(GenerationHandle(id: id, n: callbacks.count, engine: self))
        }
        lock.signal()
        return handles
    }

    /// How many sequences would wait for a sequence slot or KV room if `requests` (`choices` sequences: each of a
    /// request's `n` choices counts, the unit of the waiting gauge) joined now, themselves included: the sequences
    /// not yet running (queued ones and these) beyond what the free slots and the free KV blocks can start at once.
    /// Sequences about to run are not waiting. Called with `lock` held.
    private func requestsWaitingForRoom(including requests: [GenerationRequest], choices: Int) -> Int {
        let notRunning = inboxSequences + admitting + sharedStats.numWaiting + choices
        let freeSlots = max(0, config.maxNumSeqs - sharedStats.numRunning)
        let longest = requests.map(\.promptTokens.count).max() ?? 0
        let blocksPerRequest = max(1, (longest + 1 + config.blockSize - 1) / config.blockSize)
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
            while inbox.isEmpty && cancellations.isEmpty && !scheduler.hasWork && !stopping && !abortingUnstarted {
                lock.wait()
            }
            let newRequests = inbox
            let cancelled = cancellations
            let stop = stopping
            let abortUnstarted = abortingUnstarted
            inbox.removeAll()
            admitting = newRequests.reduce(0) { $0 + $1.2.count }
            cancellations.removeAll()
            abortingUnstarted = false
            lock.unlock()

            for (id, req, callbacks, arrival, group) in newRequests { admit(id, req, callbacks, arrival: arrival, group: group) }
            for id in cancelled { finish(id, .abort) }
            if abortUnstarted {
                // Choices not forked yet go with their parent (finish aborts them too). The prompts of one batch go
                // together: once one has started, its answer is under way and the others wait their turn.
                for (id, r) in live where r.firstScheduled == 0 && !startedGroups.contains(r.group) { finish(id, .abort) }
            }
            if stop {
                for id in Array(live.keys) + unforked.values.flatMap({ $0.map(\.id) }) { finish(id, .abort) }
                publishStats()
                done.signal()
                return
            }
            if scheduler.hasWork {
                step()
                if !scheduler.hasWork && StepProfile.enabled { reportProfile() }
            }
            publishStats()
        }
    }

    /// With `SPUTNIK_PROFILE_STEPS=1`: when the engine goes idle, writes the mean time per phase of the steps since
    /// the last report to stderr (one `profile batch=…` line per batch size, see `StepProfile`) and clears it.
    private func reportProfile() {
        let text = StepProfile.report()
        StepProfile.reset()
        if !text.isEmpty { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }

    private func admit(_ id: Int, _ req: GenerationRequest, _ callbacks: [@Sendable (GenerationEvent) -> Void],
                       arrival: UInt64, group: Int) {
        do {
            try scheduler.add(id: id, promptTokens: req.promptTokens, maxNewTokens: req.maxNewTokens,
                              priority: req.priority, ignoreEOS: req.ignoreEOS, stopTokenIds: Set(req.stopTokenIds),
                              forks: callbacks.count - 1, promptLogprobs: req.onPromptLogprobs != nil,
                              reusePrefix: req.reusePrefix)
        } catch {
            // submit() checked the limits already; anything else is a broken invariant worth a clear log.
            logger.error("request \(id) rejected by the scheduler: \(error)")
            for onEvent in callbacks {
                onEvent(.finished(.abort, GenerationUsage(promptTokens: req.promptTokens.count, completionTokens: 0, cachedTokens: 0)))
            }
            return
        }
        let seed = req.sampling.seed ?? UInt64.random(in: .min ... .max)
        let banned = (req.ignoreEOS ? [] : Array(tokenizer.endOfGenerationIds)) + req.stopTokenIds
        let processor = LogitsProcessor(params: req.processing, vocabSize: runner.vocabSize, promptTokens: req.promptTokens,
                                        maxNewTokens: scheduler.request(id)?.maxNewTokens ?? 0, bannedBeforeMinTokens: banned)
        let grammar = req.grammar.map { constraints.tokenGrammar($0) }
        let lazy = req.lazyGrammar.map {
            (grammar: constraints.tokenGrammar($0.grammar), trigger: Array($0.trigger.utf8),
             start: $0.start.map { (trigger: constraints.tokenGrammar($0.trigger), grammar: constraints.tokenGrammar($0.grammar)) })
        }
        func liveRequest(_ k: Int) -> LiveRequest {
            // Choice k > 0: its own stream, from a seed derived from the request's (SeededGenerator mixes it).
            var r = LiveRequest(request: req, onEvent: callbacks[k],
                        output: OutputProcessor(tokenizer: tokenizer, stop: req.stop, minTokens: req.processing.minTokens,
                                                parsing: req.parsing),
                        rng: SeededGenerator(seed: seed &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15), processor: processor,
                        choice: k, matcher: grammar.map { GrammarMatcher($0) }, arrival: arrival)
            r.group = group
            r.lazy = lazy
            r.lazyStart = lazy?.start.map { GrammarMatcher($0.trigger) } ?? []
            r.lazyTail.reserveCapacity(lazy?.trigger.count ?? 0)
            // A prefill the reply continues: the grammar has seen it (checked by the caller to be a prefix).
            if !req.grammarPrefix.isEmpty {
                if r.matcher != nil { _ = r.matcher!.accept(bytes: Array(req.grammarPrefix.utf8)) }
                r.followLazy(req.grammarPrefix.utf8)
            }
            return r
        }
        live[id] = liveRequest(0)
        if callbacks.count > 1 { unforked[id] = (1..<callbacks.count).map { (id + $0, liveRequest($0)) } }
    }

    private func step() {
        let stepStart = StepProfile.now()
        let output = scheduler.schedule()
        // The scrape during this step (a prefill may take seconds) sees what it runs and what still waits.
        publishStats()
        StepProfile.beginStep(batchSize: output.scheduled.allSatisfy { $0.tokenIds.count == 1 } ? output.scheduled.count : 0)
        StepProfile.add(.scheduler, since: stepStart)
        defer { StepProfile.endStep(since: stepStart) }
        let now = DispatchTime.now().uptimeNanoseconds
        // Prompt tokens count when their request first runs (vLLM counts them at prefill): a request that left or
        // was turned away while queued computed none (helper-70: they were counted at its finish), and a long
        // generation's prompt shows at once.
        var startedPromptTokens = 0
        defer {
            if startedPromptTokens > 0 {
                lock.lock()
                sharedStats.promptTokensTotal += startedPromptTokens
                lock.unlock()
            }
        }
        for s in output.scheduled where live[s.requestId]?.firstScheduled == 0 {
            live[s.requestId]!.firstScheduled = now
            if live[s.requestId]!.choice == 0 { startedPromptTokens += live[s.requestId]!.request.promptTokens.count }
            metrics.requestQueueTime.observe(nanoseconds: now &- live[s.requestId]!.arrival)
            startedGroups.insert(live[s.requestId]!.group)
            live[s.requestId]!.onEvent(.started(cachedTokens: scheduler.request(s.requestId)?.numCachedTokens ?? 0))
            // A one-token prompt has no log-probabilities to gather: reported now, after `.started` (a stream's head).
            if let report = live[s.requestId]!.request.onPromptLogprobs, live[s.requestId]!.request.promptTokens.count == 1 {
                live[s.requestId]!.promptDelivered = true
                report([])
            }
        }
        let forwardStart = StepProfile.now()
        let rows = runner.execute(output)
        StepProfile.add(.forward, since: forwardStart)
        let samplerStart = StepProfile.now()
        for p in runner.promptRows { gatherPromptLogprobs(p.requestId, startPosition: p.startPosition, row: p.row, count: p.count) }
        var sampled: [Int: Int32] = [:]
        var logprobs: [Int: TokenLogprobs] = [:]
        var forks: [(parent: Int, child: Int, token: Int32)] = []
        var completed: Set<Int> = []
        /// A constrained request's grammar takes the token; `completed` when nothing more can follow.
        func advanceGrammar(_ id: Int, _ r: inout LiveRequest, _ token: Int32) {
            if let lazy = r.lazy {
                // Byte by byte: the token may close a call and start free text, or open one.
                r.followLazy(lazy.grammar.vocabulary.bytes(of: token))
                return
            }
            guard r.matcher != nil else { return }
            switch r.matcher!.accept(token) {
            case .accepted: break
            case .completed: completed.insert(id)
            case .rejected:
                // Only when the mask allowed nothing (a grammar the vocabulary cannot spell): end it here.
                logger.error("request \(id): the grammar allows no token here; finishing")
                completed.insert(id)
            }
        }
        for (id, row) in rows {
            let params = live[id]!.request.sampling
            let logits = runner.mutableRow(row)
            // Penalties, bias, min_tokens: a separate step before sampling (nothing is touched when all are neutral).
            let processed = !live[id]!.processor.isNeutral, matcher = live[id]!.matcher
            if processed && matcher != nil { unprocessed.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: logits) } }
            if processed { live[id]!.processor.apply(to: logits) }
            // A constrained request: disallowed tokens get -inf before any sampling filter (greedy too). Where
            // `logit_bias` (or `min_tokens`) bans every token the grammar allows, the grammar wins for this token: the
            // row before them, masked (helper-62: the fallback was token 0, `"a!` for a strict enum, finish "stop").
            if let matcher {
                let mask = matcher.mask()
                mask.apply(to: logits)
                if processed && !logits.contains(where: { $0 > -Float.infinity }) {
                    unprocessed.withUnsafeBufferPointer { _ = logits.update(fromContentsOf: $0) }
                    mask.apply(to: logits)
                }
            }
            let token = sampler.sample(UnsafeBufferPointer(logits), params: params, rng: &live[id]!.rng)
            live[id]!.processor.accept(token)
            advanceGrammar(id, &live[id]!, token)
            if let top = live[id]!.request.logprobs {
                logprobs[id] = logprobCalculator.compute(UnsafeBufferPointer(logits), token: token, top: top, params: params)
            }
            sampled[id] = token
            // n > 1: the other choices draw their first token from the same row (their processing and grammar state
            // equal the parent's before its first token, so the row is already processed for them), then fork below.
            if let children = unforked.removeValue(forKey: id) {
                for (cid, var child) in children {
                    let t = sampler.sample(UnsafeBufferPointer(logits), params: params, rng: &child.rng)
                    child.processor.accept(t)
                    advanceGrammar(cid, &child, t)
                    if let top = child.request.logprobs {
                        logprobs[cid] = logprobCalculator.compute(UnsafeBufferPointer(logits), token: t, top: top, params: params)
                    }
                    child.firstScheduled = live[id]!.firstScheduled   // its queue time is the parent's
                    live[cid] = child
                    forks.append((id, cid, t))
                }
            }
        }
        StepProfile.add(.sampler, since: samplerStart)
        let updateStart = StepProfile.now()
        var stops = scheduler.update(after: output, sampled: sampled)
        StepProfile.add(.scheduler, since: updateStart)
        for f in forks {
            guard let fork = scheduler.fork(parent: f.parent, child: f.child, sampled: f.token) else {
                preconditionFailure("request \(f.parent) could not fork choice \(f.child)")
            }
            if let c = fork.copy { runner.copyBlock(from: c.from, to: c.to) }
            stops[f.child] = fork.finish
            sampled[f.child] = f.token
        }
        // The generation-token counter moves every step, as vLLM's does (a dashboard's tokens/s is smooth, not a jump
        // when requests finish); an echo-only request's (maxNewTokens 0) sampled token is dropped, not generated.
        let generatedThisStep = sampled.keys.reduce(0) { $0 + (live[$1]?.request.maxNewTokens == 0 ? 0 : 1) }
        if generatedThisStep > 0 {
            lock.lock()
            sharedStats.generationTokensTotal += generatedThisStep
            lock.unlock()
        }
        for (id, token) in sampled {
            // A grammar that completed on this token finishes with `stop`, even at the length limit: the answer is whole.
            let done = completed.contains(id)
            handleToken(id, token, stop: done && stops[id] == .length ? nil : stops[id], logprobs: logprobs[id])
            if done && live[id] != nil { finish(id, .stop) }
        }
    }

    /// Prompt log-probabilities from `count` rows of logits (row j predicts prompt position `startPosition + j + 1`);
    /// reported once the whole prompt is covered.
    private func gatherPromptLogprobs(_ id: Int, startPosition: Int, row: Int, count: Int) {
        guard var r = live[id], let report = r.request.onPromptLogprobs, !r.promptDelivered else { return }
        let prompt = r.request.promptTokens
        let raw = SamplingParams(temperature: 1)
        for j in 0..<count {
            let target = startPosition + j + 1
            guard target < prompt.count, target == r.promptEntries.count + 1 else { continue }
            r.promptEntries.append(logprobCalculator.compute(runner.row(row + j), token: prompt[target],
                                                             top: r.request.logprobs ?? 0, params: raw))
        }
        if r.promptEntries.count == prompt.count - 1 {
            r.promptDelivered = true
            report(r.promptEntries)
            r.promptEntries = []
        }
        live[id] = r
    }

    /// Emits the text of a sampled token (with the log-probabilities of the tokens it completes, when asked), then
    /// ends the request if the scheduler (`stop`: length or a stop token) or a stop string says so. A stop token's
    /// own text and log-probability are never emitted.
    private func handleToken(_ id: Int, _ token: Int32, stop: FinishReason?, logprobs: TokenLogprobs?) {
        guard var r = live[id] else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if r.lastToken == 0 {
            // Per request, as vLLM counts it and as request_finished_total does: the choices of `n` share one.
            if r.choice == 0 { metrics.timeToFirstToken.observe(nanoseconds: now &- r.arrival) }
        } else {
            metrics.interTokenLatency.observe(nanoseconds: now &- r.lastToken)
        }
        r.lastToken = now
        live[id] = r
        if stop == .stop { return finish(id, .stop) }
        if let logprobs { r.pendingLogprobs.append(logprobs) }
        let detokenizeStart = StepProfile.now()
        let out = r.output.append(token)
        StepProfile.add(.detokenize, since: detokenizeStart)
        let eventsStart = StepProfile.now()
        defer { StepProfile.add(.events, since: eventsStart) }
        var emitted: [TokenLogprobs] = []
        switch out {
        case .emit(_, let ids) where ids.isEmpty: break   // nothing completed yet: the log-probabilities wait
        case .emit(_, let ids) where ids.count < r.pendingLogprobs.count:
            // Later ids wait for their text (the stop matcher holds it): so do their log-probabilities.
            emitted = Array(r.pendingLogprobs.prefix(ids.count))
            r.pendingLogprobs.removeFirst(ids.count)
        default: swap(&emitted, &r.pendingLogprobs)
        }
        live[id] = r
        switch out {
        case .emit(let parts, let ids):
            live[id]?.reasoningTokens += Self.deliver(parts, ids, logprobs: emitted, to: r.onEvent, inReasoning: r.output.isInReasoning)
        case .stopped(let parts, let ids):
            // The stop string's own tokens were dropped from the end of `ids`: drop their log-probabilities too.
            live[id]?.reasoningTokens += Self.deliver(parts, ids, logprobs: Array(emitted.prefix(ids.count)), to: r.onEvent,
                                                      inReasoning: r.output.isInReasoning)
            return finish(id, .stop, flush: false)
        }
        if let stop { finish(id, stop) }
    }

    /// Parsed parts → events; the ids (and their log-probabilities, one per id when asked) go with the first text or
    /// reasoning event (`always`: an empty text event carries them when there is no text, so every generated id is
    /// reported).
    /// - Returns: the number of ids that went with reasoning events, and of ids left without text (a character the
    ///   end cut in half) when the output ends inside a think block (`inReasoning`; helper-69: such a last token was
    ///   not counted in `reasoning_tokens`).
    private static func deliver(_ parts: [GenerationDelta], _ ids: [Int32], logprobs: [TokenLogprobs],
                                to onEvent: (GenerationEvent) -> Void, always: Bool = false, inReasoning: Bool = false) -> Int {
        var ids = ids, logprobs = logprobs
        var reasoning = 0
        for p in parts {
            switch p {
            case .content(let t) where !t.isEmpty:
                onEvent(.text(t, tokenIds: ids, logprobs: logprobs))
                ids = []
                logprobs = []
            case .reasoning(let t) where !t.isEmpty:
                onEvent(.reasoning(t, tokenIds: ids, logprobs: logprobs))
                reasoning += ids.count
                ids = []
                logprobs = []
            case .toolCallBegin(let i, let name): onEvent(.toolCallBegin(index: i, name: name))
            case .toolCallArguments(let i, let a): onEvent(.toolCallArguments(index: i, a))
            default: break
            }
        }
        if !ids.isEmpty || !logprobs.isEmpty || (always && parts.isEmpty) {
            if inReasoning { reasoning += ids.count }
            onEvent(.text("", tokenIds: ids, logprobs: logprobs))
        }
        return reasoning
    }

    /// Ends a request: flushes held-back text (unless a stop string ended it), frees its blocks, sends `finished`.
    private func finish(_ id: Int, _ reason: FinishReason, flush: Bool = true) {
        if reason == .abort, let children = unforked.removeValue(forKey: id) {
            // Choices not forked yet end with their parent's abort.
            for (_, child) in children {
                child.onEvent(.finished(.abort, GenerationUsage(promptTokens: child.request.promptTokens.count,
                                                                completionTokens: 0, cachedTokens: 0)))
            }
        }
        if live[id] == nil, let parent = unforked.first(where: { $0.value.contains { $0.id == id } })?.key {
            // A cancelled choice that has not forked yet: it is never forked.
            let child = unforked[parent]!.first { $0.id == id }!.live
            unforked[parent]!.removeAll { $0.id == id }
            scheduler.dropFork(parent: parent)
            child.onEvent(.finished(reason, GenerationUsage(promptTokens: child.request.promptTokens.count,
                                                            completionTokens: 0, cachedTokens: 0)))
            return
        }
        guard var r = live.removeValue(forKey: id) else { return }
        if startedGroups.contains(r.group) && !live.values.contains(where: { $0.group == r.group }) {
            startedGroups.remove(r.group)
        }
        let state = scheduler.request(id)
        let cached = state?.numCachedTokens ?? 0
        // maxNewTokens 0 (an echo-only completion): the one token the step sampled is not an output; usage and
        // the generation-token counter say 0.
        let generated = r.request.maxNewTokens == 0 ? 0 : state?.numOutputTokens ?? 0
        scheduler.finish(id: id, reason: reason)
        // One of the request's own stop tokens (not the end of generation) ended it: a call it cut is dropped.
        let stoppedByToken = reason == .stop && state.flatMap { $0.tokens.last }.map { r.request.stopTokenIds.contains($0) } == true
        if flush && reason != .abort, let tail = r.output.finish(truncated: reason == .length, stopped: stoppedByToken) {
            r.reasoningTokens += Self.deliver(tail.parts, tail.tokenIds, logprobs: r.pendingLogprobs, to: r.onEvent, always: true,
                                              inReasoning: r.output.isInReasoning)
        }
        if reason != .abort && r.choice == 0 {
            metrics.e2eRequestLatency.observe(nanoseconds: DispatchTime.now().uptimeNanoseconds &- r.arrival)
        }
        if config.enablePrefixCaching && r.firstScheduled != 0 && state?.looksUpPrefixCache == true {   // counts lookups only
            metrics.prefixCacheQueries.wrappingIncrement(by: r.request.promptTokens.count, ordering: .relaxed)
            metrics.prefixCacheHits.wrappingIncrement(by: cached, ordering: .relaxed)
        }
        let usage = GenerationUsage(promptTokens: r.request.promptTokens.count, completionTokens: generated, cachedTokens: cached,
                                    stopSequence: r.output.matchedStop, reasoningTokens: r.reasoningTokens,
                                    toolCalls: r.output.wholeToolCallCount)
        lock.lock()
        sharedStats.requestsFinished += r.choice == 0 ? 1 : 0
        sharedStats.cachedTokensTotal += r.choice == 0 ? cached : 0
        // The load figures change now, before the client hears of it: a client that sends its next request at
        // once must not be counted against a slot this request no longer holds (`submit`'s queue bound), and a
        // scrape after the answer never shows this request running.
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
        sharedStats.numRunning = scheduler.numRunningSequences
        sharedStats.numWaiting = scheduler.numWaitingSequences
        sharedStats.kvCacheUsage = scheduler.kvCacheUsage
        sharedStats.numPreemptions = scheduler.numPreemptions
        sharedStats.numFreeBlocks = scheduler.kv.pool.numFreeBlocks
        admitting = 0
    }
}
