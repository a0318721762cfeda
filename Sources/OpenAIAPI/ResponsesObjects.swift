// `/v1/responses` output (OpenAI "The response object" and "Streaming events"), encoded by hand so member order and
// every `null` are fixed.
import JSON

/// One output item of a response: a `reasoning` item `{"id":"rs_…","type":"reasoning","summary":[],
/// "content":[{"type":"reasoning_text","text"}],"status"}`, the assistant `message` (see
/// `ResponseObject.messageItem`), or a `function_call` `{"id":"fc_…","type":"function_call","status","call_id",
/// "name","arguments"}` (`arguments` JSON text).
public enum ResponseOutputItem: Sendable, Equatable {
    case reasoning(id: String, text: String)
    case message(id: String, text: String)
    case functionCall(id: String, callId: String, name: String, arguments: String)

    /// The item's id.
    public var id: String {
        switch self {
        case .reasoning(let id, _), .message(let id, _), .functionCall(let id, _, _, _): return id
        }
    }

    /// The wire JSON with `status`; `inProgress`: as `response.output_item.added` sends it (no content yet, empty
    /// arguments).
    public func json(status: String, inProgress: Bool = false) -> JSONValue {
        switch self {
        case .reasoning(let id, let text):
            let content: [JSONValue] = inProgress ? [] : [.object([("type", .string("reasoning_text")), ("text", .string(text))])]
            return .object([("id", .string(id)), ("type", .string("reasoning")), ("summary", .array([])),
                            ("content", .array(content)), ("status", .string(status))])
        case .message(let id, let text):
            return ResponseObject.messageItem(id: id, text: inProgress ? nil : text, status: status)
        case .functionCall(let id, let callId, let name, let arguments):
            return .object([("id", .string(id)), ("type", .string("function_call")), ("status", .string(status)),
                            ("call_id", .string(callId)), ("name", .string(name)),
                            ("arguments", .string(inProgress ? "" : arguments))])
        }
    }
}

/// The response object: `{"id","object":"response","created_at","status","error","incomplete_details",
/// "instructions","max_output_tokens","model","output":[message],"parallel_tool_calls","previous_response_id",
/// "reasoning","store","temperature","prompt_cache_key","safety_identifier","service_tier","text","tool_choice","tools",
/// "top_p","truncation","usage","user","metadata"}`.
/// The output holds the reply's items in order (none while in progress): a `reasoning` item, the assistant message
/// with one `output_text` part, `function_call` items.
public struct ResponseObject: Sendable, Equatable {
    /// `resp_…`.
    public var id: String
    /// `msg_…`: the id of the output message item.
    public var messageId: String
    /// Unix time, seconds.
    public var createdAt: Int
    /// Model id as listed by `/v1/models`.
    public var model: String
    /// `"in_progress"`, `"completed"` or `"incomplete"`.
    public var status: String
    /// Unix time, seconds, when the response completed (`completed_at`, present only with status `completed`).
    public var completedAt: Int?
    /// The output items (empty while in progress).
    public var output: [ResponseOutputItem]
    /// Why an incomplete response stopped (`"max_output_tokens"`), or nil.
    public var incompleteReason: String?
    /// Token counts (rendered as `input_tokens`, `output_tokens`, …); nil while in progress.
    public var usage: Usage?
    /// The request the response answers (its echoed fields).
    public var request: ResponsesRequest
    /// The `temperature` and `top_p` the server sampled with where the request left them out: echoed, as OpenAI
    /// echoes its defaults (nil: echoed as null).
    public var defaultTemperature: Double?
    public var defaultTopP: Double?

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(id: String, messageId: String, createdAt: Int, model: String, status: String, output: [ResponseOutputItem] = [],
                incompleteReason: String? = nil, usage: Usage? = nil, request: ResponsesRequest) {
        self.id = id
        self.messageId = messageId
        self.createdAt = createdAt
        self.model = model
        self.status = status
        self.output = output
        self.incompleteReason = incompleteReason
        self.usage = usage
        self.request = request
    }

    /// The `output_text` content part: `{"type":"output_text","text","annotations":[],"logprobs":[]}`.
    public static func textPart(_ text: String) -> JSONValue {
        .object([("type", .string("output_text")), ("text", .string(text)), ("annotations", .array([])), ("logprobs", .array([]))])
    }

    /// An output message item `{"id","type":"message","status","role":"assistant","content":[…]}`; `text` nil: no
    /// content yet.
    public static func messageItem(id: String, text: String?, status: String) -> JSONValue {
        let content: [JSONValue] = text.map { [Self.textPart($0)] } ?? []
        return .object([("id", .string(id)), ("type", .string("message")), ("status", .string(status)),
                        ("role", .string("assistant")), ("content", .array(content))])
    }

