// Anthropic `POST /v1/messages` and `/v1/messages/count_tokens` request bodies (Anthropic "Messages" API reference),
// validated here and converted to the one chat request the engine mapping understands.
import JSON

/// A validated Anthropic Messages request as a chat request.
///
/// Honoured: `model`, `max_tokens` (required, ≥ 1; not for count_tokens), `messages` (`user` / `assistant`, content a
/// string or `text`, `tool_use`, `tool_result` and `thinking` history blocks), `system` (a string or text blocks),
/// `stop_sequences`, `temperature` (0…1), `top_p`, `top_k`, `stream`, `metadata.user_id`, `thinking` `disabled`,
/// `tool_choice` `none` / `auto` without tools, `service_tier` `auto` / `standard_only`.
/// Refused with a 400 naming the field: `tools` (tool_use output blocks need the tool-call parser), `thinking`
/// enabled (thinking output blocks need the reasoning parser), image / document / other blocks, `container`,
/// `mcp_servers`.
public struct AnthropicMessagesRequest: Sendable, Equatable {
    /// The conversation and sampling fields as a chat request (`max_tokens` → `max_tokens`, `stop_sequences` → `stop`).
    public var chat: ChatCompletionRequest

    /// Most stop sequences accepted.
    public static let maxStopSequences = 16

    /// Decodes and validates a body; `countTokens`: the `/v1/messages/count_tokens` body (no `max_tokens`, no
    /// sampling fields needed).
    /// - Returns: the request, or a 400 `APIError` whose `param` and message name the offending field.
    public static func decode(_ body: [UInt8], countTokens: Bool = false) -> Result<AnthropicMessagesRequest, APIError> {
        do throws(APIError) {
            return .success(try parse(JSONValue.parse(body), countTokens: countTokens))
        } catch { return .failure(error) }
    }

    /// Validates an already-parsed JSON value (see `decode`).
    public static func parse(_ json: JSONValue, countTokens: Bool = false) throws(APIError) -> AnthropicMessagesRequest {
        guard case .object = json else {
            throw APIError.invalidRequest("Request body must be a JSON object, got \(json.typeName)")
        }
        let f = FieldReader(json)
        func refuse(_ key: String, _ why: String) -> APIError { .invalidRequest("\(key): not supported: \(why)", param: key) }
        if let tools = try f.array("tools"), !tools.isEmpty {
            throw refuse("tools", "tool_use output blocks are not parsed by this server yet; use /v1/chat/completions")
        }
        if let choice = try f.object("tool_choice") {
            let type = try FieldReader(choice, prefix: "tool_choice.").string("type")
            guard type == "none" || type == "auto" else { throw refuse("tool_choice", "no tools can be called (only 'none' and 'auto')") }
        }
        if let thinking = try f.object("thinking"), try FieldReader(thinking, prefix: "thinking.").string("type") != "disabled" {
            throw refuse("thinking", "thinking output blocks are not produced by this server yet (send {\"type\":\"disabled\"} or leave it out)")
        }
        for key in ["container", "mcp_servers"] where f.raw(key) != nil {
            throw refuse(key, "this server has no containers or MCP connectors")
        }
        if let tier = try f.string("service_tier"), tier != "auto", tier != "standard_only" {
            throw refuse("service_tier", "only 'auto' and 'standard_only' are served")
        }
        var messages: [ChatMessage] = []
        switch f.raw("system") {
        case nil: break
        case .string(let s)?: messages.append(ChatMessage(role: .system, content: s))
        case .array(let blocks)?:
            var texts: [String] = []
            for (i, b) in blocks.enumerated() {
                let p = "system[\(i)]"
                guard case .object = b, b["type"]?.stringValue == "text", let t = b["text"]?.stringValue else {
                    throw APIError.invalidRequest("\(p): system blocks must be {\"type\":\"text\",\"text\":…}", param: p)
                }
                texts.append(t)
            }
            messages.append(ChatMessage(role: .system, content: texts.joined(separator: "\n"), contentParts: texts))
        case let other?:
            throw APIError.invalidRequest("system: must be a string or an array of text blocks, got \(other.typeName)", param: "system")
        }
        guard let items = try f.array("messages") else {
            throw APIError.invalidRequest("messages: Field required", param: "messages")
        }
        guard !items.isEmpty else { throw APIError.invalidRequest("messages: at least one message is required", param: "messages") }
        for (i, item) in items.enumerated() { messages.append(contentsOf: try message(item, index: i)) }

        var s = SamplingParameters()
        if countTokens {
            s.maxTokens = try f.int("max_tokens", min: 1)
        } else {
            guard let max = try f.int("max_tokens", min: 1) else {
                throw APIError.invalidRequest("max_tokens: Field required", param: "max_tokens")
            }
            s.maxTokens = max
        }
        s.temperature = try f.double("temperature", lower: 0, upper: 1)
        s.topP = try f.double("top_p", lower: 0, upper: 1, lowerOpen: true)
        s.topK = try f.int("top_k", min: 0)
        s.stream = try f.bool("stream") ?? false
        if let stops = try f.array("stop_sequences") {
            guard stops.count <= maxStopSequences else {
                throw APIError.invalidRequest("stop_sequences: at most \(maxStopSequences) sequences, got \(stops.count)", param: "stop_sequences")
            }
            for (i, v) in stops.enumerated() {
                guard let str = v.stringValue, !str.isEmpty else {
                    throw APIError.invalidRequest("stop_sequences[\(i)]: must be a non-empty string", param: "stop_sequences[\(i)]")
                }
                s.stop.append(str)
            }
        }
        if let meta = try f.object("metadata") {
            s.user = try FieldReader(meta, prefix: "metadata.").string("user_id")
        }
        var chat = ChatCompletionRequest(messages: messages, sampling: s)
        chat.model = try f.string("model")
        return AnthropicMessagesRequest(chat: chat)
    }

