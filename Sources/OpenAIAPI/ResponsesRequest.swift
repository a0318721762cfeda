// `POST /v1/responses` request body (OpenAI "Create a model response"), stateless: validated here and converted to
// the one chat request the engine mapping understands.
import JSON

/// A validated, stateless Responses API request: the conversation as a `ChatCompletionRequest` plus the fields the
/// response object echoes back.
///
/// Honoured: `input` (a string, or items: messages with `input_text` / `output_text` parts, `function_call` and
/// `function_call_output` history; a function call joins the assistant message it follows; `reasoning` items with
/// `reasoning_text` content become the next assistant turn's reasoning), `instructions` (a leading system message), `max_output_tokens`, `temperature`,
/// `top_p`, `stream`, `metadata` (echoed), `user`, `safety_identifier` (as `user`), `prompt_cache_key` (the prefix
/// cache needs no key), `store: false`, `text.format` (`text`, `json_object`, `json_schema`: chat's
/// `response_format`), `tools` (function tools
/// `{type:"function", name, description, parameters, strict}` → chat tools; with `strict: true` a schema the grammar
/// cannot enforce is a 400, as on chat), `tool_choice` (`none`, `auto`,
/// `required`, `{"type":"function","name"}`), `parallel_tool_calls` (false → at most one call), `reasoning.effort`
/// (→ the chat route's `reasoning_effort`; other than `none`, the reply's reasoning becomes a `reasoning` output item),
/// `truncation: "disabled"`, `service_tier` `auto` / `default`.
/// Refused with a 400 naming the field: `previous_response_id`, `conversation`, `store: true`, `background: true`
/// (nothing is stored), tools of another `type` (hosted tools), unknown fields of a function tool, `reasoning.summary` (no summaries are written),
/// `include`, `top_logprobs`,
/// `truncation: "auto"`, `prompt`, `max_tool_calls`, input parts other than text, `encrypted_content` reasoning and
/// `item_reference` input items.
public struct ResponsesRequest: Sendable, Equatable {
    /// The conversation and sampling fields, as a chat request (`max_output_tokens` → `max_completion_tokens`).
    public var chat: ChatCompletionRequest
    /// `instructions` as sent (also the chat's first, system, message).
    public var instructions: String?
    /// `metadata` as sent (an object of up to 16 string values), or nil.
    public var metadata: JSONValue?
    /// `parallel_tool_calls` as sent; echoed (true when absent, OpenAI's default).
    public var parallelToolCalls: Bool
    /// `tools` as sent (echoed), or nil.
    public var tools: JSONValue? = nil
    /// `tool_choice` as sent (echoed), or nil.
    public var toolChoice: JSONValue? = nil
    /// `reasoning.effort` as sent (echoed), or nil.
    public var reasoningEffort: String? = nil
    /// `text.format` as sent (echoed; `{"type":"text"}` when nil). `json_object` and `json_schema` become the chat
    /// request's `response_format`.
    public var textFormat: JSONValue? = nil
    /// `user`, `safety_identifier` and `prompt_cache_key` as sent (echoed in the response object, as OpenAI echoes
    /// them; helper-71: `safety_identifier` came back as `user`, the key not at all), or nil.
    public var user: String? = nil
    public var safetyIdentifier: String? = nil
    public var promptCacheKey: String? = nil

    /// True when the reply's reasoning is returned as a `reasoning` output item (`reasoning.effort` other than `none`).
    public var wantsReasoning: Bool { reasoningEffort.map { $0 != "none" } ?? false }

    /// The request's `max_output_tokens`.
    public var maxOutputTokens: Int? { chat.maxCompletionTokens }

    /// Decodes and validates a request body.
    /// - Returns: the request, or a 400 `APIError` naming the offending field in `param`.
    public static func decode(_ body: [UInt8]) -> Result<ResponsesRequest, APIError> {
        do throws(APIError) { return .success(try parse(JSONValue.parse(body))) } catch { return .failure(error) }
    }

