import Grammar
import Scheduling

/// What the engine is asked to generate.
public struct GenerationRequest: Sendable {
    /// The prompt, already templated and tokenized. `[numPromptTokens]`
    public var promptTokens: [Int32]
    /// Most tokens to generate (`max_tokens` / `max_completion_tokens`); nil: up to the end of the context; 0: the
    /// prompt is only prefilled and scored (`/v1/completions` echo with `max_tokens` 0): the one token its last
    /// prefill step samples ends the request and is not reported as text by that route.
    public var maxNewTokens: Int?
    public var sampling: SamplingParams
    /// Stop strings; generation ends before the first one and it is never emitted.
    public var stop: [String]
    /// Lower values are served first.
    public var priority: Int
    /// Keep generating past end-of-generation tokens (until `maxNewTokens`).
    public var ignoreEOS: Bool
    /// Penalties, `logit_bias` and `min_tokens`, applied to the logits before sampling (`LogitsProcessor`).
    public var processing: LogitsProcessing
    /// Extra token ids that end the request like an end-of-generation token (vLLM's `stop_token_ids`; they end it
    /// even with `ignoreEOS`); their text is not emitted.
    public var stopTokenIds: [Int32]
    /// Log-probabilities per generated token with this many alternatives (0…20; `LogprobCalculator`); nil: none.
    public var logprobs: Int?
    /// Independent samples of the same prompt (`n`, 1…`maxNumSeqs`): one prefill, then the block table is forked
    /// (`Scheduler.fork`). Choice k > 0 draws from a seed derived from `sampling.seed` and k. Submit with
    /// `EngineCore.submit(_:onChoiceEvent:)` to tell the choices apart.
    public var n = 1
    /// When set, the prompt's log-probabilities are computed (positions 1…, each with `logprobs ?? 0` alternatives,
    /// from the raw logits: temperature 1, no penalties) and handed to this closure once, on the engine thread,
    /// before any event of the request. The prompt then bypasses the prefix cache.
    public var onPromptLogprobs: (@Sendable ([TokenLogprobs]) -> Void)?

    /// Constrains the output to this grammar (`response_format`): every sampled token keeps the text a prefix of a
    /// sentence of it, end-of-generation is allowed only where the text is complete, and the request finishes
    /// (`.stop`) as soon as nothing more can follow. nil: unconstrained.
    public var grammar: Grammar?
    /// Text the reply continues (a `continue_final_message` prefill) that `grammar` has already seen: the
    /// matcher starts after it. The caller checks it is a prefix of the grammar (`Grammar.acceptsPrefix`).
    public var grammarPrefix = ""
    /// A grammar that applies only inside tool calls (`tool_choice` `auto`, llama-server's lazy grammar): output is
    /// free until the text (generated, or `grammarPrefix`'s prefill) ends with `trigger`; from there `grammar`
    /// constrains what follows, and once it is complete the output is free again until the next trigger. Not
    /// combined with `grammar`.
    public var lazyGrammar: LazyGrammar?
    /// Reasoning and tool-call parsing of the output (none by default: plain text).
    public var parsing = OutputParsing()
    /// The prompt may start from the prefix cache (llama-server's `cache_prompt`); false computes it all anew (the
    /// blocks it fills are still cached for later requests). With the prefix cache off (`--no-enable-prefix-caching`)
    /// nothing is reused either way.
    public var reusePrefix = true

    public init(promptTokens: [Int32], maxNewTokens: Int?, sampling: SamplingParams = SamplingParams(),
                stop: [String] = [], priority: Int = 0, ignoreEOS: Bool = false,
                processing: LogitsProcessing = LogitsProcessing(), stopTokenIds: [Int32] = [], logprobs: Int? = nil,
                grammar: Grammar? = nil) {
        self.promptTokens = promptTokens
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stop = stop
        self.priority = priority
        self.ignoreEOS = ignoreEOS
        self.processing = processing
        self.stopTokenIds = stopTokenIds
        self.logprobs = logprobs
        self.grammar = grammar
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
    /// Generated tokens delivered as reasoning (`GenerationEvent.reasoning`), counted in `completionTokens` too.
    public var reasoningTokens = 0
    /// Whole tool calls in the reply: those a non-streamed reply holds (a streamed call that a stop or the token
    /// limit cut after it began is not one), for the finish reason of streamed and whole replies alike.
    public var toolCalls = 0
}

/// Events delivered for one request, in order, on the engine thread (handlers must not block).
public enum GenerationEvent: Sendable, Equatable {
    /// The request is scheduled for the first time (its prefill starts in this step); sent once, to choice 0,
    /// before any other event of the request, with the number of prompt tokens the prefix cache serves. Streams send
    /// their response head here, so a request the engine never started (`EngineCore.abortUnstarted`, shutdown) can
    /// still be answered with a retryable 503.
    case started(cachedTokens: Int)
    /// New text: whole UTF-8 characters, never part of a stop string. `tokenIds` are the tokens it completes.
    /// The text may be empty at the end, when the last tokens only held bytes of a character that was cut off.
    /// `logprobs`: one entry per id of `tokenIds` when the request asked for `logprobs`, else `[]`.
    case text(String, tokenIds: [Int32], logprobs: [TokenLogprobs] = [])
    /// Reasoning text (with `OutputParsing.reasoning`), tags removed. `tokenIds` as for `text`; `logprobs` likewise.
    case reasoning(String, tokenIds: [Int32], logprobs: [TokenLogprobs] = [])
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
    /// `n` is outside 1…limit (the running set must hold every choice at once).
    case tooManyChoices(n: Int, limit: Int)
    /// A batch (`EngineCore.submit(batch:onChoiceEvent:)`) larger than an idle server starts at once plus the queue.
    case batchTooLarge(count: Int, limit: Int)
    /// The model file, its tokenizer or its weights could not be loaded (the message names the file).
    case modelLoad(String)
    /// The chat template could not be read or parsed.
    case template(String)

