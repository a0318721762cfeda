// `POST /v1/completions` request body: types and validation (OpenAI "Create completion", the legacy text API).
import JSON

/// One prompt of a completion request: text, or token ids used as they are.
public enum CompletionPrompt: Sendable, Equatable {
    case text(String)
    /// Token ids (checked against the vocabulary by the server). `[numTokens]`
    case tokens([Int])
}

/// A validated `/v1/completions` request. Each prompt is its own choice (`index` = its position).
public struct CompletionRequest: Sendable, Equatable {
    /// Requested model id (nil when absent).
    public var model: String?
    /// `prompt`: a string, a list of strings, a list of token ids, or a list of such lists; at least one.
    public var prompts: [CompletionPrompt]
    /// `suffix`: text after the insertion point (fill-in-the-middle; only models with FIM tokens accept it).
    public var suffix: String?
    /// `echo`: the choice's text starts with its prompt.
    public var echo: Bool
    /// `echo` with `max_tokens: 0`: the answer is the prompt alone, nothing generated.
    public var echoOnly: Bool { echo && sampling.effectiveMaxTokens == 0 }
    /// Sampling and output controls; `max_tokens` defaults to 16 as OpenAI's; `logprobs` N (0…20) asks for the
    /// chosen token's log-probability and N alternatives per position.
    public var sampling: SamplingParameters

    /// Most prompts one request may carry (each is a choice generated concurrently).
    public static let maxPrompts = 16
    /// `max_tokens` when the request does not say (OpenAI's default for this endpoint).
    public static let defaultMaxTokens = 16

    /// Memberwise initializer; field meanings as documented on the properties.
    public init(model: String? = nil, prompts: [CompletionPrompt], suffix: String? = nil, echo: Bool = false,
                sampling: SamplingParameters = SamplingParameters()) {
        self.model = model
        self.prompts = prompts
        self.suffix = suffix
        self.echo = echo
        self.sampling = sampling
    }

    /// Decodes and validates a request body (UTF-8 JSON object).
    /// - Returns: the request, or a 400 `APIError` naming the offending field in `param`.
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
        guard let raw = f.raw("prompt") else { throw APIError.invalidRequest("'prompt' is a required property", param: "prompt") }
        var req = CompletionRequest(prompts: try parsePrompts(raw))
        req.model = try f.string("model")
        req.suffix = try f.string("suffix")
        req.echo = try f.bool("echo") ?? false
        // `echo` with `max_tokens: 0` answers the prompt alone (with its log-probabilities when asked): vLLM's
        // echo without generation, what lm-evaluation-harness sends to score a text's log-likelihood.
        req.sampling = try SamplingParameters.read(f, chat: false, leastMaxTokens: req.echo ? 0 : 1)
        if req.sampling.maxTokens == nil { req.sampling.maxTokens = defaultMaxTokens }
        if let m = req.sampling.minTokens, m > req.sampling.effectiveMaxTokens ?? Int.max {
            throw APIError.invalidRequest("'min_tokens' (\(m)) must be at most 'max_tokens' (\(req.sampling.maxTokens!))",
                                          param: "min_tokens")
        }
        if let bestOf = try f.int("best_of", min: 1), bestOf != 1 {
            throw APIError.invalidRequest("Only best_of=1 is supported; got best_of=\(bestOf)", param: "best_of")
        }
        if req.echo && req.suffix == "" { req.suffix = nil }   // an empty suffix is none
        if req.echo && req.suffix != nil {
            throw APIError.invalidRequest("'echo' and 'suffix' cannot be used together", param: "suffix")
        }
        try f.refuseUnread { "Unrecognized request argument supplied: \($0)" }
        return req
    }

    /// `prompt` in its four shapes.
    static func parsePrompts(_ raw: JSONValue) throws(APIError) -> [CompletionPrompt] {
        let shapes = "a string, an array of strings, an array of token ids or an array of token-id arrays"
        if let s = raw.stringValue { return [.text(s)] }
        guard let items = raw.arrayValue else {
            throw APIError.invalidRequest("'prompt' must be \(shapes), got \(raw.typeName)", param: "prompt")
        }
        guard !items.isEmpty else { throw APIError.invalidRequest("'prompt' must not be empty", param: "prompt") }
        if case .number = items[0] { return [.tokens(try tokenIds(items, path: "prompt"))] }
        guard items.count <= maxPrompts else {
            throw APIError.invalidRequest("'prompt' may hold at most \(maxPrompts) prompts, got \(items.count)", param: "prompt")
        }
        var prompts: [CompletionPrompt] = []
        for (i, item) in items.enumerated() {
            switch item {
            case .string(let s): prompts.append(.text(s))
            case .array(let ids):
                guard !ids.isEmpty else { throw APIError.invalidRequest("'prompt[\(i)]' must not be empty", param: "prompt") }
                prompts.append(.tokens(try tokenIds(ids, path: "prompt[\(i)]")))
            default:
                throw APIError.invalidRequest("'prompt[\(i)]' must be a string or an array of token ids; 'prompt' must be \(shapes)",
                                              param: "prompt")
            }
        }
        return prompts
    }

    private static func tokenIds(_ items: [JSONValue], path: String) throws(APIError) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(items.count)
        for (j, v) in items.enumerated() {
            guard case .number = v, let id = v.intValue, id >= 0, id <= Int(Int32.max) else {
                throw APIError.invalidRequest("'\(path)[\(j)]' must be a non-negative integer token id, got \(v)", param: "prompt")
            }
            ids.append(id)
        }
        return ids
    }
}