    /// Validates an already-parsed JSON value (see `decode`).
    public static func parse(_ json: JSONValue) throws(APIError) -> ResponsesRequest {
        guard case .object = json else {
            throw APIError.invalidRequest("Request body must be a JSON object, got \(json.typeName)")
        }
        let f = FieldReader(json)
        try refuseStateful(f)
        let instructions = try f.string("instructions")
        var messages: [ChatMessage] = []
        if let instructions { messages.append(ChatMessage(role: .system, content: instructions)) }
        switch f.raw("input") {
        case nil: throw APIError.invalidRequest("'input' is a required property", param: "input")
        case .string(let s)?: messages.append(ChatMessage(role: .user, content: s))
        case .array(let items)?:
            guard !items.isEmpty else { throw APIError.invalidRequest("'input' must not be empty", param: "input") }
            var pendingReasoning: [String] = []
            for (i, item) in items.enumerated() {
                // A reasoning item (as this server returns it) is the reasoning of the assistant turn that follows.
                if case .object = item, item["type"]?.stringValue == "reasoning" {
                    pendingReasoning.append(try reasoningItem(item, index: i))
                    continue
                }
                var m = try inputItem(item, index: i)
                // OpenAI: a function_call_output answers a function_call item earlier in the input ("No tool call
                // found for function call output"); the prompt would show an answer to a call never made.
                if m.role == .tool, let id = m.toolCallId,
                   !messages.contains(where: { $0.toolCalls.contains { $0.id == id } }) {
                    throw APIError.invalidRequest("No tool call found for function call output with call_id '\(id)' in 'input' before input[\(i)]",
                                                  param: "input[\(i)].call_id")
                }
                // One output per call (helper-72: a second was rendered, paired by position with another call).
                if m.role == .tool, let id = m.toolCallId, messages.contains(where: { $0.role == .tool && $0.toolCallId == id }) {
                    throw APIError.invalidRequest("Duplicate function call output for call_id '\(id)' at input[\(i)]: each function_call takes one",
                                                  param: "input[\(i)].call_id")
                }
                if m.role == .assistant, !pendingReasoning.isEmpty {
                    m.reasoningContent = pendingReasoning.joined(separator: "\n")
                    pendingReasoning = []
                }
                // A function call joins the assistant turn it follows (parallel calls are one message in chat).
                if m.role == .assistant, m.content == nil, let last = messages.last, last.role == .assistant {
                    messages[messages.count - 1].toolCalls += m.toolCalls
                } else {
                    messages.append(m)
                }
            }
        case let other?:
            throw APIError.invalidRequest("'input' must be a string or an array of input items, got \(other.typeName)", param: "input")
        }
        // OpenAI: every function_call item is answered by a function_call_output before the conversation goes on
        // (or ends): "No tool output found for function call". A model shown an unanswered call makes up its result.
        let pending = Self.unansweredCallIds(messages)
        if !pending.isEmpty {
            throw APIError.invalidRequest("No tool output found for function call \(pending.joined(separator: ", ")): each 'function_call' item needs a 'function_call_output' item with its call_id after it",
                                          param: "input")
        }
        var sampling = SamplingParameters()
        sampling.temperature = try f.double("temperature", lower: 0, upper: 2)
        sampling.topP = try f.double("top_p", lower: 0, upper: 1)
        sampling.maxCompletionTokens = try f.int("max_output_tokens", min: 1)
        sampling.stream = try f.bool("stream") ?? false
        sampling.user = try f.string("user")
        var chat = ChatCompletionRequest(messages: messages, sampling: sampling)
        chat.emptyContentForNone = true   // function_call items become assistant turns with no content
        chat.model = try f.string("model")
        var r = ResponsesRequest(chat: chat, instructions: instructions, metadata: nil,
                                 parallelToolCalls: try f.bool("parallel_tool_calls") ?? true)
        if r.parallelToolCalls == false { r.chat.parallelToolCalls = false }
        var chatTools: [JSONValue] = []
        for (i, t) in (try f.array("tools") ?? []).enumerated() {
            let tp = "tools[\(i)]"
            guard case .object = t else { throw APIError.invalidRequest("'\(tp)' must be an object, got \(t.typeName)", param: tp) }
            let tf = FieldReader(t, prefix: tp + ".")
            guard let type = try tf.string("type") else { throw APIError.invalidRequest("'\(tp).type' is required", param: tp + ".type") }
            guard type == "function" else {
                throw APIError.invalidRequest("'\(tp).type' '\(type)' is not supported: this server calls only function tools",
                                              param: tp + ".type")
            }
            guard let name = try tf.string("name"), !name.isEmpty else {
                throw APIError.invalidRequest("'\(tp).name' is required", param: tp + ".name")
            }
            var fn: [(key: String, value: JSONValue)] = [("name", .string(name))]
            if let d = try tf.string("description") { fn.append(("description", .string(d))) }
            if let params = try tf.object("parameters") {
                try ChatCompletionRequest.checkToolParameters(params, path: tp + ".parameters")
                fn.append(("parameters", params))
            }
            // `strict: true`: a schema the grammar cannot enforce is a 400, as on chat. Left out (or null), the
            // arguments follow what the grammar can enforce of it, and the rest is not checked: OpenAI defaults to
            // strict here, but clients (LangChain's bind_tools) send pydantic schemas it would refuse (helper-42).
            if let strict = try tf.bool("strict") { fn.append(("strict", .bool(strict))) }
            try tf.refuseUnread { "'\(tp).\($0)' is not a field of a function tool" }
            chatTools.append(.object([("type", .string("function")), ("function", .object(fn))]))
        }
        try ChatCompletionRequest.checkUniqueToolNames(chatTools.map { $0["function"]?["name"]?.stringValue }) { "tools[\($0)].name" }
        if !chatTools.isEmpty {
            r.chat.tools = .array(chatTools)
            r.tools = f.raw("tools")
        }
        let names = chatTools.compactMap { $0["function"]?["name"]?.stringValue }
        if let choice = f.raw("tool_choice") {
            switch choice {
            case .string("none"), .string("auto"): if !chatTools.isEmpty { r.chat.toolChoice = choice }
            case .string("required"):
                guard !chatTools.isEmpty else {
                    throw APIError.invalidRequest("'tool_choice' 'required' needs 'tools'", param: "tool_choice")
                }
                r.chat.toolChoice = choice
            case .object:
                let cf = FieldReader(choice, prefix: "tool_choice.")
                guard try cf.string("type") == "function" else {
                    throw APIError.invalidRequest("'tool_choice.type' must be 'function' (hosted tools and allowed_tools are not supported)",
                                                  param: "tool_choice.type")
                }
                guard let name = try cf.string("name"), names.contains(name) else {
                    throw APIError.invalidRequest("'tool_choice.name' must name a function in 'tools'", param: "tool_choice.name")
                }
                try cf.refuseUnread { "'tool_choice.\($0)' is not a field of a function tool choice" }
                r.chat.toolChoice = .object([("type", .string("function")), ("function", .object([("name", .string(name))]))])
            default:
                throw APIError.invalidRequest("'tool_choice' must be 'none', 'auto', 'required' or {\"type\":\"function\",\"name\"}",
                                              param: "tool_choice")
            }
            r.toolChoice = choice
        }
        if let reasoning = try f.object("reasoning") {
            let rf = FieldReader(reasoning, prefix: "reasoning.")
            for key in ["summary", "generate_summary"] {
                if let v = rf.raw(key), !v.isNull {
                    throw APIError.invalidRequest("'reasoning.\(key)' is not supported: no reasoning summaries are written (the reasoning itself is returned)",
                                                  param: "reasoning.\(key)")
                }
            }
            let effort = try rf.string("effort") ?? "medium"
            guard ["none", "minimal", "low", "medium", "high"].contains(effort) else {
                throw APIError.invalidRequest("'reasoning.effort' must be one of none, minimal, low, medium, high", param: "reasoning.effort")
            }
            r.reasoningEffort = effort
            r.chat.reasoningEffort = effort
        }
        r.textFormat = try textFormat(f, into: &r.chat)
        // Chat's reading of these: the prefix cache matches prompts by content (no key needed); the end-user id goes
        // to the access log as `user` does.
        r.user = r.chat.user
        r.promptCacheKey = try f.string("prompt_cache_key")
        r.safetyIdentifier = try f.string("safety_identifier")
        if let id = r.safetyIdentifier, r.chat.user == nil { r.chat.user = id }
        r.metadata = try f.metadata()
        // Any other field is refused by name, as OpenAI answers an unrecognized argument.
        try f.refuseUnread {
            "Unrecognized request argument supplied: \($0) (not a /v1/responses field this server implements; chat-only "
                + "extras such as 'seed', 'stop' or 'top_k' go to /v1/chat/completions)"
        }
        return r
    }

