// Response objects of `/v1/completions` (OpenAI "The completion object"; streamed chunks have the same shape),
// encoded by hand so member order is fixed and every `null` OpenAI sends is present.
import JSON

/// The legacy per-token log-probabilities of one choice, four parallel arrays (one entry per token):
/// `{"tokens":[String],"token_logprobs":[Number|null],"top_logprobs":[{String:Number}|null],"text_offset":[Int]}`.
/// A `null` log-probability marks the first prompt token under `echo` (nothing precedes it).
public struct CompletionLogprobs: Sendable, Equatable {
    /// Each token's text (a partial UTF-8 character renders as U+FFFD).
    public var tokens: [String] = []
    /// Natural-log probability of each token (≤ 0), or nil.
    public var tokenLogprobs: [Double?] = []
    /// The alternatives at each position, most likely first, as (token text, logprob); nil renders `null`.
    /// Rendered as one JSON object per position; a text seen twice keeps its first (more likely) value.
    public var topLogprobs: [[(String, Double)]?] = []
    /// Offset of each token in the choice's `text`, in Unicode scalars.
    public var textOffset: [Int] = []

    /// Empty arrays.
    public init() {}

    public static func == (a: CompletionLogprobs, b: CompletionLogprobs) -> Bool {
        a.tokens == b.tokens && a.tokenLogprobs == b.tokenLogprobs && a.textOffset == b.textOffset
            && a.topLogprobs.count == b.topLogprobs.count
            && zip(a.topLogprobs, b.topLogprobs).allSatisfy { x, y in
                x?.map(\.0) == y?.map(\.0) && x?.map(\.1) == y?.map(\.1)
            }
    }

    /// Appends one token's entry. The token itself joins its alternatives when they do not hold it already: OpenAI
    /// "will always return the logprob of the sampled token, so there may be up to logprobs+1 elements" (vLLM too;
    /// lm-evaluation-harness reads it there).
    public mutating func append(token: String, logprob: Double?, top: [(String, Double)]?, offset: Int) {
        tokens.append(token)
        tokenLogprobs.append(logprob)
        var top = top
        if let lp = logprob, top != nil, !top!.contains(where: { $0.0 == token }) { top!.append((token, lp)) }
        topLogprobs.append(top)
        textOffset.append(offset)
    }

    /// The wire JSON (shape in the type's doc).
    public var json: JSONValue {
        .object([
            ("tokens", .array(tokens.map { .string($0) })),
            ("token_logprobs", .array(tokenLogprobs.map { $0.map { .double($0) } ?? .null })),
            ("top_logprobs", .array(topLogprobs.map { top -> JSONValue in
                guard let top else { return .null }
                var seen: Set<String> = []
                return .object(top.compactMap { t, lp -> (key: String, value: JSONValue)? in
                    seen.insert(t).inserted ? (key: t, value: .double(lp)) : nil
                })
            })),
            ("text_offset", .array(textOffset.map { .int($0) })),
        ])
    }
}

/// A completion reply or one streamed chunk:
/// `{"id":"cmpl-…","object":"text_completion","created","model","choices":[{"text","index","logprobs","finish_reason"}],["usage"]}`.
public struct CompletionResponse: Sendable, Equatable {
    /// `choices[i]`; `finish_reason` is `null` in stream chunks until the choice's last.
    public struct Choice: Sendable, Equatable {
        public var text: String
        /// The prompt's position in `prompt`.
        public var index: Int
        /// nil renders `"logprobs":null`.
        public var logprobs: CompletionLogprobs?
        public var finishReason: FinishReason?

        /// Memberwise initializer; field meanings as documented on the properties.
        public init(text: String, index: Int, logprobs: CompletionLogprobs? = nil, finishReason: FinishReason? = nil) {
            self.text = text
            self.index = index
            self.logprobs = logprobs
            self.finishReason = finishReason
        }

        /// The wire JSON, members in OpenAI's order.
        public var json: JSONValue {
            .object([("text", .string(text)), ("index", .int(index)), ("logprobs", logprobs?.json ?? .null),
                     ("finish_reason", finishReason.map { .string($0.rawValue) } ?? .null)])
        }
    }

    /// `"cmpl-…"`, the same in every chunk of a stream.
    public var id: String
    /// Unix time in seconds.
    public var created: Int
    /// Model id as listed by `/v1/models`.
    public var model: String
    /// The choices (empty in the final usage chunk of a stream).
    public var choices: [Choice]
    /// Token totals over all choices; nil omits the key (stream chunks) unless `includeUsageField`. In stream chunks
    /// of a request with `stream_options.continuous_usage_stats`, the running counts (`Usage.running`).
    public var usage: Usage?
    /// Stream chunks of a request with `stream_options.include_usage`: every chunk carries `"usage"` (`null` unless
    /// `usage` is set: the last chunk, or every chunk with `continuous_usage_stats`).
    public var includeUsageField: Bool

    /// Memberwise initializer; field meanings as documented on the properties.
    public init(id: String, created: Int, model: String, choices: [Choice], usage: Usage? = nil,
                includeUsageField: Bool = false) {
        self.id = id
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.includeUsageField = includeUsageField
    }

    /// The wire JSON, members in OpenAI's order.
    public var json: JSONValue {
        var m: [(key: String, value: JSONValue)] = [("id", .string(id)), ("object", .string("text_completion")),
                                                    ("created", .int(created)), ("model", .string(model)),
                                                    ("choices", .array(choices.map(\.json)))]
        if includeUsageField || usage != nil { m.append(("usage", usage?.json ?? .null)) }
        return .object(m)
    }

    /// Compact JSON bytes.
    public func encoded() -> [UInt8] { json.encoded() }
    /// Compact JSON text (the payload of one SSE `data:` line).
    public func serialized() -> String { json.serialized() }
}
