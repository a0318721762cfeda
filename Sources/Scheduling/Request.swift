/// Why a request stopped generating.
public enum FinishReason: String, Sendable, Equatable {
    /// An end-of-generation token or a stop string.
    case stop
    /// `max_tokens` reached, or the context is full.
    case length
    /// The client went away or the request was cancelled.
    case abort
}

/// Lifecycle of a request inside the scheduler:
///
///     waiting ──schedule──▶ running ──finish──▶ finished(reason)
///        ▲                     │
///        └──── preempted ◀─────┘  (KV blocks ran out: blocks freed, recomputed later)
public enum RequestStatus: Sendable, Equatable {
    case waiting
    case running
    case preempted
    case finished(FinishReason)
}

/// One request as the scheduler sees it: token ids and counts, never tensors.
public struct SchedulerRequest: Sendable {
    public let id: Int
    /// Prompt followed by every generated token. `[numTokens]`
    public internal(set) var tokens: [Int32]
    public let numPromptTokens: Int
    /// Tokens whose K/V are in the cache (the prefix the next step continues from).
    public internal(set) var numComputedTokens: Int = 0
    /// KV blocks held, in sequence order: the block table.
    public internal(set) var blockIds: [Int32] = []
    /// Largest number of generated tokens before `length` (the request's `max_tokens`, or what the context leaves).
    public let maxNewTokens: Int
    /// End-of-generation tokens do not end this request (vLLM's `ignore_eos`).
    public let ignoreEOS: Bool
    /// The request's own stop tokens (vLLM's `stop_token_ids`): they end it with `.stop`, whatever `ignoreEOS` says.
    public internal(set) var stopTokenIds: Set<Int32> = []
    /// Children still to fork from this request once its prompt is computed (`n - 1` for `n` choices).
    public internal(set) var pendingForks = 0
    /// The logits of every prompt position are wanted (prompt log-probabilities): no prefix-cache reuse, prefill in
    /// chunks of at most `SchedulerConfig.promptLogitsRows` tokens.
    public internal(set) var promptLogprobs = false
    /// The prompt may start from cached KV blocks of earlier requests (llama-server's `cache_prompt`, default true);
    /// false computes every prompt position anew. The blocks it fills are cached for later requests either way.
    public internal(set) var reusePrefix = true
    /// Whether scheduling looks the prompt up in the prefix cache: not with `reusePrefix` false, nor for prompt
    /// log-probabilities (every prompt position computed). The engine's prefix-cache counters count only these.
    public var looksUpPrefixCache: Bool { reusePrefix && !promptLogprobs }
    /// Whether the next chunk still covers prompt positions whose logits are wanted.
    var wantsPromptLogits: Bool { promptLogprobs && numComputedTokens < numPromptTokens }
    /// Lower is served first (vLLM convention); ties go to the earlier arrival.
    public let priority: Int
    /// Monotonic arrival counter.
    public let arrival: Int
    public internal(set) var status: RequestStatus = .waiting
    /// Times this request was preempted.
    public internal(set) var numPreemptions = 0
    /// Prompt tokens whose KV came from the prefix cache when the request was first scheduled.
    public internal(set) var numCachedTokens = 0
    /// Hashes of the full blocks registered so far (prefix caching), one per leading block of `blockIds`.
    public internal(set) var blockHashes: [UInt64] = []

    /// Generated tokens so far.
    public var numOutputTokens: Int { tokens.count - numPromptTokens }
    /// Tokens in the sequence (prompt + output).
    public var numTokens: Int { tokens.count }
}
