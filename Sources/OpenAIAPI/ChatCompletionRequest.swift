// `POST /v1/chat/completions` request body: types and validation (OpenAI "Create chat completion").
import JSON

/// Author of a chat message.
public enum ChatRole: String, Sendable, Equatable, CaseIterable {
    case system, user, assistant, tool, developer
}

/// A function call made by the assistant: `{"id","type":"function","function":{"name","arguments"}}`.
public struct ToolCall: Sendable, Equatable {
    /// Identifier as sent on the wire (`chatcmpl-…`, `cmpl-…`, `call_…`, or a model id).
    public var id: String
    /// Always `"function"` today.
    public var type: String
    /// Function name.
    public var name: String
    /// Arguments as JSON text (a string on the wire, per OpenAI).
    public var arguments: String

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(id: String, type: String = "function", name: String, arguments: String) {
        self.id = id
        self.type = type
        self.name = name
        self.arguments = arguments
    }

    /// `{"id":…,"type":…,"function":{"name":…,"arguments":…}}`.
    public var json: JSONValue {
        .object([("id", .string(id)), ("type", .string(type)),
                 ("function", .object([("name", .string(name)), ("arguments", .string(arguments))]))])
    }
}

/// One message of the conversation.
public struct ChatMessage: Sendable, Equatable {
    /// Author of the message.
    public var role: ChatRole
    /// Text content; array-of-parts content is its text parts joined by `"\n"`, as vLLM and llama-server join them
    /// for a template that takes string content (`[{"text":"Rule one."},{"text":"Rule two."}]` is
    /// `"Rule one.\nRule two."`); nil when `null` or absent (assistant only).
    public var content: String?
    /// The text parts when content was sent as an array, in order; nil for string/null content.
    public var contentParts: [String]?
    /// Optional participant name.
    public var name: String?
    /// Calls made by an assistant message (`[]` when none).
    public var toolCalls: [ToolCall]
    /// For `tool` messages: the id of the call this answers.
    public var toolCallId: String?
    /// Reasoning text of an earlier assistant turn (DeepSeek convention).
    public var reasoningContent: String?
    /// The message object exactly as the client sent it (nil when built in code): chat templates see its keys and
    /// `null`s as sent.
    public var json: JSONValue?
    /// Keys of `json` with non-null values that only the chat template can honour: `name` and any key outside
    /// OpenAI's message schema. The renderer refuses each one the model's template never names (400 naming
    /// `messages[i].key`), so a field is either seen by the template or an error, never dropped.
    public var templateOnlyKeys: [String] = []

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(role: ChatRole, content: String?, contentParts: [String]? = nil, name: String? = nil,
                toolCalls: [ToolCall] = [], toolCallId: String? = nil, reasoningContent: String? = nil) {
        self.role = role
        self.content = content
        self.contentParts = contentParts
        self.name = name
        self.toolCalls = toolCalls
        self.toolCallId = toolCallId
        self.reasoningContent = reasoningContent
    }
}