    /// The fields that need stored state or output parsers this server does not have.
    private static func refuseStateful(_ f: FieldReader) throws(APIError) {
        func refuse(_ key: String, _ why: String) -> APIError {
            .invalidRequest("'\(key)' is not supported: \(why)", param: key)
        }
        let stateless = "this server is stateless and stores no responses or conversations; send the whole conversation in 'input'"
        if f.raw("previous_response_id") != nil { throw refuse("previous_response_id", stateless) }
        if f.raw("conversation") != nil { throw refuse("conversation", stateless) }
        if try f.bool("store") == true { throw refuse("store", stateless + " (send 'store': false or leave it out)") }
        if try f.bool("background") == true { throw refuse("background", "responses are generated in the foreground only") }
        if let include = try f.array("include"), !include.isEmpty {
            throw refuse("include", "no additional output data is produced")
        }
        if f.raw("top_logprobs") != nil { throw refuse("top_logprobs", "log-probabilities are not returned by /v1/responses") }
        if f.raw("prompt") != nil { throw refuse("prompt", "stored prompt templates need stored state") }
        if f.raw("max_tool_calls") != nil { throw refuse("max_tool_calls", "use 'parallel_tool_calls': false for at most one call") }
        if f.raw("stream_options") != nil { throw refuse("stream_options", "no stream options are supported") }
        if let t = try f.string("truncation"), t != "disabled" {
            throw refuse("truncation", "only 'disabled' is supported (a prompt longer than the context is a 400)")
        }
        if let tier = try f.string("service_tier"), tier != "auto", tier != "default" {
            throw refuse("service_tier", "only 'auto' and 'default' are served")
        }
    }

