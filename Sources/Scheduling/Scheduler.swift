/// Limits of the scheduler, from the CLI (`--max-num-seqs`, `--max-num-batched-tokens`, `--block-size`,
/// `--ctx-size`) and the KV pool size.
public struct SchedulerConfig: Sendable {
    /// Most requests in the running set at once.
    public var maxNumSeqs: Int
    /// Most tokens computed in one engine step (prefill chunks plus decode tokens).
    public var maxNumBatchedTokens: Int
    /// Tokens per KV block.
    public var blockSize: Int
    /// Blocks in the KV pool.
    public var numBlocks: Int
    /// Reuse cached full blocks of identical prefixes.
    public var enablePrefixCaching = true
    /// Longest sequence (prompt + output) a request may reach.
    public var maxModelLen: Int
    /// Service order of requests.
    public var policy: SchedulingPolicy
    /// Token ids that end generation (the model's end-of-generation tokens), unless a request ignores them.
    public var stopTokenIds: Set<Int32>

    public init(maxNumSeqs: Int, maxNumBatchedTokens: Int, blockSize: Int, numBlocks: Int, maxModelLen: Int,
                enablePrefixCaching: Bool = true, policy: SchedulingPolicy = .priority, stopTokenIds: Set<Int32> = []) {
        self.enablePrefixCaching = enablePrefixCaching
        self.policy = policy
        self.stopTokenIds = stopTokenIds
        self.maxNumSeqs = maxNumSeqs
        self.maxNumBatchedTokens = maxNumBatchedTokens
        self.blockSize = blockSize
        self.numBlocks = numBlocks
        self.maxModelLen = maxModelLen
    }
}

extension SchedulerConfig {
    /// Longest sequence any request may reach: the context (`maxModelLen`) or the whole KV pool, if smaller.
    public var maxSequenceLength: Int { min(maxModelLen, numBlocks * blockSize) }

    /// Most prompt positions per step whose logits are all kept (requests with prompt log-probabilities are
    /// prefilled in chunks of at most this many tokens), so the logits buffer needs `maxNumSeqs + promptLogitsRows`
    /// rows.
    public static let promptLogitsRows = 32

    /// THE check that a request fits the context, and its completion budget: `maxNewTokens`, or with nil
    /// everything up to `maxSequenceLength`; 0 scores the prompt only (a prompt of the whole context fits). Written
    /// so that no operand can overflow.
    /// - Throws: `SchedulingError.requestTooLarge` when the prompt is empty of room (prompt ≥ the limit) or prompt +
    ///   `maxNewTokens` exceeds it; `needed` is that sum (saturating).
    public func completionBudget(promptLength: Int, maxNewTokens: Int?) throws(SchedulingError) -> Int {
        let limit = maxSequenceLength
        let room = limit - promptLength
        let wanted = maxNewTokens ?? room
        // 0: the prompt is only scored (echo with max_tokens 0). The token its last prefill step samples is dropped
        // and never needs a KV slot, so a prompt of the whole context fits.
        if wanted == 0 && room >= 0 { return 0 }
        guard room >= 1, wanted >= 1, wanted <= room else {
            let needed = wanted > Int.max - promptLength ? Int.max : promptLength + max(wanted, 0)
            throw SchedulingError.requestTooLarge(needed: needed, limit: limit)
        }
        return wanted
    }
}

/// Errors from admitting a request.
public enum SchedulingError: Error, Equatable, CustomStringConvertible {
    /// The sequence could never fit: `needed` tokens against a limit of `limit`.
    case requestTooLarge(needed: Int, limit: Int)
    case duplicateId(Int)
    /// A request needs at least one prompt token.
    case emptyPrompt

    public var description: String {
        switch self {
        case .requestTooLarge(let n, let l): return "request needs \(n) tokens of KV cache, the limit is \(l)"
        case .duplicateId(let id): return "request id \(id) is already scheduled"
        case .emptyPrompt: return "the prompt is empty"
        }
    }
}

/// One request's share of an engine step.
public struct ScheduledSequence: Sendable, Equatable {
    public let requestId: Int
    /// Position of the first token to compute (= tokens already in the KV cache).
    public let startPosition: Int
    /// Tokens to compute this step: `tokens[startPosition ..< startPosition + numTokens]`.
    public let tokenIds: [Int32]
    /// The request's block table after this step's allocation.
    public let blockTable: [Int32]
    /// True when this chunk reaches the end of the sequence, so its last position's logits are sampled.
    public let samplesToken: Bool
    /// Logits of every position of the chunk are wanted (prompt log-probabilities), not only the sampled one's.
    /// At most `SchedulerConfig.promptLogitsRows` such positions are scheduled per step.
    public var allLogits = false
    /// The chunk computes prompt positions (a prefill, or what is left of one after a prefix-cache hit).
    public var computesPrompt = false
}