    /// The status of finished output item `i`: `incomplete` only for the last item of a response that was cut off,
    /// and never for a function call (calls are output whole: a call the cap cut is dropped); else `completed` (the
    /// earlier items were finished when the next one began, as their `response.output_item.done` events said).
    public func itemStatus(at i: Int) -> String {
        guard status == "incomplete", i == output.count - 1 else { return "completed" }
        if case .functionCall = output[i] { return "completed" }
        return "incomplete"
    }

    /// The wire JSON (shape in the type's doc).
    public var json: JSONValue {
        let r = request
        let usageJSON: JSONValue = usage.map { u in
            JSONValue.object([("input_tokens", .int(u.promptTokens)),
                     // cache_write_tokens: 0, as Anthropic's cache_creation_input_tokens (no explicit cache writes);
                     // the SDK's InputTokensDetails requires the field.
                     ("input_tokens_details", .object([("cache_write_tokens", .int(0)), ("cached_tokens", .int(u.cachedTokens))])),
                     ("output_tokens", .int(u.completionTokens)),
                     ("output_tokens_details", .object([("reasoning_tokens", .int(u.reasoningTokens ?? 0))])),
                     ("total_tokens", .int(u.totalTokens))])
        } ?? .null
        let incomplete: JSONValue = incompleteReason.map { JSONValue.object([("reason", .string($0))]) } ?? .null
        let maxOutput: JSONValue = r.maxOutputTokens.map { JSONValue.int($0) } ?? .null
        let temperature: JSONValue = (r.chat.temperature ?? defaultTemperature).map { JSONValue.double($0) } ?? .null
        let topP: JSONValue = (r.chat.topP ?? defaultTopP).map { JSONValue.double($0) } ?? .null
        let output: [JSONValue] = self.output.enumerated().map { $0.element.json(status: itemStatus(at: $0.offset)) }
        var m: [(key: String, value: JSONValue)] = []
        m.append(("id", .string(id)))
        m.append(("object", .string("response")))
        m.append(("created_at", .int(createdAt)))
        m.append(("status", .string(status)))
        if let completedAt { m.append(("completed_at", .int(completedAt))) }
        m.append(("error", .null))
        m.append(("incomplete_details", incomplete))
        m.append(("instructions", .stringOrNull(r.instructions)))
        m.append(("max_output_tokens", maxOutput))
        m.append(("model", .string(model)))
        m.append(("output", .array(output)))
        m.append(("parallel_tool_calls", .bool(r.parallelToolCalls)))
        m.append(("previous_response_id", .null))
        m.append(("reasoning", .object([("effort", .stringOrNull(r.reasoningEffort)), ("summary", .null)])))
        m.append(("store", .bool(false)))
        m.append(("temperature", temperature))
        m.append(("prompt_cache_key", .stringOrNull(r.promptCacheKey)))
        m.append(("safety_identifier", .stringOrNull(r.safetyIdentifier)))
        m.append(("service_tier", .string("default")))   // the tier that served it, as OpenAI answers `auto`
        m.append(("text", .object([("format", r.textFormat ?? .object([("type", .string("text"))])),
                                   ("verbosity", .string("medium"))])))   // the one level served (others are a 400)
        m.append(("tool_choice", r.toolChoice ?? .string("auto")))   // OpenAI's default, with or without tools
        m.append(("tools", r.tools ?? .array([])))
        m.append(("top_p", topP))
        m.append(("truncation", .string("disabled")))
        m.append(("usage", usageJSON))
        m.append(("user", .stringOrNull(r.user)))
        m.append(("metadata", r.metadata ?? .object([])))
        return .object(m)
    }

    /// Compact JSON as UTF-8 bytes.
    public func encoded() -> [UInt8] { json.encoded() }
}

/// Numbers the typed events of one `/v1/responses` stream (`sequence_number` from 0) and renders them:
/// `event: <type>` plus `data: {"type":<type>,"sequence_number":n,…}`.
public struct ResponseEventSequence: Sendable {
    private var next = 0

    /// A fresh sequence, starting at 0.
    public init() {}

    /// The next event of `type` with `fields` after `type` and `sequence_number`: (event name, data JSON text).
    public mutating func event(_ type: String, _ fields: [(key: String, value: JSONValue)]) -> (name: String, data: String) {
        defer { next += 1 }
        return (type, JSONValue.object([("type", .string(type)), ("sequence_number", .int(next))] + fields).serialized())
    }
}
