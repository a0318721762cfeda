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
    /// Reasoning and tool-call parsing of the output (none by default: plain text).
    public var parsing = OutputParsing()

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

/// Token counts of one finished request, as OpenAI's `usage` reports them.
public struct GenerationUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV came from the prefix cache.
    public var cachedTokens: Int
}

/// Events delivered for one request, in order, on the engine thread (handlers must not block).
public enum GenerationEvent: Sendable, Equatable {
    /// New text: whole UTF-8 characters, never part of a stop string. `tokenIds` are the tokens it completes.
    /// The text may be empty at the end, when the last tokens only held bytes of a character that was cut off.
    case text(String, tokenIds: [Int32])
    /// Reasoning text (with `OutputParsing.reasoning`), tags removed. `tokenIds` as for `text`.
    case reasoning(String, tokenIds: [Int32])
    /// A tool call starts (with `OutputParsing.toolCalls`): its 0-based index in the reply and the function name.
    case toolCallBegin(index: Int, name: String)
    /// Arguments JSON text of call `index` (pieces concatenate).
    case toolCallArguments(index: Int, String)
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

/// One piece of parsed output (`OutputProcessor` with reasoning and tool-call parsing).
public enum GenerationDelta: Sendable, Equatable {
    /// Answer text.
    case content(String)
    /// Reasoning text (inside `<think>…</think>`), tags removed.
    case reasoning(String)
    /// A tool call starts: its 0-based position in the reply and the function name.
    case toolCallBegin(index: Int, name: String)
    /// A piece of a call's arguments (JSON text; pieces concatenate).
    case toolCallArguments(index: Int, String)
}

/// How a request's output is parsed beyond plain text (chosen from the chat template and the request).
public struct OutputParsing: Sendable, Equatable {
    /// Where reasoning starts, when `<think>` blocks are split off.
    public enum Reasoning: Sendable, Equatable {
        /// The prompt ends inside an open `<think>` block: output starts as reasoning.
        case startsInside
        /// Output is the answer unless it opens with `<think>`.
        case startsOutside
    }

    /// nil: reasoning stays inline in the content.
    public var reasoning: Reasoning?
    /// nil: no tool calls are parsed.
    public var toolCalls: ToolCallFormat?
    /// Most tool calls (`parallel_tool_calls: false` → 1); nil: no limit.
    public var maxToolCalls: Int?
    /// Control tokens whose text is markup the parsers read (`<tool_call>`, `<think>` …): detokenized as text, where
    /// other control tokens give nothing (`Prompt.markupTokenIds`).
    public var markupTokens: Set<Int32> = []
    /// Text already in the prompt that the output continues (an assistant prefill): it goes through the parsers
    /// first, so a tool call or think block it opens is completed by the output; its own text is not emitted.
    public var prefix = ""

    public init(reasoning: Reasoning? = nil, toolCalls: ToolCallFormat? = nil, maxToolCalls: Int? = nil) {
        self.reasoning = reasoning
        self.toolCalls = toolCalls
        self.maxToolCalls = maxToolCalls
    }
}