/// What one engine step must compute: a value, so the scheduler never touches tensors (vLLM v1 `SchedulerOutput`).
public struct SchedulerOutput: Sendable, Equatable {
    public var scheduled: [ScheduledSequence] = []
    /// Requests preempted this step (their blocks were freed; they will be recomputed).
    public var preempted: [Int] = []
    /// Sum of `tokenIds.count` over `scheduled`.
    public var numBatchedTokens: Int { scheduled.reduce(0) { $0 + $1.tokenIds.count } }
}

/// Iteration-level scheduler (vLLM v1 style): each request's `numComputedTokens` catches up with its `numTokens`
/// within a per-step token budget, so chunked prefill and mixed prefill/decode batches need no special cases.
/// Running requests go first, in `RequestQueue` order; waiting ones are admitted while budget, sequence slots and
/// KV blocks last; when blocks run out the running request served last is preempted by recompute. The scheduler
/// also owns the length stop and the stop-token stop (`update`).
public struct Scheduler: Sendable {
    public let config: SchedulerConfig
    public private(set) var kv: KVCacheManager
    private var requests: [Int: SchedulerRequest] = [:]
    /// Running and waiting ids, each in service order.
    private var running: RequestQueue
    private var waiting: RequestQueue
    private var arrivals = 0
    /// Running-set slots promised to the children of running requests that have not forked yet (`n > 1`).
    private var reservedForks = 0
    /// Preemptions since start.
    public private(set) var numPreemptions = 0

    public init(config: SchedulerConfig) {
        self.config = config
        kv = KVCacheManager(numBlocks: config.numBlocks, blockSize: config.blockSize,
                            enablePrefixCaching: config.enablePrefixCaching)
        running = RequestQueue(policy: config.policy)
        waiting = RequestQueue(policy: config.policy)
    }

    public var numRunning: Int { running.count }
    public var numWaiting: Int { waiting.count }
    /// Sequences running: the running requests and the choices their prefill will fork into (reserved slots). One
    /// unit with `numWaitingSequences`: vLLM counts each of a request's `n` choices as a request.
    public var numRunningSequences: Int { running.count + reservedForks }
    /// Sequences waiting: each waiting request and the choices it forks into once it runs (`pendingForks`).
    public var numWaitingSequences: Int {
        var n = 0
        for i in 0..<waiting.count { n += 1 + (requests[waiting[i]]?.pendingForks ?? 0) }
        return n
    }
    public var hasWork: Bool { !running.isEmpty || !waiting.isEmpty }
    /// KV pool usage, 0...1.
    public var kvCacheUsage: Double { kv.usage }

    /// The scheduler's view of a request, while it is unfinished.
    public func request(_ id: Int) -> SchedulerRequest? { requests[id] }

    /// Admits a request to the waiting queue.
    /// - Parameters: `maxNewTokens` nil: up to the context; `ignoreEOS`: `config.stopTokenIds` do not end it;
    ///   `stopTokenIds`: the request's own stop tokens (vLLM's `stop_token_ids`), which end it even with `ignoreEOS`.
    /// - Throws: `SchedulingError.requestTooLarge` when the request does not fit (`SchedulerConfig.completionBudget`),
    ///   `.duplicateId`, `.emptyPrompt`.
    public mutating func add(id: Int, promptTokens: [Int32], maxNewTokens: Int?, priority: Int = 0,
                             ignoreEOS: Bool = false, stopTokenIds: Set<Int32> = [], forks: Int = 0,
                             promptLogprobs: Bool = false, reusePrefix: Bool = true) throws {
        precondition(forks >= 0 && forks < config.maxNumSeqs, "a request and its forks must fit the running set")
        guard requests[id] == nil else { throw SchedulingError.duplicateId(id) }
        guard !promptTokens.isEmpty else { throw SchedulingError.emptyPrompt }
        let budget = try config.completionBudget(promptLength: promptTokens.count, maxNewTokens: maxNewTokens)
        arrivals += 1
        requests[id] = SchedulerRequest(tokens: promptTokens, numPromptTokens: promptTokens.count,
                                        maxNewTokens: budget, priority: priority, arrival: arrivals, id: id,
                                        ignoreEOS: ignoreEOS)
        requests[id]!.stopTokenIds = stopTokenIds
        requests[id]!.pendingForks = forks
        requests[id]!.promptLogprobs = promptLogprobs
        requests[id]!.reusePrefix = reusePrefix
        insertWaiting(id)
    }

    /// Removes a request wherever it is and frees its blocks at once. Unknown ids are ignored.
    /// - Returns: whether the request was present.
    @discardableResult
    public mutating func finish(id: Int, reason: FinishReason) -> Bool {
        guard var r = requests.removeValue(forKey: id) else { return false }
        if r.status == .running { reservedForks -= r.pendingForks }
        kv.free(&r.blockIds)
        running.remove(id)
        waiting.remove(id)
        return true
    }