/// A validated chat completion request. Sampling fields live in `sampling` and are also readable directly
/// (`request.temperature`) through dynamic member lookup.
@dynamicMemberLookup
public struct ChatCompletionRequest: Sendable, Equatable {
    /// Requested model id (nil when absent: the server's default model).
    public var model: String?
    /// The conversation, at least one message.
    public var messages: [ChatMessage]
    /// Sampling and output controls (validated ranges documented on the type).
    public var sampling: SamplingParameters
    /// `tools` verbatim (an array of `{"type":"function","function":{…}}`), member order preserved.
    public var tools: JSONValue?
    /// `tool_choice` verbatim: `"none"`, `"auto"`, `"required"` or `{"type":"function","function":{"name":…}}`.
    public var toolChoice: JSONValue?
    /// `response_format` verbatim (`{"type":"text"|"json_object"|"json_schema",…}`).
    public var responseFormat: JSONValue?
    /// `reasoning_effort`: `"none"`, `"minimal"`, `"low"`, `"medium"` or `"high"`.
    public var reasoningEffort: String?
    /// `parallel_tool_calls` as sent (nil when absent; OpenAI's default is true).
    public var parallelToolCalls: Bool?
    /// `chat_template_kwargs` (vLLM, llama-server): extra chat-template variables, e.g. `{"enable_thinking": false}`;
    /// `null` values reach the template as `none`. Keys the server sets itself are refused.
    public var chatTemplateKwargs: [(key: String, value: JSONValue)] = []
    /// `reasoning_format` (llama-server): `"deepseek"` splits reasoning into `reasoning_content`, `"none"` leaves it
    /// inline in `content`; nil: the server's `--reasoning-format`.
    public var reasoningFormat: String?
    /// `continue_final_message` (vLLM): the last message is an assistant message the model continues (a prefill);
    /// the reply holds only the continuation.
    public var continueFinalMessage = false
    /// Set by routes whose clients cannot send a null content (Anthropic Messages, Responses): an assistant turn
    /// with only tool calls has no content there, and a template that fails on `none` (Qwen3's
    /// `'</think>' in message.content`) gets `""` for it instead. Chat requests keep null as `none`, as jinja2
    /// renders it. Not a request field.
    public var emptyContentForNone = false

    /// Template variables the server sets itself, refused in `chat_template_kwargs`.
    public static let reservedTemplateVariables: Set<String> = [
        "messages", "tools", "documents", "add_generation_prompt", "bos_token", "eos_token"]

    public static func == (a: ChatCompletionRequest, b: ChatCompletionRequest) -> Bool {
        a.model == b.model && a.messages == b.messages && a.sampling == b.sampling && a.tools == b.tools
            && a.toolChoice == b.toolChoice && a.responseFormat == b.responseFormat
            && a.reasoningEffort == b.reasoningEffort && a.parallelToolCalls == b.parallelToolCalls
            && a.chatTemplateKwargs.elementsEqual(b.chatTemplateKwargs) { $0.key == $1.key && $0.value == $1.value }
            && a.reasoningFormat == b.reasoningFormat && a.continueFinalMessage == b.continueFinalMessage
            && a.emptyContentForNone == b.emptyContentForNone
    }

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(model: String? = nil, messages: [ChatMessage], sampling: SamplingParameters = SamplingParameters(),
                tools: JSONValue? = nil, toolChoice: JSONValue? = nil, responseFormat: JSONValue? = nil,
                reasoningEffort: String? = nil) {
        self.model = model
        self.messages = messages
        self.sampling = sampling
        self.tools = tools
        self.toolChoice = toolChoice
        self.responseFormat = responseFormat
        self.reasoningEffort = reasoningEffort
    }

    /// Reads or writes a sampling field directly, e.g. `request.temperature`.
    public subscript<T>(dynamicMember keyPath: WritableKeyPath<SamplingParameters, T>) -> T {
        get { sampling[keyPath: keyPath] }
        set { sampling[keyPath: keyPath] = newValue }
    }

    /// Reads a computed sampling value directly, e.g. `request.effectiveMaxTokens`.
    public subscript<T>(dynamicMember keyPath: KeyPath<SamplingParameters, T>) -> T { sampling[keyPath: keyPath] }

    /// Decodes and validates a request body.
    /// - Parameter body: the HTTP body bytes (UTF-8 JSON object).
    /// - Returns: the request, or a 400 `APIError` (never a 5xx) naming the offending field in `param`; a field
    ///   this server does not know is such a 400 ("Unrecognized request argument supplied", as OpenAI answers).
    public static func decode(_ body: [UInt8]) -> Result<ChatCompletionRequest, APIError> {
        do throws(APIError) {
            return .success(try parse(JSONValue.parse(body)))
        } catch {
            return .failure(error)
        }
    }

