// Anthropic `POST /v1/messages` and `/v1/messages/count_tokens` request bodies (Anthropic "Messages" API reference),
// validated here and converted to the one chat request the engine mapping understands.
import JSON

/// A validated Anthropic Messages request as a chat request.
///
/// Honoured: `model`, `max_tokens` (required, ≥ 1; not for count_tokens), `messages` (`user` / `assistant`, content a
/// string or `text`, `tool_use`, `tool_result` and `thinking` history blocks), `system` (a string or text blocks),
/// `stop_sequences`, `temperature` (0…1), `top_p`, `top_k`, `stream`, `metadata.user_id`, `thinking` `disabled`,
/// `service_tier` `auto` / `standard_only`, `tools` (custom tools `{name, description, input_schema, strict,
/// cache_control}` → chat tools `{type:"function", function:{name, description, parameters, strict}}`; names unique and
/// matching `^[a-zA-Z0-9_-]{1,128}$`, `input_schema.type` `object`; `input_examples` are appended to the description,
/// `eager_input_streaming` needs nothing (input is streamed as generated), `defer_loading: false` and
/// `allowed_callers` with `"direct"` are what is served), `tool_choice` (`auto`, `none`, `any` → `required`,
/// `{"type":"tool","name"}` → a named function; `disable_parallel_tool_use` → at most one call), `thinking`
/// `{"type":"enabled","budget_tokens":N}` (N ≥ 1024 and < `max_tokens`; the reply's reasoning becomes `thinking`
/// blocks; like Anthropic's, the budget is a target: what bounds the thinking is `max_tokens`) or `disabled`.
/// Refused with a 400 naming the field: tools of another `type` (Anthropic's server/client tools), `tool_choice`
/// `any` / `tool` together with thinking (as Anthropic refuses it), image / document / other blocks, `container`,
/// `mcp_servers`, and any other top-level field ("x: Extra inputs are not permitted", Anthropic's answer).
public struct AnthropicMessagesRequest: Sendable, Equatable {
    /// The conversation and sampling fields as a chat request (`max_tokens` → `max_tokens`, `stop_sequences` → `stop`).
    public var chat: ChatCompletionRequest
    /// `thinking` `enabled`: the reply's reasoning comes back as `thinking` blocks (the model must reason).
    public var thinking: Bool = false
    /// `thinking.display` `omitted`: thinking blocks come back with empty `thinking` text (the model still reasons).
    /// `summarized` (Anthropic's default) returns the whole thinking: nothing here summarizes it.
    public var thinkingOmitted: Bool = false

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
        var tools: [JSONValue] = []
        for (i, t) in (try f.array("tools") ?? []).enumerated() {
            let tp = "tools[\(i)]"
            guard case .object = t else { throw APIError.invalidRequest("\(tp): must be an object, got \(t.typeName)", param: tp) }
            let tf = FieldReader(t, prefix: tp + ".")
            if let type = try tf.string("type"), type != "custom" {
                throw refuse(tp + ".type", "'\(type)' is a server or client tool of Anthropic's; only custom tools "
                             + "({name, description, input_schema}) are served")
            }
            guard let name = try tf.string("name"), !name.isEmpty else {
                throw APIError.invalidRequest("\(tp).name: Field required", param: tp + ".name")
            }
            guard name.count <= 128, name.unicodeScalars.allSatisfy(Self.nameScalars.contains) else {
                throw APIError.invalidRequest("\(tp).name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'", param: tp + ".name")
            }
            guard let schema = try tf.object("input_schema") else {
                throw APIError.invalidRequest("\(tp).input_schema: Field required", param: tp + ".input_schema")
            }
            guard schema["type"]?.stringValue == "object" else {
                throw APIError.invalidRequest("\(tp).input_schema.type: Input should be 'object'", param: tp + ".input_schema.type")
            }
            var fn: [(key: String, value: JSONValue)] = [("name", .string(name))]
            var description = try tf.string("description")
            // `input_examples`: shown to the model with the description (Anthropic puts them in its tool prompt).
            if let examples = try tf.array("input_examples"), !examples.isEmpty {
                for (k, e) in examples.enumerated() where e.objectValue == nil {
                    throw APIError.invalidRequest("\(tp).input_examples[\(k)]: must be an object, got \(e.typeName)",
                                                  param: "\(tp).input_examples[\(k)]")
                }
                description = (description.map { $0 + "\n\n" } ?? "") + "Input examples:\n"
                    + examples.map { $0.serialized() }.joined(separator: "\n")
            }
            if let d = description { fn.append(("description", .string(d))) }
            fn.append(("parameters", schema))
            // `strict`: the input must follow the schema; one the grammar cannot enforce is then a 400 (as chat's).
            if let strict = try tf.bool("strict") { fn.append(("strict", .bool(strict))) }
            _ = tf.raw("cache_control")   // a caching hint: the prefix cache serves repeated tool lists by itself
            // How the input is streamed: it is streamed as it is generated either way.
            _ = try tf.bool("eager_input_streaming")
            if try tf.bool("defer_loading") == true {
                throw refuse(tp + ".defer_loading", "there is no tool search: every tool is in the prompt")
            }
            if let callers = try tf.array("allowed_callers"), !callers.contains(.string("direct")) {
                throw refuse(tp + ".allowed_callers", "only 'direct' calls are served (the model calls the tool itself; there is no code execution), and the list must include it")
            }
            try tf.refuseUnread { "\(tp).\($0): Extra inputs are not permitted" }
            tools.append(.object([("type", .string("function")), ("function", .object(fn))]))
        }
        let names = tools.compactMap { $0["function"]?["name"]?.stringValue }
        if Set(names).count < names.count {
            throw APIError.invalidRequest("tools: Tool names must be unique.", param: "tools")
        }
        var toolChoice: JSONValue?
        var parallel: Bool?
        if let choice = try f.object("tool_choice") {
            let cf = FieldReader(choice, prefix: "tool_choice.")
            let type = try cf.string("type")
            switch type {
            case "auto"?: toolChoice = tools.isEmpty ? nil : .string("auto")
            case "none"?: toolChoice = tools.isEmpty ? nil : .string("none")
            case "any"?: toolChoice = .string("required")
            case "tool"?:
                guard let name = try cf.string("name") else {
                    throw APIError.invalidRequest("tool_choice.name: Field required for type 'tool'", param: "tool_choice.name")
                }
                guard names.contains(name) else {
                    throw APIError.invalidRequest("tool_choice.name: '\(name)' is not in 'tools'", param: "tool_choice.name")
                }
                toolChoice = .object([("type", .string("function")), ("function", .object([("name", .string(name))]))])
            default:
                throw APIError.invalidRequest("tool_choice.type: must be 'auto', 'any', 'tool' or 'none'", param: "tool_choice.type")
            }
            if tools.isEmpty && (type == "any" || type == "tool") {
                throw APIError.invalidRequest("tool_choice: '\(type!)' needs 'tools'", param: "tool_choice")
            }
            // (Anthropic's `none` choice has only its type.)
            if type != "none", try cf.bool("disable_parallel_tool_use") == true { parallel = false }
            try cf.refuseUnread { "tool_choice.\($0): Extra inputs are not permitted" }
        }
        var thinkingBudget: Int?
        var thinkingOmitted = false
        var thinkingDisabled = false
        if let thinking = try f.object("thinking") {
            let tf = FieldReader(thinking, prefix: "thinking.")
            switch try tf.string("display") {
            case nil, "summarized"?: break
            case "omitted"?: thinkingOmitted = true
            case let other?:
                throw APIError.invalidRequest("thinking.display: '\(other)' is not supported (summarized or omitted)", param: "thinking.display")
            }
            switch try tf.string("type") {
            case "disabled"?:
                // No thinking, as Anthropic defines it: the template's non-thinking mode, as chat's
                // `reasoning_effort: "none"` selects it (it was the template's default, thinking inline: helper-63).
                thinkingDisabled = true
            case "enabled"?:
                guard let budget = try tf.int("budget_tokens", min: 1024) else {
                    throw APIError.invalidRequest("thinking.budget_tokens: Field required (>= 1024)", param: "thinking.budget_tokens")
                }
                thinkingBudget = budget
                if case .string("required")? = toolChoice {
                    throw refuse("tool_choice", "thinking allows only tool_choice 'auto' or 'none' (as Anthropic's API)")
                }
                if case .object? = toolChoice {
                    throw refuse("tool_choice", "thinking allows only tool_choice 'auto' or 'none' (as Anthropic's API)")
                }
            default:
                throw APIError.invalidRequest("thinking.type: must be 'enabled' or 'disabled'", param: "thinking.type")
            }
            try tf.refuseUnread { "thinking.\($0): Extra inputs are not permitted" }
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
                guard !t.isEmpty else { throw APIError.invalidRequest("\(p).text: text content blocks must be non-empty", param: p + ".text") }
                let bf = FieldReader(b, prefix: p + ".")
                for key in ["type", "text", "cache_control", "citations"] { _ = bf.raw(key) }
                try bf.refuseUnread { "\(p).\($0): Extra inputs are not permitted" }
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
        var previousCalls: [String] = []   // tool_use ids of the previous message
        for (i, item) in items.enumerated() {
            let converted = try message(item, index: i, final: i == items.count - 1)
            // Anthropic: each tool_result answers a tool_use of the message right before it, once (helper-72: a
            // second result for a call was rendered, paired by position with the wrong call).
            var seen = Set<String>()
            for m in converted where m.role == .tool {
                if let id = m.toolCallId, !seen.insert(id).inserted {
                    throw APIError.invalidRequest(
                        "messages.\(i).content: each tool_use must have a single result. Found multiple `tool_result` blocks with id: \(id)",
                        param: "messages[\(i)].content")
                }
                if let id = m.toolCallId, !previousCalls.contains(id) {
                    throw APIError.invalidRequest(
                        "messages.\(i).content: unexpected tool_use_id found in tool_result blocks: \(id). Each tool_result block must have a corresponding tool_use block in the previous message.",
                        param: "messages[\(i)].content")
                }
            }
            // Anthropic: and every tool_use of the previous message is answered by a tool_result in this one (a model
            // shown an unanswered call makes up its result).
            let answered = Set(converted.compactMap { $0.role == .tool ? $0.toolCallId : nil })
            if let missing = Self.unanswered(previousCalls, answered) {
                throw Self.unansweredError(missing, index: i - 1)
            }
            previousCalls = converted.flatMap { $0.toolCalls.map(\.id) }
            messages.append(contentsOf: converted)
        }
        if let missing = Self.unanswered(previousCalls, []) { throw Self.unansweredError(missing, index: items.count - 1) }

        var s = SamplingParameters()
        if countTokens {
            // Anthropic's count_tokens body has no generation fields: refused as its API refuses them, not read and
            // dropped (helper-63).
            for key in ["max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata", "service_tier"]
            where f.raw(key) != nil {
                throw APIError.invalidRequest("\(key): Extra inputs are not permitted", param: key)
            }
        } else {
            guard let max = try f.int("max_tokens", min: 1) else {
                throw APIError.invalidRequest("max_tokens: Field required", param: "max_tokens")
            }
            s.maxTokens = max
        }
        s.temperature = try f.double("temperature", lower: 0, upper: 1)
        s.topP = try f.double("top_p", lower: 0, upper: 1)
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
            let mf = FieldReader(meta, prefix: "metadata.")
            s.user = try mf.string("user_id")
            try mf.refuseUnread { "metadata.\($0): Extra inputs are not permitted" }
        }
        if let budget = thinkingBudget, let max = s.maxTokens, budget >= max {
            throw APIError.invalidRequest("thinking.budget_tokens: must be less than max_tokens (\(max)), got \(budget)",
                                          param: "thinking.budget_tokens")
        }
        // A final assistant message is a prefill: the reply continues it and holds only the continuation, as on
        // Anthropic's API (which, with thinking on, wants such a message to start with a thinking block).
        var prefill = false
        if let last = messages.last, last.role == .assistant, last.toolCalls.isEmpty {
            if thinkingBudget != nil && last.reasoningContent == nil {
                throw APIError.invalidRequest(
                    "messages: when thinking is enabled, a final assistant message must start with a thinking block",
                    param: "messages")
            }
            // Anthropic's rule, and its words: a prefill ending in whitespace continued mid-token (helper-71: the reply
            // began with a garbled "！"); clients strip it for Anthropic (LangChain, the Vercel AI SDK).
            if let text = last.content, let end = text.unicodeScalars.last, end.properties.isWhitespace {
                throw APIError.invalidRequest("messages: final assistant content cannot end with trailing whitespace",
                                              param: "messages")
            }
            prefill = true
        }
        var chat = ChatCompletionRequest(messages: messages, sampling: s)
        if thinkingDisabled { chat.reasoningEffort = "none" }
        chat.continueFinalMessage = prefill
        chat.model = try f.string("model")
        if !tools.isEmpty { chat.tools = .array(tools) }
        chat.toolChoice = toolChoice
        chat.parallelToolCalls = parallel
        try f.refuseUnread { "\($0): Extra inputs are not permitted" }   // Anthropic's answer to an unknown field
        chat.emptyContentForNone = true
        return AnthropicMessagesRequest(chat: chat, thinking: thinkingBudget != nil, thinkingOmitted: thinkingOmitted)
    }

    /// The scalars of a tool name (`^[a-zA-Z0-9_-]{1,128}$`, Anthropic's pattern).
    static let nameScalars = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".unicodeScalars)

    /// The ids of `calls` not in `answered`, or nil when every call is answered.
    static func unanswered(_ calls: [String], _ answered: Set<String>) -> [String]? {
        let missing = calls.filter { !answered.contains($0) }
        return missing.isEmpty ? nil : missing
    }

    /// Anthropic's 400 for tool_use blocks of `messages[index]` without tool_result blocks in the next message (named
    /// as Anthropic's API names it: the index of the message with the calls).
    static func unansweredError(_ ids: [String], index: Int) -> APIError {
        APIError.invalidRequest(
            "messages.\(index): tool_use ids were found without tool_result blocks immediately after: \(ids.joined(separator: ", ")). Each tool_use block must have a corresponding tool_result block in the next message.",
            param: "messages[\(index)]")
    }

    /// One Anthropic message as chat messages: text (and thinking) blocks join into one message, `tool_use` blocks
    /// become the assistant's tool calls, each `tool_result` block becomes a `tool` message. Content must not be
    /// empty (`""`, `[]`, an empty text block) except in a `final` assistant message (a prefill), as Anthropic's API.
    static func message(_ item: JSONValue, index i: Int, final: Bool = false) throws(APIError) -> [ChatMessage] {
        let p = "messages[\(i)]"
        guard case .object = item else { throw APIError.invalidRequest("\(p): must be an object, got \(item.typeName)", param: p) }
        let f = FieldReader(item, prefix: p + ".")
        let roleText = try f.string("role")
        guard let roleText, let role = ChatRole(rawValue: roleText), role == .user || role == .assistant else {
            throw APIError.invalidRequest("\(p).role: must be 'user' or 'assistant'", param: p + ".role")
        }
        let content = f.raw("content")
        try f.refuseUnread { "\(p).\($0): Extra inputs are not permitted" }
        let mayBeEmpty = final && role == .assistant
        switch content {
        case .string(let s)?:
            if s.isEmpty && !mayBeEmpty { throw Self.emptyContent(p) }
            return [ChatMessage(role: role, content: s)]
        case .array(let blocks)?:
            if blocks.isEmpty && !mayBeEmpty { throw Self.emptyContent(p) }
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
                // Fields each block may carry besides those read below (cache hints, citations, signatures).
                // (`caller`, `toolset_name`: how a tool_use came about, as the Anthropic API returns it in history.)
                for key in ["cache_control", "citations", "signature", "data", "caller", "toolset_name"] { _ = bf.raw(key) }
                switch (type, role) {
                case ("text", _):
                    let t = try required("text")
                    if t.isEmpty && !mayBeEmpty {
                        throw APIError.invalidRequest("\(bp).text: text content blocks must be non-empty", param: bp + ".text")
                    }
                    texts.append(t)
                case ("thinking", .assistant): thinking.append(try required("thinking"))
                case ("redacted_thinking", .assistant): break  // encrypted: nothing a local model can read
                case ("tool_use", .assistant):
                    let input = try bf.object("input") ?? .object([])
                    calls.append(ToolCall(id: try required("id"), name: try required("name"), arguments: input.serialized()))
                case ("tool_result", .user):
                    let id = try required("tool_use_id")
                    let content: String
                    switch bf.raw("content") {
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
                try bf.refuseUnread { "\(bp).\($0): Extra inputs are not permitted" }
            }
            var out = results
            if !texts.isEmpty || !calls.isEmpty || !thinking.isEmpty || results.isEmpty {
                var m = ChatMessage(role: role, content: texts.isEmpty && !calls.isEmpty ? nil : texts.joined(separator: "\n"), contentParts: texts)
                m.toolCalls = calls
                m.reasoningContent = thinking.isEmpty ? nil : thinking.joined(separator: "\n")
                out.append(m)
            }
            return out
        case nil: throw APIError.invalidRequest("\(p).content: Field required", param: p + ".content")
        case .null?: throw emptyContent(p)
        case let other?:
            throw APIError.invalidRequest("\(p).content: must be a string or an array of content blocks, got \(other.typeName)",
                                          param: p + ".content")
        }
    }

    static func emptyContent(_ p: String) -> APIError {
        .invalidRequest("\(p): all messages must have non-empty content except for the optional final assistant message",
                        param: p + ".content")
    }
}