    /// Plans one engine step.
    public mutating func schedule() -> SchedulerOutput {
        var out = SchedulerOutput()
        var budget = config.maxNumBatchedTokens
        var logitRowsLeft = SchedulerConfig.promptLogitsRows
        var index = 0
        while index < running.count, budget > 0 {
            let id = running[index]
            var r = requests[id]!
            var n = min(r.numTokens - r.numComputedTokens, budget)
            precondition(n > 0, "a running request has nothing to compute: the engine did not append its token")
            if r.wantsPromptLogits {
                n = min(n, logitRowsLeft)
                guard n > 0 else {  // this step's prompt-logits rows are taken: wait for the next
                    index += 1
                    continue
                }
                logitRowsLeft -= n
            }
            var ok = kv.ensureCapacity(&r.blockIds, numTokens: r.numComputedTokens + n)
            while !ok {
                let victim = preemptionVictim()
                preempt(victim)
                out.preempted.append(victim)
                if victim == id { break }
                ok = kv.ensureCapacity(&r.blockIds, numTokens: r.numComputedTokens + n)
            }
            guard ok else { continue }  // `id` itself was preempted and removed from `running`
            requests[id] = r
            out.scheduled.append(makeScheduled(r, count: n))
            budget -= n
            index += 1
        }
        if out.preempted.isEmpty {
            while budget > 0, running.count < config.maxNumSeqs, let id = waiting.first {
                var r = requests[id]!
                // Room for the request and every child it will fork.
                guard running.count + reservedForks + 1 + r.pendingForks <= config.maxNumSeqs else { break }
                let firstTime = r.status == .waiting
                if r.blockIds.isEmpty && r.looksUpPrefixCache {
                    let cached = kv.cachedPrefix(r.tokens)
                    r.blockIds = cached.blocks
                    r.blockHashes = cached.hashes
                    r.numComputedTokens = cached.blocks.count * config.blockSize
                }
                var n = min(r.numTokens - r.numComputedTokens, budget)
                if r.wantsPromptLogits {
                    n = min(n, logitRowsLeft)
                    guard n > 0 else { break }
                    logitRowsLeft -= n
                }
                guard kv.ensureCapacity(&r.blockIds, numTokens: r.numComputedTokens + n) else {
                    kv.free(&r.blockIds)
                    r.blockHashes = []
                    r.numComputedTokens = 0
                    requests[id] = r
                    break
                }
                if firstTime { r.numCachedTokens = r.numComputedTokens }
                waiting.removeFirst()
                reservedForks += r.pendingForks
                r.status = .running
                requests[id] = r
                running.insert(id, priority: r.priority, arrival: r.arrival)
                out.scheduled.append(makeScheduled(r, count: n))
                budget -= n
            }
        }
        return out
    }

    /// Records that a step ran: advances `numComputedTokens` of every scheduled request, appends the token
    /// sampled for each request whose chunk reached the end of its sequence, and decides the stops that need no
    /// text: a stop token (`.stop`, unless the request ignores EOS) and the completion budget (`.length`). The
    /// finished requests keep their state until `finish(id:reason:)` (the engine still turns their last token
    /// into text first).
    /// - Parameter sampled: request id → sampled token, for exactly the scheduled sequences with `samplesToken`.
    /// - Returns: request id → why it is finished, for the requests this step finished.
    @discardableResult
    public mutating func update(after output: SchedulerOutput, sampled: [Int: Int32]) -> [Int: FinishReason] {
        var finished: [Int: FinishReason] = [:]
        for s in output.scheduled {
            guard var r = requests[s.requestId] else { continue }  // finished meanwhile
            precondition(r.numComputedTokens == s.startPosition, "step applied twice")
            r.numComputedTokens += s.tokenIds.count
            kv.registerFullBlocks(tokens: r.tokens, blockIds: r.blockIds, numComputed: r.numComputedTokens,
                                  hashes: &r.blockHashes)
            if s.samplesToken {
                guard let t = sampled[s.requestId] else { preconditionFailure("no token sampled for \(s.requestId)") }
                r.tokens.append(t)
                if (!r.ignoreEOS && config.stopTokenIds.contains(t)) || r.stopTokenIds.contains(t) {
                    finished[r.id] = .stop
                } else if r.numOutputTokens >= r.maxNewTokens {
                    finished[r.id] = .length
                }
            }
            requests[s.requestId] = r
        }
        return finished
    }