    /// `text.format` → the chat request's `response_format`: `text`, `json_object`, or `json_schema` with `name`,
    /// `schema`, optional `strict` and `description` (Responses puts them on the format itself, chat in
    /// `json_schema`). Returns the format as sent (echoed), nil when absent.
    private static func textFormat(_ f: FieldReader, into chat: inout ChatCompletionRequest) throws(APIError) -> JSONValue? {
        guard let text = try f.object("text") else { return nil }
        let tf = FieldReader(text, prefix: "text.")
        // `verbosity: "medium"` is OpenAI's default (and what a local model does); other levels cannot be honoured.
        for (key, value) in text.objectValue ?? []
        where key != "format" && !(key == "verbosity" && (value == .string("medium") || value.isNull)) {
            throw APIError.invalidRequest("'text.\(key)' is not supported", param: "text.\(key)")
        }
        guard let format = try tf.object("format") else { return nil }
        let ff = FieldReader(format, prefix: "text.format.")
        switch try ff.string("type") {
        case "text"?:
            try ff.refuseUnread { "'text.format.\($0)' is not a field of the text format" }
        case "json_object"?:
            try ff.refuseUnread { "'text.format.\($0)' is not a field of the json_object format" }
            chat.responseFormat = .object([("type", .string("json_object"))])
        case "json_schema"?:
            guard let name = try ff.string("name") else {
                throw APIError.invalidRequest("'text.format.name' is required for json_schema", param: "text.format.name")
            }
            guard let schema = try ff.object("schema") else {
                throw APIError.invalidRequest("'text.format.schema' is required for json_schema (an object)", param: "text.format.schema")
            }
            var spec: [(key: String, value: JSONValue)] = [("name", .string(name)), ("schema", schema)]
            if let strict = try ff.bool("strict") { spec.append(("strict", .bool(strict))) }
            _ = try ff.string("description")
            try ff.refuseUnread {
                "'text.format.\($0)' is not a field of the json_schema format"
            }
            chat.responseFormat = .object([("type", .string("json_schema")), ("json_schema", .object(spec))])
        case let other:
            throw APIError.invalidRequest("'text.format.type' must be 'text', 'json_object' or 'json_schema', got '\(other ?? "(none)")'",
                                          param: "text.format.type")
        }
        return format
    }

    /// The text of a `reasoning` input item: its `content` `reasoning_text` parts joined (`summary` ignored: it
    /// restates the content, and this server writes none).
    /// - Throws: 400 naming the item for `encrypted_content` (nothing here can decrypt it) or malformed content.
    static func reasoningItem(_ item: JSONValue, index i: Int) throws(APIError) -> String {
        let p = "input[\(i)]"
        if let e = item["encrypted_content"], !e.isNull {
            throw APIError.invalidRequest("'\(p).encrypted_content' cannot be read by this server; send the reasoning as 'content'",
                                          param: p + ".encrypted_content")
        }
        var texts: [String] = []
        for (j, part) in (try FieldReader(item, prefix: p + ".").array("content") ?? []).enumerated() {
            guard part["type"]?.stringValue == "reasoning_text", let t = part["text"]?.stringValue else {
                throw APIError.invalidRequest("'\(p).content[\(j)]' must be {\"type\":\"reasoning_text\",\"text\":…}",
                                              param: "\(p).content[\(j)]")
            }
            texts.append(t)
        }
        return texts.joined()
    }

