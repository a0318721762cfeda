import Scheduling

/// What the engine is asked to generate.
public struct GenerationRequest: Sendable {
    /// The prompt, already templated and tokenized. `[numPromptTokens]`
    public var promptTokens: [Int32]
    /// Most tokens to generate (`max_tokens` / `max_completion_tokens`); nil: up to the end of the context.
    public var maxNewTokens: Int?
    public var sampling: SamplingParams
    /// Stop strings; generation ends before the first one and it is never emitted.
    public var stop: [String]
    /// Lower values are served first.
    public var priority: Int
    /// Keep generating past end-of-generation tokens (until `maxNewTokens`).
    public var ignoreEOS: Bool

    public init(promptTokens: [Int32], maxNewTokens: Int?, sampling: SamplingParams = SamplingParams(),
                stop: [String] = [], priority: Int = 0, ignoreEOS: Bool = false) {
        self.promptTokens = promptTokens
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stop = stop
        self.priority = priority
        self.ignoreEOS = ignoreEOS
    }
}

/// Token counts of one finished request, as OpenAI's `usage` reports them, and the stop string that ended it.
public struct GenerationUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV came from the prefix cache.
    public var cachedTokens: Int
    /// The stop string that ended the request (Anthropic's `stop_sequence`), nil for any other finish.
    public var stopSequence: String? = nil
}

/// Events delivered for one request, in order, on the engine thread (handlers must not block).
public enum GenerationEvent: Sendable, Equatable {
    /// New text: whole UTF-8 characters, never part of a stop string. `tokenIds` are the tokens it completes.
    /// The text may be empty at the end, when the last tokens only held bytes of a character that was cut off.
    case text(String, tokenIds: [Int32])
    /// The request is over; no event follows.
    case finished(FinishReason, GenerationUsage)
}

/// Errors of the Engine module: `EngineCore.submit` and `ServingModel.init`.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// The waiting queue is full; retry later.
    case queueFull(limit: Int)
    /// Prompt plus `max_tokens` cannot fit the context.
    case contextLengthExceeded(promptTokens: Int, maxNewTokens: Int, limit: Int)
    case emptyPrompt
    case shuttingDown
    /// The model file, its tokenizer or its weights could not be loaded (the message names the file).
    case modelLoad(String)
    /// The chat template could not be read or parsed.
    case template(String)

    public var description: String {
        switch self {
        case .queueFull(let l): return "the server is busy: \(l) requests are already waiting"
        case .contextLengthExceeded(let p, let m, let l):
            return "This model's maximum context length is \(l) tokens. However, you requested \(m > Int.max - p ? Int.max : p + m) tokens "
                + "(\(p) in the messages, \(m) in the completion). Please reduce the length of the messages or completion."
        case .emptyPrompt: return "the prompt is empty"
        case .shuttingDown: return "the server is shutting down"
        case .modelLoad(let m): return "cannot load model: \(m)"
        case .template(let m): return "chat template: \(m)"
        }
    }
}

/// Engine limits and the KV pool size.
public struct EngineConfig: Sendable {
    /// Longest sequence (prompt + output) in tokens (`--ctx-size`).
    public var contextSize: Int
    /// Most requests decoded together (`--max-num-seqs`).
    public var maxNumSeqs: Int
    /// Token budget of one engine step (`--max-num-batched-tokens`).
    public var maxNumBatchedTokens: Int
    /// Tokens per KV block (`--block-size`).
    public var blockSize: Int
    /// KV blocks in the pool; by default enough for `contextSize` × `maxNumSeqs` tokens.
    public var numBlocks: Int
    /// Most requests waiting for a slot before new ones get `queueFull` (`--max-queued-requests`).
    public var maxQueuedRequests: Int
    /// Reuse the KV of identical prompt prefixes (`--enable-prefix-caching`, on by default).
    public var enablePrefixCaching = true
    /// Service order (`--scheduling-policy`; the engine default serves by `priority`, the server's is fcfs).
    public var schedulingPolicy = SchedulingPolicy.priority

    public init(contextSize: Int, maxNumSeqs: Int = 8, maxNumBatchedTokens: Int = 512, blockSize: Int = 16,
                numBlocks: Int? = nil, maxQueuedRequests: Int = 256) {
        self.contextSize = contextSize
        self.maxNumSeqs = maxNumSeqs
        self.maxNumBatchedTokens = maxNumBatchedTokens
        self.blockSize = blockSize
        self.numBlocks = numBlocks ?? (contextSize * maxNumSeqs + blockSize - 1) / blockSize
        self.maxQueuedRequests = maxQueuedRequests
    }
}

/// A snapshot of the engine's load, for `/metrics` and `/health`.
public struct EngineStats: Sendable, Equatable {
    public var numRunning = 0
    public var numWaiting = 0
    public var kvCacheUsage = 0.0
    public var promptTokensTotal = 0
    public var generationTokensTotal = 0
    public var numPreemptions = 0
    public var requestsFinished = 0
    /// Prompt tokens served from the prefix cache.
    public var cachedTokensTotal = 0

    /// All counts zero (an idle engine that has served nothing).
    public static let zero = EngineStats()
}