    /// What `fork` did: the KV block to copy (copy-on-write of the parent's last, partial block) and whether the
    /// child is already finished by its first token.
    public struct Fork: Sendable, Equatable {
        /// Copy the K/V of block `from` into block `to` before the next step (nil: nothing to copy).
        public var copy: (from: Int32, to: Int32)?
        /// `.stop` (a stop token) or `.length` when the child's first token ends it.
        public var finish: FinishReason?

        public static func == (a: Fork, b: Fork) -> Bool {
            a.copy?.from == b.copy?.from && a.copy?.to == b.copy?.to && a.finish == b.finish
        }
    }

    /// Forks one more sequence (`n > 1`) from request `parent`, whose prompt has just been computed (call right after
    /// the `update` of the step that sampled its first token): the child `child` shares the parent's full prompt
    /// blocks (reference counts), gets a copy of the last partial block (copy-on-write: the parent's next token
    /// goes there), and starts with its own first token `sampled`. When no block is free for the copy, the child
    /// recomputes that partial block instead. One prefill serves every child.
    /// - Returns: nil when `parent` is unknown or has no fork left.
    public mutating func fork(parent: Int, child: Int, sampled: Int32) -> Fork? {
        guard var p = requests[parent], p.pendingForks > 0, requests[child] == nil else { return nil }
        let promptLength = p.numPromptTokens
        precondition(p.numComputedTokens >= promptLength, "fork before the prompt is computed")
        let bs = config.blockSize
        let full = promptLength / bs
        var blocks = Array(p.blockIds[0..<full])
        kv.share(blocks)
        var computed = full * bs
        var copy: (from: Int32, to: Int32)?
        if promptLength % bs != 0, let b = kv.pool.allocate(1)?.first {
            blocks.append(b)
            copy = (p.blockIds[full], b)
            computed = promptLength
        }
        arrivals += 1
        var c = SchedulerRequest(tokens: Array(p.tokens[0..<promptLength]) + [sampled], numPromptTokens: promptLength,
                                 maxNewTokens: p.maxNewTokens, priority: p.priority, arrival: arrivals, id: child,
                                 ignoreEOS: p.ignoreEOS)
        c.stopTokenIds = p.stopTokenIds
        c.blockIds = blocks
        c.blockHashes = Array(p.blockHashes.prefix(full))
        c.numComputedTokens = computed
        c.numCachedTokens = p.numCachedTokens
        c.status = .running
        requests[child] = c
        running.insert(child, priority: c.priority, arrival: c.arrival)
        p.pendingForks -= 1
        requests[parent] = p
        if p.status == .running { reservedForks -= 1 }
        var finish: FinishReason?
        if (!c.ignoreEOS && config.stopTokenIds.contains(sampled)) || c.stopTokenIds.contains(sampled) {
            finish = .stop
        } else if c.numOutputTokens >= c.maxNewTokens {
            finish = .length
        }
        return Fork(copy: copy, finish: finish)
    }

    /// Gives up one fork of `parent` (that choice was cancelled before it forked).
    public mutating func dropFork(parent: Int) {
        guard var p = requests[parent], p.pendingForks > 0 else { return }
        p.pendingForks -= 1
        requests[parent] = p
        if p.status == .running { reservedForks -= 1 }
    }

    // MARK: private

    private func makeScheduled(_ r: SchedulerRequest, count n: Int) -> ScheduledSequence {
        let start = r.numComputedTokens
        var s = ScheduledSequence(requestId: r.id, startPosition: start, tokenIds: Array(r.tokens[start..<start + n]),
                                  blockTable: r.blockIds, samplesToken: start + n == r.numTokens)
        s.allLogits = r.wantsPromptLogits
        s.computesPrompt = start < r.numPromptTokens
        return s
    }

    /// The running request served last: the highest priority value, latest arrival. `running` is kept in service
    /// order, so the victim is never one already scheduled earlier in the current step.
    private func preemptionVictim() -> Int { running.last! }

    private mutating func preempt(_ id: Int) {
        var r = requests[id]!
        reservedForks -= r.pendingForks
        kv.free(&r.blockIds)
        r.blockHashes = []
        r.numComputedTokens = 0
        r.status = .preempted
        r.numPreemptions += 1
        requests[id] = r
        running.remove(id)
        numPreemptions += 1
        insertWaiting(id)
    }

    private mutating func insertWaiting(_ id: Int) {
        let r = requests[id]!
        waiting.insert(id, priority: r.priority, arrival: r.arrival)
    }
}

extension SchedulerRequest {
    init(tokens: [Int32], numPromptTokens: Int, maxNewTokens: Int, priority: Int, arrival: Int, id: Int, ignoreEOS: Bool) {
        self.id = id
        self.ignoreEOS = ignoreEOS
        self.tokens = tokens
        self.numPromptTokens = numPromptTokens
        self.maxNewTokens = maxNewTokens
        self.priority = priority
        self.arrival = arrival
    }
}
