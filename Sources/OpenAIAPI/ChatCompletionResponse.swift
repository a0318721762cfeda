// Response objects of `/v1/chat/completions` (OpenAI "The chat completion object" and "chunk object"),
// encoded by hand so that every `null` OpenAI sends is present and member order is fixed.
import JSON

/// Why generation ended.
public enum FinishReason: String, Sendable, Equatable {
    case stop, length
    case toolCalls = "tool_calls"
    case contentFilter = "content_filter"
}

/// Token accounting: `{"prompt_tokens","completion_tokens","total_tokens","prompt_tokens_details":{"cached_tokens"}}`.
public struct Usage: Sendable, Equatable {
    /// Tokens in the rendered prompt.
    public var promptTokens: Int
    /// Generated tokens (reasoning included).
    public var completionTokens: Int
    /// Prompt tokens served from the prefix cache.
    public var cachedTokens: Int
    /// Completion tokens spent on reasoning (rendered under `completion_tokens_details` when non-nil).
    public var reasoningTokens: Int?
    /// False for the running counts of a stream chunk (`running`): only the three counts are rendered, as vLLM's
    /// `continuous_usage_stats` sends them (the cached share is known when the request ends).
    public var hasDetails = true

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int = 0, reasoningTokens: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
    }

    /// The running usage of a stream chunk (`stream_options.continuous_usage_stats`):
    /// `{"prompt_tokens","completion_tokens","total_tokens"}`, counts in tokens so far, no details.
    public static func running(promptTokens: Int, completionTokens: Int) -> Usage {
        var u = Usage(promptTokens: promptTokens, completionTokens: completionTokens)
        u.hasDetails = false
        return u
    }

    /// `promptTokens + completionTokens`.
    public var totalTokens: Int { promptTokens + completionTokens }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        var m: [(key: String, value: JSONValue)] = [
            ("prompt_tokens", .int(promptTokens)), ("completion_tokens", .int(completionTokens)),
            ("total_tokens", .int(totalTokens)),
        ]
        guard hasDetails else { return .object(m) }
        m.append(("prompt_tokens_details", .object([("cached_tokens", .int(cachedTokens))])))
        if let reasoningTokens { m.append(("completion_tokens_details", .object([("reasoning_tokens", .int(reasoningTokens))]))) }
        return .object(m)
    }
}

/// One alternative at a position: `{"token","logprob","bytes"}`.
public struct TopLogprob: Sendable, Equatable {
    /// The token's text (may be a partial UTF-8 character rendered with U+FFFD).
    public var token: String
    /// Natural-log probability (≤ 0).
    public var logprob: Double
    /// UTF-8 bytes of the token (may be a partial character).
    public var bytes: [UInt8]

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(token: String, logprob: Double, bytes: [UInt8]) {
        self.token = token
        self.logprob = logprob
        self.bytes = bytes
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        .object([("token", .string(token)), ("logprob", .double(logprob)), ("bytes", .array(bytes.map { .int(Int($0)) }))])
    }
}

/// The chosen token at one position plus its alternatives: `{"token","logprob","bytes","top_logprobs":[…]}`.
public struct TokenLogprob: Sendable, Equatable {
    /// The token's text (may be a partial UTF-8 character rendered with U+FFFD).
    public var token: String
    /// Natural-log probability (≤ 0).
    public var logprob: Double
    /// UTF-8 bytes of the token.
    public var bytes: [UInt8]
    /// Most likely alternatives, descending; `[]` when `top_logprobs` was 0 or absent.
    public var topLogprobs: [TopLogprob]

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(token: String, logprob: Double, bytes: [UInt8], topLogprobs: [TopLogprob] = []) {
        self.token = token
        self.logprob = logprob
        self.bytes = bytes
        self.topLogprobs = topLogprobs
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        .object([("token", .string(token)), ("logprob", .double(logprob)), ("bytes", .array(bytes.map { .int(Int($0)) })),
                 ("top_logprobs", .array(topLogprobs.map(\.json)))])
    }

    /// `{"content":[…]}` or `null`.
    static func choiceJSON(_ entries: [TokenLogprob]?) -> JSONValue {
        guard let entries else { return .null }
        return .object([("content", .array(entries.map(\.json)))])
    }
}