    public var description: String {
        switch self {
        case .queueFull(let l): return "the server is busy: its queue of \(l) requests waiting for a free slot is full (each of a request's n choices counts)"
        case .contextLengthExceeded(let p, let m, let l):
            return "This model's maximum context length is \(l) tokens. However, you requested \(m > Int.max - p ? Int.max : p + m) tokens "
                + "(\(p) in the messages, \(m) in the completion). Please reduce the length of the messages or completion."
        case .emptyPrompt: return "the prompt is empty"
        case .shuttingDown: return "the server is shutting down"
        case .tooManyChoices(let n, let l): return "n=\(n) choices do not fit: at most \(l) sequences run together"
        case .batchTooLarge(let c, let l):
            return "\(c) sequences (prompts × n) cannot be served at once: at most \(l) run or wait here together (sequence slots and KV blocks for them, plus --max-queued-requests)"
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
    /// Most requests waiting because no sequence slot or KV room is free before new ones get `queueFull`
    /// (`--max-queued-requests`; 0: never wait, refuse what cannot start at once).
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
    /// KV blocks free (cached ones included) after the last engine step.
    public var numFreeBlocks = 0

    /// All counts zero (an idle engine that has served nothing).
    public static let zero = EngineStats()
}

/// A grammar that starts at a trigger text (`GenerationRequest.lazyGrammar`).
public struct LazyGrammar: Sendable {
    /// The text that opens a constrained stretch (e.g. `<tool_call>`). Non-empty.
    public let trigger: String
    /// What must follow the trigger, then any bytes: the stretch is over where the matcher reaches that free tail
    /// (`GrammarMatcher.isFree`). Ending in a free tail rather than a complete state lets one token close the
    /// stretch and start free text (`>` and `<` in `><`); a complete state would split such a token and push the
    /// model off its own tokenization.
    public let grammar: Grammar

    /// Triggers that count only at the start of the output, or right after a stretch one of them opened: grammars
    /// the output's first bytes must match (each complete when it is), each with its own stretch. Hermes calls
    /// written as a bare `{"name": "<tool>", …}` object, one per tool (llama.cpp's full-output trigger pattern with
    /// the tool names in it), where the same text later in an answer, or with another name, is just JSON.
    public let start: [(trigger: Grammar, grammar: Grammar)]

    /// - Parameters: `stretch` is what must follow `trigger` (non-empty) before the output is free again;
    ///   `start` start-only triggers (grammars with no empty sentence) and what must follow each.
    /// - Throws: `GrammarError` from `Grammar.build`.
    public init(trigger: String, stretch: GrammarExpr, start: [(trigger: GrammarExpr, stretch: GrammarExpr)] = []) throws(GrammarError) {
        precondition(!trigger.isEmpty, "a lazy grammar needs a trigger")
        self.trigger = trigger
        let free = GrammarExpr.repeated(.bytes(ByteSet(ranges: [0...255])), min: 0, max: nil)
        grammar = try Grammar.build(.sequence([stretch, free]))
        var built: [(trigger: Grammar, grammar: Grammar)] = []
        for s in start { built.append((try Grammar.build(s.trigger), try Grammar.build(.sequence([s.stretch, free])))) }
        self.start = built
    }
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
    /// Calls are begun, and their arguments emitted in pieces, while they are generated (streamed requests;
    /// `ToolCallParser`'s `streamArguments`); false: each call is emitted whole when its block ends.
    public var streamToolArguments = false
    /// Hermes markup with `tool_choice` `auto`: the declared tools a bare JSON call at the start of the reply may
    /// name (`ToolCallParser`); empty: only `<tool_call>` blocks are calls.
    public var bareCallNames: Set<String> = []
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
