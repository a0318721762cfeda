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

    public init(maxNumSeqs: Int, maxNumBatchedTokens: Int, blockSize: Int, numBlocks: Int, maxModelLen: Int,
                enablePrefixCaching: Bool = true) {
        self.enablePrefixCaching = enablePrefixCaching
        self.maxNumSeqs = maxNumSeqs
        self.maxNumBatchedTokens = maxNumBatchedTokens
        self.blockSize = blockSize
        self.numBlocks = numBlocks
        self.maxModelLen = maxModelLen
    }
}

/// Errors from admitting a request.
public enum SchedulingError: Error, Equatable, CustomStringConvertible {
    /// The sequence could never fit: `needed` tokens against a limit of `limit`.
    case requestTooLarge(needed: Int, limit: Int)
    case duplicateId(Int)

    public var description: String {
        switch self {
        case .requestTooLarge(let n, let l): return "request needs \(n) tokens of KV cache, the limit is \(l)"
        case .duplicateId(let id): return "request id \(id) is already scheduled"
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
/// Running requests go first (FCFS within priority); waiting ones are admitted while budget, sequence slots and
/// KV blocks last; when blocks run out the lowest-priority, latest running request is preempted by recompute.
public struct Scheduler: Sendable {
    public let config: SchedulerConfig
    public private(set) var kv: KVCacheManager
    private var requests: [Int: SchedulerRequest] = [:]
    /// Ids in service order: (priority, arrival) ascending.
    private var running: [Int] = []
    private var waiting: [Int] = []
    private var arrivals = 0
    /// Preemptions since start.
    public private(set) var numPreemptions = 0

    public init(config: SchedulerConfig) {
        self.config = config
        kv = KVCacheManager(numBlocks: config.numBlocks, blockSize: config.blockSize,
                            enablePrefixCaching: config.enablePrefixCaching)
    }

    public var numRunning: Int { running.count }
    public var numWaiting: Int { waiting.count }
    public var hasWork: Bool { !running.isEmpty || !waiting.isEmpty }
    /// KV pool usage, 0...1.
    public var kvCacheUsage: Double { kv.usage }

    /// The scheduler's view of a request, while it is unfinished.
    public func request(_ id: Int) -> SchedulerRequest? { requests[id] }

    /// Admits a request to the waiting queue.
    /// - Throws: `SchedulingError.requestTooLarge` when prompt + `maxNewTokens` exceeds `maxModelLen` or the
    ///   whole KV pool; `.duplicateId`.
    public mutating func add(id: Int, promptTokens: [Int32], maxNewTokens: Int, priority: Int = 0) throws {
        precondition(!promptTokens.isEmpty && maxNewTokens >= 1)
        guard requests[id] == nil else { throw SchedulingError.duplicateId(id) }
        let limit = min(config.maxModelLen, config.numBlocks * config.blockSize)
        guard maxNewTokens <= limit - promptTokens.count else {
            throw SchedulingError.requestTooLarge(needed: maxNewTokens > Int.max - promptTokens.count ? Int.max : promptTokens.count + maxNewTokens, limit: limit)
        }
        arrivals += 1
        requests[id] = SchedulerRequest(tokens: promptTokens, numPromptTokens: promptTokens.count,
                                        maxNewTokens: maxNewTokens, priority: priority, arrival: arrivals, id: id)
        insertWaiting(id)
    }

    /// Removes a request wherever it is and frees its blocks at once. Unknown ids are ignored.
    /// - Returns: whether the request was present.
    @discardableResult
    public mutating func finish(id: Int, reason: FinishReason) -> Bool {
        guard var r = requests.removeValue(forKey: id) else { return false }
        kv.free(&r.blockIds)
        running.removeAll { $0 == id }
        waiting.removeAll { $0 == id }
        return true
    }

    /// Plans one engine step.
    public mutating func schedule() -> SchedulerOutput {
        var out = SchedulerOutput()
        var budget = config.maxNumBatchedTokens
        var index = 0
        while index < running.count, budget > 0 {
            let id = running[index]
            var r = requests[id]!
            let n = min(r.numTokens - r.numComputedTokens, budget)
            precondition(n > 0, "a running request has nothing to compute: the engine did not append its token")
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
                let firstTime = r.status == .waiting
                if r.blockIds.isEmpty {
                    let cached = kv.cachedPrefix(r.tokens)
                    r.blockIds = cached.blocks
                    r.blockHashes = cached.hashes
                    r.numComputedTokens = cached.blocks.count * config.blockSize
                }
                let n = min(r.numTokens - r.numComputedTokens, budget)
                guard kv.ensureCapacity(&r.blockIds, numTokens: r.numComputedTokens + n) else {
                    kv.free(&r.blockIds)
                    r.blockHashes = []
                    r.numComputedTokens = 0
                    requests[id] = r
                    break
                }
                if firstTime { r.numCachedTokens = r.numComputedTokens }
                waiting.removeFirst()
                r.status = .running
                requests[id] = r
                let at = running.firstIndex { order(r, before: requests[$0]!) } ?? running.endIndex
                running.insert(id, at: at)
                out.scheduled.append(makeScheduled(r, count: n))
                budget -= n
            }
        }
        return out
    }

    /// Records that a step ran: advances `numComputedTokens` of every scheduled request and appends the token
    /// sampled for each request whose chunk reached the end of its sequence.
    /// - Parameter sampled: request id → sampled token, for exactly the scheduled sequences with `samplesToken`.
    public mutating func update(after output: SchedulerOutput, sampled: [Int: Int32]) {
        for s in output.scheduled {
            guard var r = requests[s.requestId] else { continue }  // finished meanwhile
            precondition(r.numComputedTokens == s.startPosition, "step applied twice")
            r.numComputedTokens += s.tokenIds.count
            kv.registerFullBlocks(tokens: r.tokens, blockIds: r.blockIds, numComputed: r.numComputedTokens,
                                  hashes: &r.blockHashes)
            if s.samplesToken {
                guard let t = sampled[s.requestId] else { preconditionFailure("no token sampled for \(s.requestId)") }
                r.tokens.append(t)
            }
            requests[s.requestId] = r
        }
    }

    // MARK: private

    private func makeScheduled(_ r: SchedulerRequest, count n: Int) -> ScheduledSequence {
        let start = r.numComputedTokens
        return ScheduledSequence(requestId: r.id, startPosition: start, tokenIds: Array(r.tokens[start..<start + n]),
                                 blockTable: r.blockIds, samplesToken: start + n == r.numTokens)
    }

    /// The running request served last: the highest priority value, latest arrival. `running` is kept in service
    /// order, so the victim is never one already scheduled earlier in the current step.
    private func preemptionVictim() -> Int { running.last! }

    private mutating func preempt(_ id: Int) {
        var r = requests[id]!
        kv.free(&r.blockIds)
        r.blockHashes = []
        r.numComputedTokens = 0
        r.status = .preempted
        r.numPreemptions += 1
        requests[id] = r
        running.removeAll { $0 == id }
        numPreemptions += 1
        insertWaiting(id)
    }

    private func order(_ a: SchedulerRequest, before b: SchedulerRequest) -> Bool {
        (a.priority, a.arrival) < (b.priority, b.arrival)
    }

    private mutating func insertWaiting(_ id: Int) {
        let r = requests[id]!
        let at = waiting.firstIndex { order(r, before: requests[$0]!) } ?? waiting.endIndex
        waiting.insert(id, at: at)
    }
}

extension SchedulerRequest {
    init(tokens: [Int32], numPromptTokens: Int, maxNewTokens: Int, priority: Int, arrival: Int, id: Int) {
        self.id = id
        self.tokens = tokens
        self.numPromptTokens = numPromptTokens
        self.maxNewTokens = maxNewTokens
        self.priority = priority
        self.arrival = arrival
    }
}