    /// One Anthropic message as chat messages: text (and thinking) blocks join into one message, `tool_use` blocks
    /// become the assistant's tool calls, each `tool_result` block becomes a `tool` message.
    static func message(_ item: JSONValue, index i: Int) throws(APIError) -> [ChatMessage] {
        let p = "messages[\(i)]"
        guard case .object = item else { throw APIError.invalidRequest("\(p): must be an object, got \(item.typeName)", param: p) }
        let f = FieldReader(item, prefix: p + ".")
        let roleText = try f.string("role")
        guard let roleText, let role = ChatRole(rawValue: roleText), role == .user || role == .assistant else {
            throw APIError.invalidRequest("\(p).role: must be 'user' or 'assistant'", param: p + ".role")
        }
        switch f.raw("content") {
        case .string(let s)?: return [ChatMessage(role: role, content: s)]
        case .array(let blocks)?:
            var texts: [String] = [], thinking: [String] = [], calls: [ToolCall] = [], results: [ChatMessage] = []
            for (j, b) in blocks.enumerated() {
                let bp = "\(p).content[\(j)]"
                let bf = FieldReader(b, prefix: bp + ".")
                guard case .object = b, let type = try bf.string("type") else {
                    throw APIError.invalidRequest("\(bp): must be an object with a 'type'", param: bp)
                }
                func required(_ key: String) throws(APIError) -> String {
                    guard let v = try bf.string(key) else { throw APIError.invalidRequest("\(bp).\(key): Field required", param: bp + ".\(key)") }
                    return v
                }
                switch (type, role) {
                case ("text", _): texts.append(try required("text"))
                case ("thinking", .assistant): thinking.append(try required("thinking"))
                case ("redacted_thinking", .assistant): continue  // encrypted: nothing a local model can read
                case ("tool_use", .assistant):
                    let input = try bf.object("input") ?? .object([])
                    calls.append(ToolCall(id: try required("id"), name: try required("name"), arguments: input.serialized()))
                case ("tool_result", .user):
                    let id = try required("tool_use_id")
                    let content: String
                    switch b["content"] {
                    case nil, .null?: content = ""
                    case .string(let s)?: content = s
                    case .array(let parts)?:
                        var t: [String] = []
                        for (k, part) in parts.enumerated() {
                            guard part["type"]?.stringValue == "text", let s = part["text"]?.stringValue else {
                                throw APIError.invalidRequest("\(bp).content[\(k)]: only text blocks are supported in tool results",
                                                              param: "\(bp).content[\(k)]")
                            }
                            t.append(s)
                        }
                        content = t.joined(separator: "\n")
                    case let other?:
                        throw APIError.invalidRequest("\(bp).content: must be a string or text blocks, got \(other.typeName)", param: bp + ".content")
                    }
                    if try bf.bool("is_error") == true {
                        results.append(ChatMessage(role: .tool, content: "Error: " + content, toolCallId: id))
                    } else {
                        results.append(ChatMessage(role: .tool, content: content, toolCallId: id))
                    }
                default:
                    throw APIError.invalidRequest("\(bp).type: '\(type)' blocks are not supported in \(roleText) messages by this server",
                                                  param: bp + ".type")
                }
            }
            var out = results
            if !texts.isEmpty || !calls.isEmpty || !thinking.isEmpty || results.isEmpty {
                var m = ChatMessage(role: role, content: texts.isEmpty && !calls.isEmpty ? nil : texts.joined(), contentParts: texts)
                m.toolCalls = calls
                m.reasoningContent = thinking.isEmpty ? nil : thinking.joined(separator: "\n")
                out.append(m)
            }
            return out
        case nil: throw APIError.invalidRequest("\(p).content: Field required", param: p + ".content")
        case let other?:
            throw APIError.invalidRequest("\(p).content: must be a string or an array of content blocks, got \(other.typeName)",
                                          param: p + ".content")
        }
    }
}