/// Non-streaming reply: `{"id","object":"chat.completion","created","model",["system_fingerprint"],"choices","usage"}`.
public struct ChatCompletionResponse: Sendable, Equatable {
    /// `choices[i]`: `{"index","message":{"role":"assistant","content",["reasoning_content"],["tool_calls"]},"logprobs","finish_reason"}`.
    public struct Choice: Sendable, Equatable {
        /// Position of the choice (always 0 while only `n = 1` is served) or of the tool call.
        public var index: Int
        /// Answer text; `null` on the wire when nil (e.g. with tool calls).
        public var content: String?
        /// Reasoning text (DeepSeek convention); the key is omitted when nil.
        public var reasoningContent: String?
        /// The key is omitted when empty.
        public var toolCalls: [ToolCall]
        /// Per-token entries, or nil for `"logprobs":null`.
        public var logprobs: [TokenLogprob]?
        /// Why generation ended.
        public var finishReason: FinishReason

        /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
        public init(index: Int = 0, content: String?, reasoningContent: String? = nil, toolCalls: [ToolCall] = [],
                    logprobs: [TokenLogprob]? = nil, finishReason: FinishReason) {
            self.index = index
            self.content = content
            self.reasoningContent = reasoningContent
            self.toolCalls = toolCalls
            self.logprobs = logprobs
            self.finishReason = finishReason
        }

        /// The wire JSON (shape in the type's doc), members in OpenAI's order.
        public var json: JSONValue {
            var msg: [(key: String, value: JSONValue)] = [("role", .string("assistant")), ("content", .stringOrNull(content))]
            if let reasoningContent { msg.append(("reasoning_content", .string(reasoningContent))) }
            if !toolCalls.isEmpty { msg.append(("tool_calls", .array(toolCalls.map(\.json)))) }
            return .object([("index", .int(index)), ("message", .object(msg)), ("logprobs", TokenLogprob.choiceJSON(logprobs)),
                            ("finish_reason", .string(finishReason.rawValue))])
        }
    }

    /// `"chatcmpl-…"`.
    public var id: String
    /// Unix time, seconds.
    public var created: Int
    /// Model id as listed by `/v1/models`.
    public var model: String
    /// Backend configuration fingerprint; the key is omitted when nil.
    public var systemFingerprint: String?
    /// The generated alternatives (one while only `n = 1` is served; empty in a usage chunk).
    public var choices: [Choice]
    /// Token totals of the request.
    public var usage: Usage

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(id: String, created: Int, model: String, systemFingerprint: String? = nil, choices: [Choice], usage: Usage) {
        self.id = id
        self.created = created
        self.model = model
        self.systemFingerprint = systemFingerprint
        self.choices = choices
        self.usage = usage
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        var m: [(key: String, value: JSONValue)] = [("id", .string(id)), ("object", .string("chat.completion")),
                                                    ("created", .int(created)), ("model", .string(model))]
        if let systemFingerprint { m.append(("system_fingerprint", .string(systemFingerprint))) }
        m.append(("choices", .array(choices.map(\.json))))
        m.append(("usage", usage.json))
        return .object(m)
    }

    /// Compact JSON bytes.
    public func encoded() -> [UInt8] { json.encoded() }
}

/// One streamed tool-call fragment: `{"index",["id"],["type"],"function":{["name"],["arguments"]}}`.
public struct ToolCallDelta: Sendable, Equatable {
    /// Position of the choice (always 0 while only `n = 1` is served) or of the tool call.
    public var index: Int
    /// Only in the first fragment of a call: the call id.
    public var id: String?
    /// Only in the first fragment of a call: `"function"`.
    public var type: String?
    /// Only in the first fragment of a call: the function name.
    public var name: String?
    /// A piece of the arguments JSON text; pieces concatenate to the full text.
    public var arguments: String?

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(index: Int, id: String? = nil, type: String? = nil, name: String? = nil, arguments: String? = nil) {
        self.index = index
        self.id = id
        self.type = type
        self.name = name
        self.arguments = arguments
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        var m: [(key: String, value: JSONValue)] = [("index", .int(index))]
        if let id { m.append(("id", .string(id))) }
        if let type { m.append(("type", .string(type))) }
        var fn: [(key: String, value: JSONValue)] = []
        if let name { fn.append(("name", .string(name))) }
        if let arguments { fn.append(("arguments", .string(arguments))) }
        m.append(("function", .object(fn)))
        return .object(m)
    }
}

