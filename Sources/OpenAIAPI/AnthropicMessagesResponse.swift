// Anthropic Messages output: the message object, its stream events and the error body (Anthropic "Messages",
// "Streaming Messages", "Errors"), encoded by hand so member order and every `null` are fixed.
import JSON

/// One content block of a reply: `{"type":"thinking","thinking","signature":""}` (this server signs nothing: the
/// signature is the empty string, present because Anthropic's clients expect the member), `{"type":"text","text"}`,
/// or `{"type":"tool_use","id":"toolu_…","name","input":{…}}`.
public enum AnthropicBlock: Sendable, Equatable {
    case thinking(String)
    case text(String)
    case toolUse(id: String, name: String, input: JSONValue)

    /// The wire JSON; `input` replaced by `{}` for a `content_block_start` of a streamed `tool_use` block
    /// (`empty`: text and thinking are empty there too).
    public func json(empty: Bool = false) -> JSONValue {
        switch self {
        case .thinking(let t):
            return .object([("type", .string("thinking")), ("thinking", .string(empty ? "" : t)), ("signature", .string(""))])
        case .text(let t): return .object([("type", .string("text")), ("text", .string(empty ? "" : t))])
        case .toolUse(let id, let name, let input):
            return .object([("type", .string("tool_use")), ("id", .string(id)), ("name", .string(name)),
                            ("input", empty ? .object([]) : input)])
        }
    }
}

/// `{"id","type":"message","role":"assistant","model","content":[block…],"stop_reason",
/// "stop_sequence","usage":{"input_tokens","output_tokens","cache_creation_input_tokens","cache_read_input_tokens"}}`.
public struct AnthropicMessage: Sendable, Equatable {
    /// `msg_…`.
    public var id: String
    /// Model id as listed by `/v1/models`.
    public var model: String
    /// The reply's content blocks (`[]` in `message_start`).
    public var content: [AnthropicBlock]
    /// `"end_turn"`, `"max_tokens"`, `"stop_sequence"` or `"tool_use"`; nil in `message_start`.
    public var stopReason: String?
    /// The stop sequence that ended generation, or nil.
    public var stopSequence: String?
    /// Prompt tokens (all of them: `input_tokens` reports those not read from the cache).
    public var promptTokens: Int
    /// Prompt tokens served from the prefix cache (`cache_read_input_tokens`).
    public var cachedTokens: Int
    /// Generated tokens.
    public var outputTokens: Int

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(id: String, model: String, content: [AnthropicBlock] = [], stopReason: String?, stopSequence: String?,
                promptTokens: Int, cachedTokens: Int, outputTokens: Int) {
        self.id = id
        self.model = model
        self.content = content
        self.stopReason = stopReason
        self.stopSequence = stopSequence
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.outputTokens = outputTokens
    }

    /// The `usage` object.
    public var usageJSON: JSONValue {
        .object([("input_tokens", .int(promptTokens - cachedTokens)), ("output_tokens", .int(outputTokens)),
                 ("cache_creation_input_tokens", .int(0)), ("cache_read_input_tokens", .int(cachedTokens))])
    }

    /// The wire JSON (shape in the type's doc).
    public var json: JSONValue {
        var m: [(key: String, value: JSONValue)] = [("id", .string(id)), ("type", .string("message")), ("role", .string("assistant"))]
        m.append(("model", .string(model)))
        m.append(("content", .array(content.map { $0.json() })))
        m.append(("stop_reason", .stringOrNull(stopReason)))
        m.append(("stop_sequence", .stringOrNull(stopSequence)))
        m.append(("usage", usageJSON))
        return .object(m)
    }

    /// Compact JSON as UTF-8 bytes.
    public func encoded() -> [UInt8] { json.encoded() }

    /// One stream event: (event name, data JSON text) with `{"type":<name>, …fields}`.
    public static func event(_ type: String, _ fields: [(key: String, value: JSONValue)] = []) -> (name: String, data: String) {
        (type, JSONValue.object([("type", .string(type))] + fields).serialized())
    }
}

/// Anthropic's error body `{"type":"error","error":{"type","message"}}` for an `APIError`: the status picks the type
/// (400 `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 404 `not_found_error`, 413
/// `request_too_large`, 429 `rate_limit_error`, 503/529 `overloaded_error`, other 5xx `api_error`).
public struct AnthropicError: Sendable, Equatable {
    /// The error it renders.
    public var error: APIError

    /// Wraps `error`.
    public init(_ error: APIError) { self.error = error }

    /// Anthropic's error type for the status.
    public var type: String {
        switch error.status {
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 503, 529: return "overloaded_error"
        case 500...: return "api_error"
        default: return "invalid_request_error"
        }
    }

    /// The message: the error's, except for a context-length refusal, in Anthropic's words, which its clients read to
    /// shrink `max_tokens` or compact the history (helper-62): "prompt is too long: P tokens > L maximum", or
    /// "input length and `max_tokens` exceed context limit: P + M > L, decrease input length or `max_tokens` and try
    /// again".
    public var message: String {
        guard let o = error.contextOverflow else { return error.message }
        if let m = o.completionTokens, o.promptTokens <= o.limit {
            return "input length and `max_tokens` exceed context limit: \(o.promptTokens) + \(m) > \(o.limit), "
                + "decrease input length or `max_tokens` and try again"
        }
        return "prompt is too long: \(o.promptTokens) tokens > \(o.limit) maximum"
    }

    /// The wire JSON.
    public var json: JSONValue {
        .object([("type", .string("error")), ("error", .object([("type", .string(type)), ("message", .string(message))]))])
    }

    /// Compact JSON as UTF-8 bytes.
    public func encoded() -> [UInt8] { json.encoded() }
}