    /// Validates an already-parsed JSON value (see `decode`).
    public static func parse(_ json: JSONValue) throws(APIError) -> ChatCompletionRequest {
        guard case .object = json else {
            throw APIError.invalidRequest("Request body must be a JSON object, got \(json.typeName)")
        }
        let f = FieldReader(json)
        guard let rawMessages = f.raw("messages") else {
            throw APIError.invalidRequest("'messages' is a required property", param: "messages")
        }
        guard let items = rawMessages.arrayValue else {
            throw APIError.invalidRequest("'messages' must be an array, got \(rawMessages.typeName)", param: "messages")
        }
        guard !items.isEmpty else {
            throw APIError.invalidRequest("'messages' must contain at least one message", param: "messages")
        }
        var messages: [ChatMessage] = []
        for (i, item) in items.enumerated() { messages.append(try parseMessage(item, index: i)) }
        try checkToolHistory(messages, items)

        var req = ChatCompletionRequest(messages: messages, sampling: try SamplingParameters.read(f, chat: true))
        req.model = try f.string("model")
        let toolList = try f.array("tools")
        if let tools = toolList {
            for (i, t) in tools.enumerated() {
                let tf = FieldReader(t, prefix: "tools[\(i)].")
                guard case .object = t else { throw APIError.invalidRequest("'tools[\(i)]' must be an object", param: "tools[\(i)]") }
                // The type first: a hosted tool (`code_interpreter`, `custom`, …) is told so, not that it lacks a function.
                if let type = try tf.string("type"), type != "function" {
                    throw APIError.invalidRequest("Tool type '\(type)' is not supported; use 'function'", param: "tools[\(i)].type")
                }
                guard let fn = try tf.object("function"), try FieldReader(fn, prefix: tf.path("function.")).string("name") != nil else {
                    throw APIError.invalidRequest("'tools[\(i)].function.name' is required", param: "tools[\(i)].function")
                }
                // OpenAI's function tool has exactly these fields: another is a typo or a feature not served.
                let ff = FieldReader(fn, prefix: tf.path("function."))
                _ = try ff.string("name")
                _ = try ff.string("description")
                try Self.checkToolParameters(try ff.object("parameters"), path: "tools[\(i)].function.parameters")
                _ = try ff.bool("strict")
                try ff.refuseUnread { "'\(tf.path("function."))\($0)' is not a field of a function definition" }
                _ = tf.raw("cache_control")   // Anthropic's caching hint, sent by proxies: the prefix cache needs none
                try tf.refuseUnread { "'tools[\(i)].\($0)' is not a field of a function tool" }
            }
            try Self.checkUniqueToolNames(tools.map { $0["function"]?["name"]?.stringValue }) { "tools[\($0)].function.name" }
            // An empty list declares no tools: the request is answered as one without `tools` (llama-server reads
            // it the same way; clients send `"tools": []` when an agent has none), not refused for a template that
            // cannot render tools.
            if !tools.isEmpty { req.tools = f.raw("tools") }
        }
        if let choice = f.raw("tool_choice") {
            switch choice {
            case .string(let s):
                guard ["none", "auto", "required"].contains(s) else {
                    throw APIError.invalidRequest("'tool_choice' must be 'none', 'auto', 'required' or an object", param: "tool_choice")
                }
            case .object:
                // OpenAI's other choice objects (`allowed_tools`, `custom`) name their type; only `function` is served.
                if let type = choice["type"], type != .string("function") {
                    throw APIError.invalidRequest(
                        "'tool_choice.type' must be 'function' (\(type.stringValue.map { "'\($0)'" } ?? "\(type)") is not supported: "
                        + "allowed_tools and custom tools are not implemented)", param: "tool_choice.type")
                }
                guard let name = choice["function"]?["name"]?.stringValue else {
                    throw APIError.invalidRequest("'tool_choice.function.name' is required", param: "tool_choice")
                }
                let cf = FieldReader(choice, prefix: "tool_choice.")
                _ = cf.raw("type")
                if let fn = try cf.object("function") {
                    let ff = FieldReader(fn, prefix: "tool_choice.function.")
                    _ = ff.raw("name")
                    try ff.refuseUnread { "'tool_choice.function.\($0)' is not a field of a named tool choice" }
                }
                try cf.refuseUnread { "'tool_choice.\($0)' is not a field of a named tool choice" }
                let declared = req.tools?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue } ?? []
                guard declared.contains(name) else {
                    throw APIError.invalidRequest("'tool_choice' names function '\(name)', which is not in 'tools'", param: "tool_choice")
                }
            default:
                throw APIError.invalidRequest("'tool_choice' must be a string or an object", param: "tool_choice")
            }
            if toolList?.isEmpty == true && choice != .string("none") && choice != .string("auto") {
                throw APIError.invalidRequest("'tool_choice' \(choice.stringValue.map { "'\($0)'" } ?? "naming a function") "
                                              + "needs at least one tool in 'tools'", param: "tools")
            }
            if toolList == nil && choice != .string("none") {
                throw APIError.invalidRequest("'tool_choice' is only allowed when 'tools' are specified", param: "tool_choice")
            }
            req.toolChoice = choice
        }
        req.parallelToolCalls = try f.bool("parallel_tool_calls")
        if let rf = try f.object("response_format") {
            let rff = FieldReader(rf, prefix: "response_format.")
            let type = try rff.string("type")
            guard let type, ["text", "json_object", "json_schema"].contains(type) else {
                throw APIError.invalidRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'",
                                              param: "response_format")
            }
            switch type {
            case "json_schema":
                guard let spec = try rff.object("json_schema") else {
                    throw APIError.invalidRequest("'response_format.json_schema' is required for type 'json_schema'",
                                                  param: "response_format.json_schema")
                }
                // The schema's own fields are checked where it is compiled (ResponseFormat.swift); here, that
                // there are no others.
                let sf = FieldReader(spec, prefix: "response_format.json_schema.")
                for key in ["name", "description", "schema", "strict"] { _ = sf.raw(key) }
                try sf.refuseUnread { "'response_format.json_schema.\($0)' is not a field of json_schema" }
            case "json_object":
                // llama-server's extension: a `schema` here constrains the object to it.
                if let schema = rff.raw("schema"), schema.objectValue == nil, schema.boolValue == nil {
                    throw rff.typeError("schema", "an object", schema)
                }
            default:
                break
            }
            try rff.refuseUnread { "'response_format.\($0)' is not a field of the \(type) response format" }
            req.responseFormat = rf
        }
        if let effort = try f.string("reasoning_effort") {
            guard ["none", "minimal", "low", "medium", "high"].contains(effort) else {
                throw APIError.invalidRequest("'reasoning_effort' must be one of none, minimal, low, medium, high",
                                              param: "reasoning_effort")
            }
            req.reasoningEffort = effort
        }
        if let kwargs = try f.object("chat_template_kwargs") {
            let pairs = kwargs.objectValue ?? []
            for (k, _) in pairs where reservedTemplateVariables.contains(k) {
                throw APIError.invalidRequest("'chat_template_kwargs.\(k)' is set by the server and cannot be overridden",
                                              param: "chat_template_kwargs")
            }
            req.chatTemplateKwargs = pairs
        }
        if let format = try f.string("reasoning_format") {
            guard ["deepseek", "none"].contains(format) else {
                throw APIError.invalidRequest("'reasoning_format' must be 'deepseek' or 'none'", param: "reasoning_format")
            }
            req.reasoningFormat = format
        }
        if try f.bool("continue_final_message") == true {
            guard let last = messages.last, last.role == .assistant, last.content != nil, last.toolCalls.isEmpty else {
                throw APIError.invalidRequest("'continue_final_message' needs a last message from the assistant with text content",
                                              param: "continue_final_message")
            }
            if try f.bool("add_generation_prompt") == true {
                throw APIError.invalidRequest("'continue_final_message' and 'add_generation_prompt' cannot both be true",
                                              param: "continue_final_message")
            }
            req.continueFinalMessage = true
        }
        // OpenAI fields that need no action here: `metadata` (kept with stored completions only, and nothing is
        // stored), `prompt_cache_key` (the prefix cache matches prompts by content, no key needed),
        // `safety_identifier` (the end-user id `user` also is: it goes to the access log).
        _ = try f.metadata()
        _ = try f.string("prompt_cache_key")
        if let id = try f.string("safety_identifier"), req.sampling.user == nil { req.sampling.user = id }
        if let tier = try f.string("service_tier"), tier != "auto", tier != "default" {
            throw APIError.invalidRequest("'service_tier' '\(tier)' is not supported: only 'auto' and 'default' are served",
                                          param: "service_tier")
        }
        try f.refuseUnread { "Unrecognized request argument supplied: \($0)" }
        return req
    }

    /// A function tool's `parameters`: a JSON Schema of an object, as OpenAI requires (arguments are a JSON object;
    /// a string or array schema forced a call the parsers cannot read back, whose markup then reached the content).
    /// - Throws: `APIError` 400 naming `path.type` when the schema's `type` is another.
    public static func checkToolParameters(_ parameters: JSONValue?, path: String) throws(APIError) {
        guard let type = parameters?["type"] else { return }
        guard type == .string("object") else {
            throw APIError.invalidRequest("'\(path).type' must be 'object': a function's arguments are a JSON object, got \(type.serialized())",
                                          param: path + ".type")
        }
    }

    /// Tool names must be unique: a call names its tool, so two with one name make it ambiguous (Anthropic's API
    /// answers "Tool names must be unique").
    /// - Throws: `APIError` 400 naming `path(i)` of the second tool with a name.
    public static func checkUniqueToolNames(_ names: [String?], path: (Int) -> String) throws(APIError) {
        var seen: Set<String> = []
        for (i, name) in names.enumerated() {
            guard let name else { continue }
            if !seen.insert(name).inserted {
                throw APIError.invalidRequest("Tool names must be unique: '\(name)' is declared twice", param: path(i))
            }
        }
    }

    /// OpenAI's rules for a tool-call history (its API answers 400 to each; a template would render nonsense): a
    /// `tool` message answers a call of the nearest earlier assistant message with `tool_calls`, with only tool
    /// messages between them, its `tool_call_id` one of that message's call ids (when the client sent ids); and
    /// such an assistant message is answered for every call before the next user, system or assistant message, and
    /// before the end of the history (a model shown an unanswered call makes up its result, helper-66).
    /// `items` are the messages as sent (`messages[i]`), to tell client ids from generated ones.
    /// - Throws: `APIError` 400 naming `messages[i].role`, `messages[i].tool_call_id` or `messages[i]`.
    static func checkToolHistory(_ messages: [ChatMessage], _ items: [JSONValue]) throws(APIError) {
        var open: (index: Int, ids: [String], idsSent: Bool)?   // the assistant message whose calls are being answered
        for (i, m) in messages.enumerated() {
            if m.role == .tool {
                guard let o = open else {
                    throw APIError.invalidRequest(
                        "'messages[\(i)]' with role 'tool' must be a response to a preceding assistant message with 'tool_calls'",
                        param: "messages[\(i)].role")
                }
                if o.idsSent, let id = m.toolCallId {
                    guard let k = o.ids.firstIndex(of: id) else {
                        let made = messages[o.index].toolCalls.map(\.id)
                        throw APIError.invalidRequest(made.contains(id)
                            ? "'messages[\(i)].tool_call_id' '\(id)' was already answered after messages[\(o.index)]"
                            : "'messages[\(i)].tool_call_id' '\(id)' does not answer a tool call of messages[\(o.index)] (its ids: \(made.joined(separator: ", ")))",
                            param: "messages[\(i)].tool_call_id")
                    }
                    open!.ids.remove(at: k)
                }
                continue
            }
            if let o = open, o.idsSent, !o.ids.isEmpty {
                throw APIError.invalidRequest(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'; messages[\(o.index)] has no response for: \(o.ids.joined(separator: ", "))",
                    param: "messages[\(o.index)]")
            }
            open = nil
            if m.role == .assistant && !m.toolCalls.isEmpty {
                let sent = items[i]["tool_calls"]?.arrayValue?.allSatisfy { $0["id"]?.stringValue != nil } ?? false
                open = (i, m.toolCalls.map(\.id), sent)
            }
        }
        // The history ends in calls: unanswered ones (any, when the client sent no ids: only if no tool message follows).
        if let o = open, (o.idsSent && !o.ids.isEmpty) || o.index == messages.count - 1 {
            let unanswered = o.idsSent ? o.ids : messages[o.index].toolCalls.map(\.id)
            throw APIError.invalidRequest(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'; messages[\(o.index)] has no response for: \(unanswered.joined(separator: ", "))",
                param: "messages[\(o.index)]")
        }
    }

    static func parseMessage(_ item: JSONValue, index i: Int) throws(APIError) -> ChatMessage {
        let p = "messages[\(i)]"
        guard case .object = item else {
            throw APIError.invalidRequest("'\(p)' must be an object, got \(item.typeName)", param: p)
        }
        let f = FieldReader(item, prefix: p + ".")
        guard let roleText = try f.string("role") else {
            throw APIError.invalidRequest("'\(p).role' is a required property", param: p + ".role")
        }
        guard let role = ChatRole(rawValue: roleText) else {
            throw APIError.invalidRequest("'\(p).role' must be one of system, user, assistant, tool, developer; got '\(roleText)'",
                                          param: p + ".role")
        }
        var msg = ChatMessage(role: role, content: nil)
        msg.json = item
        switch f.raw("content") {
        case nil:
            guard role == .assistant else {
                throw APIError.invalidRequest("'\(p).content' is required for \(role.rawValue) messages", param: p + ".content")
            }
        case .string(let s)?:
            msg.content = s
        case .array(let parts)?:
            let texts = try textParts(parts, path: p, role: role, types: ["text"], strictKeys: true)
            msg.contentParts = texts
            msg.content = texts.joined(separator: "\n")
        case let other?:
            throw APIError.invalidRequest("'\(p).content' must be a string, an array of content parts or null, got \(other.typeName)",
                                          param: p + ".content")
        }
        msg.name = try f.string("name")
        if msg.name != nil { msg.templateOnlyKeys.append("name") }
        msg.reasoningContent = try f.string("reasoning_content")
        msg.toolCallId = try f.string("tool_call_id")
        // OpenAI's assistant message fields, as clients send a reply back (`messages.append(choice.message)`): a
        // `refusal` is what the assistant said (its content when there is none); `audio`, `function_call` (the
        // deprecated form of `tool_calls`) and citation `annotations` have no meaning here and must be null or empty.
        if let refusal = try f.string("refusal") {
            guard role == .assistant, msg.content == nil else {
                throw APIError.invalidRequest(role == .assistant
                    ? "'\(p).refusal' and '\(p).content' are both set; send the refusal text as the content"
                    : "'\(p).refusal' is only valid on assistant messages", param: p + ".refusal")
            }
            msg.content = refusal
        }
        for key in ["audio", "function_call"] where f.raw(key).map({ !$0.isNull }) == true {
            throw APIError.invalidRequest("'\(p).\(key)' is not supported by this server (it must be null or absent)",
                                          param: p + "." + key)
        }
        if let annotations = try f.array("annotations"), !annotations.isEmpty {
            throw APIError.invalidRequest("'\(p).annotations' is not supported by this server (it must be empty, null or absent)",
                                          param: p + ".annotations")
        }
        // Reasoning is an assistant's; on another role only the template can use it (decided where it is rendered).
        if role != .assistant && msg.reasoningContent != nil && !msg.templateOnlyKeys.contains("reasoning_content") {
            msg.templateOnlyKeys.append("reasoning_content")
        }
        if role != .tool && msg.toolCallId != nil {
            throw APIError.invalidRequest("'\(p).tool_call_id' is only valid on tool messages", param: p + ".tool_call_id")
        }
        if role != .assistant, let calls = f.raw("tool_calls"), !calls.isNull, calls.arrayValue?.isEmpty != true {
            throw APIError.invalidRequest("'\(p).tool_calls' is only valid on assistant messages", param: p + ".tool_calls")
        }
        if role == .tool && msg.toolCallId == nil {
            throw APIError.invalidRequest("'\(p).tool_call_id' is required for tool messages", param: p + ".tool_call_id")
        }
        if let calls = try f.array("tool_calls") {
            for (j, call) in calls.enumerated() {
                let cp = "\(p).tool_calls[\(j)]"
                let cf = FieldReader(call, prefix: cp + ".")
                guard case .object = call else { throw APIError.invalidRequest("'\(cp)' must be an object", param: cp) }
                guard let fn = try cf.object("function") else {
                    throw APIError.invalidRequest("'\(cp).function' is required", param: cp + ".function")
                }
                let ff = FieldReader(fn, prefix: cp + ".function.")
                guard let name = try ff.string("name") else {
                    throw APIError.invalidRequest("'\(cp).function.name' is required", param: cp + ".function.name")
                }
                // Some clients send arguments as an object; keep it as JSON text.
                let args: String
                switch ff.raw("arguments") {
                case .string(let s)?: args = s
                case nil, .null?: args = "{}"
                case let other?: args = other.serialized()
                }
                try ff.refuseUnread { "'\(cp).function.\($0)' is not a field of a tool call's function" }
                msg.toolCalls.append(ToolCall(id: try cf.string("id") ?? "call_\(i)_\(j)", type: try cf.string("type") ?? "function",
                                              name: name, arguments: args))
                _ = cf.raw("index")   // kept by clients that accumulate streamed calls by their `index`
                try cf.refuseUnread { "'\(cp).\($0)' is not a field of a tool call" }
            }
        }
        // Keys outside OpenAI's message schema reach the chat template (vLLM passes them too); the renderer refuses
        // the ones the template never reads.
        if case .object(let members) = item {
            let schema: Set<String> = ["role", "content", "name", "reasoning_content", "tool_call_id", "tool_calls", "refusal",
                                       "audio", "function_call", "annotations"]
            for (key, value) in members where !schema.contains(key) && !value.isNull && !msg.templateOnlyKeys.contains(key) {
                msg.templateOnlyKeys.append(key)
            }
        }
        // OpenAI: an assistant message needs content unless it carries tool calls (or a refusal, now its content). A
        // bare null would only fail later, inside the chat template.
        if role == .assistant && msg.content == nil && msg.toolCalls.isEmpty && msg.reasoningContent == nil {
            throw APIError.invalidRequest("'\(p).content' is required unless the assistant message has 'tool_calls'",
                                          param: p + ".content")
        }
        return msg
    }
}