/// A streaming event: `{"id","object":"chat.completion.chunk","created","model",["system_fingerprint"],"choices",["usage"]}`.
/// `id` and `created` must be the same in every chunk of a stream.
public struct ChatCompletionChunk: Sendable, Equatable {
    /// `choices[i]`: `{"index","delta":{…},"logprobs","finish_reason"}`; `finish_reason` is `null` until the end.
    public struct Choice: Sendable, Equatable {
        /// Position of the choice (always 0 while only `n = 1` is served) or of the tool call.
        public var index: Int
        /// `"assistant"` in the first chunk of a choice, otherwise nil (key omitted).
        public var role: String?
        /// Keys below are omitted when nil.
        public var content: String?
        /// Reasoning text delta (DeepSeek convention); key omitted when nil.
        public var reasoningContent: String?
        /// Tool-call fragments; key omitted when nil.
        public var toolCalls: [ToolCallDelta]?
        /// Per-token entries of this chunk, or nil (`"logprobs":null`).
        public var logprobs: [TokenLogprob]?
        /// Nil (`null` on the wire) until the final chunk of the choice.
        public var finishReason: FinishReason?

        /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
        public init(index: Int = 0, role: String? = nil, content: String? = nil, reasoningContent: String? = nil,
                    toolCalls: [ToolCallDelta]? = nil, logprobs: [TokenLogprob]? = nil, finishReason: FinishReason? = nil) {
            self.index = index
            self.role = role
            self.content = content
            self.reasoningContent = reasoningContent
            self.toolCalls = toolCalls
            self.logprobs = logprobs
            self.finishReason = finishReason
        }

        /// The wire JSON (shape in the type's doc), members in OpenAI's order.
        public var json: JSONValue {
            var d: [(key: String, value: JSONValue)] = []
            if let role { d.append(("role", .string(role))) }
            if let content { d.append(("content", .string(content))) }
            if let reasoningContent { d.append(("reasoning_content", .string(reasoningContent))) }
            if let toolCalls { d.append(("tool_calls", .array(toolCalls.map(\.json)))) }
            return .object([("index", .int(index)), ("delta", .object(d)), ("logprobs", TokenLogprob.choiceJSON(logprobs)),
                            ("finish_reason", finishReason.map { .string($0.rawValue) } ?? .null)])
        }
    }

    /// Identifier as sent on the wire (`chatcmpl-…`, `cmpl-…`, `call_…`, or a model id).
    public var id: String
    /// Unix time in seconds; the same in every chunk of a stream.
    public var created: Int
    /// Model id as listed by `/v1/models`.
    public var model: String
    /// Backend configuration fingerprint; the key is omitted when nil.
    public var systemFingerprint: String?
    /// Empty in the final usage chunk.
    public var choices: [Choice]
    /// Set in the final usage chunk, and in every chunk of a request with `stream_options.continuous_usage_stats`
    /// (then the running counts, `Usage.running`).
    public var usage: Usage?
    /// True when the client asked for `stream_options.include_usage`: every chunk then carries `"usage"`
    /// (`null` unless `usage` is set); otherwise the key is present only when `usage` is set.
    public var includeUsageField: Bool

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(id: String, created: Int, model: String, systemFingerprint: String? = nil, choices: [Choice],
                usage: Usage? = nil, includeUsageField: Bool = false) {
        self.id = id
        self.created = created
        self.model = model
        self.systemFingerprint = systemFingerprint
        self.choices = choices
        self.usage = usage
        self.includeUsageField = includeUsageField
    }

    /// The final `include_usage` chunk: `choices: []` and the totals.
    public static func usageChunk(id: String, created: Int, model: String, systemFingerprint: String? = nil,
                                  usage: Usage) -> ChatCompletionChunk {
        ChatCompletionChunk(id: id, created: created, model: model, systemFingerprint: systemFingerprint, choices: [],
                            usage: usage, includeUsageField: true)
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        var m: [(key: String, value: JSONValue)] = [("id", .string(id)), ("object", .string("chat.completion.chunk")),
                                                    ("created", .int(created)), ("model", .string(model))]
        if let systemFingerprint { m.append(("system_fingerprint", .string(systemFingerprint))) }
        m.append(("choices", .array(choices.map(\.json))))
        if includeUsageField || usage != nil { m.append(("usage", usage?.json ?? .null)) }
        return .object(m)
    }

    /// Compact JSON text (the payload of one SSE `data:` line).
    public func serialized() -> String { json.serialized() }
}
