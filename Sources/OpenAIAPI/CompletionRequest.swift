// Legacy `POST /v1/completions` (OpenAI "Completions"): request validation and response objects.

/// The `prompt` of a legacy completion request.
public enum CompletionPrompt: Sendable, Equatable {
    /// A string (an array holding one string decodes to this as well).
    case text(String)
    /// Pre-tokenized prompt: token ids.
    case tokens([Int])
}

/// A validated `/v1/completions` request. Sampling fields are readable directly via dynamic member lookup.
/// Only one prompt per request is accepted (like `n`, batching prompts in one request is refused with 400).
@dynamicMemberLookup
public struct CompletionRequest: Sendable, Equatable {
    /// Requested model id, nil when absent (the server picks its default).
    public var model: String?
    /// The prompt text or token ids.
    public var prompt: CompletionPrompt
    /// Sampling and output controls (validated ranges documented on the type).
    public var sampling: SamplingParameters
    /// Whether to prepend the prompt to the returned text.
    public var echo: Bool
    /// Text appended after the completion.
    public var suffix: String?

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(model: String? = nil, prompt: CompletionPrompt, sampling: SamplingParameters = SamplingParameters(),
                echo: Bool = false, suffix: String? = nil) {
        self.model = model
        self.prompt = prompt
        self.sampling = sampling
        self.echo = echo
        self.suffix = suffix
    }

    /// Reads or writes a sampling field directly, e.g. `request.temperature`.
    public subscript<T>(dynamicMember keyPath: WritableKeyPath<SamplingParameters, T>) -> T {
        get { sampling[keyPath: keyPath] }
        set { sampling[keyPath: keyPath] = newValue }
    }

    /// Reads a computed sampling value directly, e.g. `request.effectiveMaxTokens`.
    public subscript<T>(dynamicMember keyPath: KeyPath<SamplingParameters, T>) -> T { sampling[keyPath: keyPath] }

    /// Decodes and validates a request body; failures are 400 `APIError`s naming the field.
    /// `prompt` may be a string, an array of one string, an array of token ids, or an array holding one such array.
    public static func decode(_ body: [UInt8]) -> Result<CompletionRequest, APIError> {
        do throws(APIError) {
            return .success(try parse(JSONValue.parse(body)))
        } catch {
            return .failure(error)
        }
    }

    /// Validates an already-parsed JSON value (see `decode`).
    public static func parse(_ json: JSONValue) throws(APIError) -> CompletionRequest {
        guard case .object = json else {
            throw APIError.invalidRequest("Request body must be a JSON object, got \(json.typeName)")
        }
        let f = FieldReader(json)
        guard let raw = f.raw("prompt") else {
            throw APIError.invalidRequest("'prompt' is a required property", param: "prompt")
        }
        let prompt = try parsePrompt(raw)
        var req = CompletionRequest(prompt: prompt, sampling: try SamplingParameters.read(f, chat: false))
        req.model = try f.string("model")
        req.echo = try f.bool("echo") ?? false
        req.suffix = try f.string("suffix")
        return req
    }

    static func parsePrompt(_ raw: JSONValue) throws(APIError) -> CompletionPrompt {
        let bad = APIError.invalidRequest("'prompt' must be a string, an array of strings or an array of token ids",
                                          param: "prompt")
        switch raw {
        case .string(let s):
            return .text(s)
        case .array(let items):
            guard let first = items.first else {
                throw APIError.invalidRequest("'prompt' must not be empty", param: "prompt")
            }
            switch first {
            case .string, .array:
                guard items.count == 1 else {
                    throw APIError.invalidRequest("Only one prompt per request is supported; got \(items.count)", param: "prompt")
                }
                return try parsePrompt(first)
            case .number:
                var ids: [Int] = []
                for item in items {
                    guard let id = item.intValue, id >= 0 else { throw bad }
                    ids.append(id)
                }
                return .tokens(ids)
            default:
                throw bad
            }
        default:
            throw bad
        }
    }
}

/// Legacy completion reply or stream chunk:
/// `{"id","object":"text_completion","created","model","choices":[{"text","index","logprobs","finish_reason"}],["usage"]}`.
/// In a stream `finish_reason` is `null` until the last chunk, and `usage` follows the chat chunk rules.
public struct CompletionResponse: Sendable, Equatable {
    /// `choices[i]`: `{"text","index","logprobs":null,"finish_reason"}`.
    public struct Choice: Sendable, Equatable {
        /// Position of the choice (always 0 while only `n = 1` is served) or of the tool call.
        public var index: Int
        /// Generated text of this chunk or reply.
        public var text: String
        /// Nil (`null` on the wire) until the final chunk of the choice.
        public var finishReason: FinishReason?

        /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
        public init(index: Int = 0, text: String, finishReason: FinishReason?) {
            self.index = index
            self.text = text
            self.finishReason = finishReason
        }

        /// The wire JSON (shape in the type's doc), members in OpenAI's order.
        public var json: JSONValue {
            .object([("text", .string(text)), ("index", .int(index)), ("logprobs", .null),
                     ("finish_reason", finishReason.map { .string($0.rawValue) } ?? .null)])
        }
    }

    /// `"cmpl-…"`.
    public var id: String
    /// Unix time in seconds; the same in every chunk of a stream.
    public var created: Int
    /// Model id as listed by `/v1/models`.
    public var model: String
    /// Backend configuration fingerprint; the key is omitted when nil.
    public var systemFingerprint: String?
    /// The generated alternatives (one while only `n = 1` is served; empty in a usage chunk).
    public var choices: [Choice]
    /// Required in a non-streamed reply; nil in stream chunks except the final usage chunk.
    public var usage: Usage?
    /// Stream chunks with `include_usage`: render `"usage":null` when `usage` is nil.
    public var includeUsageField: Bool

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(id: String, created: Int, model: String, systemFingerprint: String? = nil, choices: [Choice],
                usage: Usage?, includeUsageField: Bool = false) {
        self.id = id
        self.created = created
        self.model = model
        self.systemFingerprint = systemFingerprint
        self.choices = choices
        self.usage = usage
        self.includeUsageField = includeUsageField
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        var m: [(key: String, value: JSONValue)] = [("id", .string(id)), ("object", .string("text_completion")),
                                                    ("created", .int(created)), ("model", .string(model))]
        if let systemFingerprint { m.append(("system_fingerprint", .string(systemFingerprint))) }
        m.append(("choices", .array(choices.map(\.json))))
        if includeUsageField || usage != nil { m.append(("usage", usage?.json ?? .null)) }
        return .object(m)
    }

    /// Compact JSON as UTF-8 bytes.
    public func encoded() -> [UInt8] { json.encoded() }
}