/// The texts of an array-of-parts `content` at `path` (`messages[i]`): parts whose `type` is in `types`, in order; an
/// assistant's earlier `refusal` part contributes its `refusal` text (what the assistant said). `strictKeys` (chat
/// messages): a part with keys other than `type` and `text` (`refusal`) is refused.
/// - Throws: `APIError` 400 naming the part for a non-object, a missing `type` or `text`, or another type.
func textParts(_ parts: [JSONValue], path p: String, role: ChatRole, types: Set<String>,
               strictKeys: Bool = false) throws(APIError) -> [String] {
    var texts: [String] = []
    for (j, part) in parts.enumerated() {
        let pp = "\(p).content[\(j)]"
        let pf = FieldReader(part, prefix: pp + ".")
        guard case .object = part, let type = try pf.string("type") else {
            throw APIError.invalidRequest("'\(pp)' must be an object with a 'type'", param: pp)
        }
        if type == "refusal" && role == .assistant {
            guard let refusal = try pf.string("refusal") else {
                throw APIError.invalidRequest("'\(pp).refusal' is required", param: pp + ".refusal")
            }
            if strictKeys { try pf.refuseUnread { "'\(pp).\($0)' is not supported in a refusal content part (only 'type' and 'refusal' are)" } }
            texts.append(refusal)
            continue
        }
        guard types.contains(type) else {
            throw APIError.invalidRequest("Content part type '\(type)' is not supported by this server; only "
                                          + types.sorted().map { "'\($0)'" }.joined(separator: " and ") + " parts are",
                                          param: pp + ".type")
        }
        guard let text = try pf.string("text") else {
            throw APIError.invalidRequest("'\(pp).text' is required", param: pp + ".text")
        }
        if strictKeys { try pf.refuseUnread { "'\(pp).\($0)' is not supported in a text content part (only 'type' and 'text' are)" } }
        texts.append(text)
    }
    return texts
}