    /// The first calls of `messages` left unanswered when the conversation goes on or ends: those of an assistant
    /// message that the tool messages right after it do not answer (helper-68: an output sent after a user message
    /// counted as an answer, so the 400 named no call).
    static func unansweredCallIds(_ messages: [ChatMessage]) -> [String] {
        var open: [String] = []
        for m in messages {
            if m.role == .tool {
                open.removeAll { $0 == m.toolCallId }
                continue
            }
            if !open.isEmpty { return open }
            open = m.toolCalls.map(\.id)
        }
        return open
    }

    /// One input item: a message (`type` "message" or absent), a `function_call` or a `function_call_output`.
    static func inputItem(_ item: JSONValue, index i: Int) throws(APIError) -> ChatMessage {
        let p = "input[\(i)]"
        guard case .object = item else { throw APIError.invalidRequest("'\(p)' must be an object, got \(item.typeName)", param: p) }
        let f = FieldReader(item, prefix: p + ".")
        // An item sent back from an earlier response carries its `id` and `status`: read, they change nothing. Any
        // other member is a 400 naming it (a message's `name` or `foo` was dropped unseen: helper-65).
        _ = f.raw("id")
        _ = f.raw("status")
        let message = try itemMessage(f, path: p)
        try f.refuseUnread { "'\(p).\($0)' is not a field of a \(item["type"]?.stringValue ?? "message") input item" }
        return message
    }

    /// The message of one input item read through `f` (see `inputItem`).
    private static func itemMessage(_ f: FieldReader, path p: String) throws(APIError) -> ChatMessage {
        switch try f.string("type") ?? "message" {
        case "message":
            guard let roleText = try f.string("role") else {
                throw APIError.invalidRequest("'\(p).role' is a required property", param: p + ".role")
            }
            guard let role = ChatRole(rawValue: roleText), role != .tool else {
                throw APIError.invalidRequest("'\(p).role' must be one of user, assistant, system, developer; got '\(roleText)'",
                                              param: p + ".role")
            }
            switch f.raw("content") {
            case .string(let s)?: return ChatMessage(role: role, content: s)
            case .array(let parts)?:
                let texts = try textParts(parts, path: p, role: role, types: ["input_text", "output_text"])
                return ChatMessage(role: role, content: texts.joined(separator: "\n"), contentParts: texts)
            case nil: throw APIError.invalidRequest("'\(p).content' is a required property", param: p + ".content")
            case let other?:
                throw APIError.invalidRequest("'\(p).content' must be a string or an array of content parts, got \(other.typeName)",
                                              param: p + ".content")
            }
        case "function_call":
            guard let callId = try f.string("call_id") else { throw APIError.invalidRequest("'\(p).call_id' is required", param: p + ".call_id") }
            guard let name = try f.string("name") else { throw APIError.invalidRequest("'\(p).name' is required", param: p + ".name") }
            guard let args = try f.string("arguments") else {
                throw APIError.invalidRequest("'\(p).arguments' is required (a JSON string)", param: p + ".arguments")
            }
            return ChatMessage(role: .assistant, content: nil, toolCalls: [ToolCall(id: callId, name: name, arguments: args)])
        case "function_call_output":
            guard let callId = try f.string("call_id") else { throw APIError.invalidRequest("'\(p).call_id' is required", param: p + ".call_id") }
            // A string, or content parts (OpenAI allows input_text parts; their texts are joined).
            let output: String
            if case .array(let parts)? = f.raw("output") {
                output = try textParts(parts, path: p + ".output", role: .tool, types: ["input_text", "output_text"]).joined(separator: "\n")
            } else if let s = try f.string("output") {
                output = s
            } else {
                throw APIError.invalidRequest("'\(p).output' must be a string or an array of input_text parts", param: p + ".output")
            }
            return ChatMessage(role: .tool, content: output, toolCallId: callId)
        case let type:
            throw APIError.invalidRequest("Input item type '\(type)' is not supported by this stateless server; send messages, 'function_call' and 'function_call_output' items",
                                          param: p + ".type")
        }
    }
}
