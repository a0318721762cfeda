// Typed, range-checked reads of request fields with OpenAI-style 400 errors naming the field.
import JSON

/// Reads fields of one JSON object; `null` counts as absent. Every failure is a 400 `APIError` whose `param` is
/// the field's path (`prefix` + key). Every key looked up is remembered, so a parser can refuse, at its end, the keys
/// it never looked at (`refuseUnread`): a field is read (honoured, or refused by name) or it is an error.
struct FieldReader {
    let value: JSONValue
    let prefix: String
    /// The keys looked up so far (shared by copies of this reader).
    private let consulted = ConsultedKeys()

    private final class ConsultedKeys { var keys: Set<String> = [] }

    init(_ value: JSONValue, prefix: String = "") {
        self.value = value
        self.prefix = prefix
    }

    func path(_ key: String) -> String { prefix + key }

    func raw(_ key: String) -> JSONValue? {
        consulted.keys.insert(key)
        guard let v = value[key], !v.isNull else { return nil }
        return v
    }

    /// Refuses the first member of the object that no read has looked up, as OpenAI answers an unrecognized
    /// argument ("Unrecognized request argument supplied: x") and Anthropic an extra input: a field this server
    /// does not know is never accepted and dropped (`null`, as everywhere, counts as absent). Call it after the
    /// parser's last read.
    /// - Parameter message: the error text for the unread key.
    /// - Throws: `APIError` 400 whose `param` is the key's path.
    func refuseUnread(_ message: (String) -> String) throws(APIError) {
        guard case .object(let members) = value,
              let key = members.first(where: { !$0.value.isNull && !consulted.keys.contains($0.key) })?.key else { return }
        throw APIError.invalidRequest(message(key), param: path(key))
    }

    func typeError(_ key: String, _ expected: String, _ got: JSONValue) -> APIError {
        .invalidRequest("'\(path(key))' must be \(expected), got \(got.typeName)", param: path(key))
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let v = raw(key) else { return nil }
        guard let s = v.stringValue else { throw typeError(key, "a string", v) }
        return s
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = raw(key) else { return nil }
        guard let b = v.boolValue else { throw typeError(key, "a boolean", v) }
        return b
    }

    /// An integral number in `[min, max]`. The default range is that of a 32-bit signed integer: every count a
    /// client sends is bounded at this edge, so arithmetic on it past validation cannot overflow. A number that is
    /// not integral (`1.5`), out of range (`2^63`, `1e308`, a 40-digit literal) or not a number (`"10"`) is a 400
    /// naming the field; `null` counts as absent.
    func int(_ key: String, min: Int = Int(Int32.min), max: Int = Int(Int32.max)) throws(APIError) -> Int? {
        guard let v = raw(key) else { return nil }
        guard case .number = v else { throw typeError(key, "an integer", v) }
        guard let i = v.intValue else {
            // A whole number too large for 64 bits is out of range, not "not an integer".
            if let d = v.doubleValue, d.isFinite, d == d.rounded() {
                throw APIError.invalidRequest("'\(path(key))' must be \(d < 0 ? ">= \(min)" : "<= \(max)"), got \(v)",
                                              param: path(key))
            }
            throw APIError.invalidRequest("'\(path(key))' must be an integer, got \(v)", param: path(key))
        }
        if i < min { throw APIError.invalidRequest("'\(path(key))' must be >= \(min), got \(i)", param: path(key)) }
        if i > max { throw APIError.invalidRequest("'\(path(key))' must be <= \(max), got \(i)", param: path(key)) }
        return i
    }

    /// A number in `[lower, upper]` (or `(lower, upper]` when `lowerOpen`).
    func double(_ key: String, lower: Double? = nil, upper: Double? = nil, lowerOpen: Bool = false) throws(APIError) -> Double? {
        guard let v = raw(key) else { return nil }
        guard let d = v.doubleValue else { throw typeError(key, "a number", v) }
        guard d.isFinite else {   // 1e999 parses as a JSON number but not as a finite double
            throw APIError.invalidRequest("'\(path(key))' must be a finite number, got \(v)", param: path(key))
        }
        if let lower, lowerOpen ? d <= lower : d < lower {
            throw APIError.invalidRequest("'\(path(key))' must be \(lowerOpen ? ">" : ">=") \(JSONValue.double(lower)), got \(v)",
                                          param: path(key))
        }
        if let upper, d > upper {
            throw APIError.invalidRequest("'\(path(key))' must be <= \(JSONValue.double(upper)), got \(v)", param: path(key))
        }
        return d
    }

    func array(_ key: String) throws(APIError) -> [JSONValue]? {
        guard let v = raw(key) else { return nil }
        guard let a = v.arrayValue else { throw typeError(key, "an array", v) }
        return a
    }

    func object(_ key: String) throws(APIError) -> JSONValue? {
        guard let v = raw(key) else { return nil }
        guard case .object = v else { throw typeError(key, "an object", v) }
        return v
    }

    /// OpenAI's `metadata`: an object of at most 16 string values (keys ≤ 64 characters, values ≤ 512), or nil.
    /// - Throws: `APIError` 400 naming `metadata` for any other shape.
    func metadata() throws(APIError) -> JSONValue? {
        guard let m = try object("metadata") else { return nil }
        let pairs = m.objectValue ?? []
        guard pairs.count <= 16,
              pairs.allSatisfy({ $0.key.count <= 64 && ($0.value.stringValue?.count ?? .max) <= 512 }) else {
            throw APIError.invalidRequest("'\(path("metadata"))' must be an object of at most 16 string values "
                                          + "(keys up to 64 characters, values up to 512)", param: path("metadata"))
        }
        return m
    }
}

/// Sampling and output controls shared by `/v1/chat/completions` and `/v1/completions`.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature in [0, 2]; 0 means greedy.
    public var temperature: Double?
    /// Nucleus mass in (0, 1].
    public var topP: Double?
    /// Keep the k most likely tokens; ≤ 0 disables (vLLM convention: -1).
    public var topK: Int?
    /// Minimum probability relative to the top token, in [0, 1].
    public var minP: Double?
    /// OpenAI presence / frequency penalties in [-2, 2].
    public var presencePenalty: Double?
    /// See `presencePenalty`: OpenAI frequency penalty in [-2, 2].
    public var frequencyPenalty: Double?
    /// Multiplicative repetition penalty (> 0; 1 = off; llama.cpp / HF convention).
    public var repetitionPenalty: Double?
    /// `max_tokens` (≥ 1) as sent.
    public var maxTokens: Int?
    /// `max_completion_tokens` (≥ 1) as sent; wins over `maxTokens`.
    public var maxCompletionTokens: Int?
    /// Stop strings (0…4, each non-empty: an empty one is a 400 naming `stop`); the returned text excludes them.
    public var stop: [String] = []
    /// Sampler seed (nil: random; `-1` is read as nil, as llama-server and vLLM do).
    public var seed: Int?
    /// `stream`: answer with server-sent events.
    public var stream = false
    /// `stream_options.include_usage`: send a final chunk with `usage` and empty `choices`.
    public var includeUsage = false
    /// `stream_options.continuous_usage_stats` (vLLM's): every streamed chunk carries the running `usage` — the
    /// prompt's tokens, the tokens generated so far (all choices) and their sum — not only the final usage chunk.
    public var continuousUsage = false
    /// Whether per-token log-probabilities are returned (chat: `logprobs` true; legacy completions: `logprobs` sent).
    public var logprobs = false
    /// Alternatives per position, 0…20.
    public var topLogprobs: Int?
    /// `n`: independent choices of the same prompt, 1…`maxN` (the server bounds it further: `--max-num-seqs`, 16).
    public var n = 1
    /// Largest `n` a request may carry at all.
    public static let maxN = 128
    /// End-user id (`user`; chat also `safety_identifier`): written to the request's access-log line.
    public var user: String?
    /// Scheduling priority (lower = sooner, vLLM convention), in `-priorityBound...priorityBound`. Honoured only when
    /// the server runs `--scheduling-policy priority`; under the default `fcfs` a non-zero value is refused (as vLLM does).
    public var priority: Int?
    /// Largest magnitude of `priority` a client may send.
    public static let priorityBound = 100
    /// Keep generating past end-of-generation tokens (vLLM's `ignore_eos`; benchmarks use it).
    public var ignoreEOS = false
    /// `cache_prompt` (llama-server's extra; null or absent: true): the prompt may start from the prefix cache; false
    /// computes it all anew.
    public var cachePrompt = true
    /// `logit_bias`: token id → bias in [-100, 100] added to its logit (-100 bans it). Keys are checked against the
    /// vocabulary by the server (ids outside it are a 400 naming `logit_bias`).
    public var logitBias: [Int: Double] = [:]
    /// `min_tokens` (vLLM extra, ≥ 0): end-of-generation tokens, `stop_token_ids` and stop strings cannot end the
    /// output before this many tokens; at most `max_tokens`.
    public var minTokens: Int?
    /// `stop_token_ids` (vLLM extra): token ids that end generation like an end-of-generation token (not emitted).
    public var stopTokenIds: [Int] = []

    /// Defaults as documented on each property.
    public init() {}

    /// Completion token cap requested by the client: `max_completion_tokens` ?? `max_tokens`.
    public var effectiveMaxTokens: Int? { maxCompletionTokens ?? maxTokens }

    /// Fields other servers (llama-server, vLLM, OpenAI) give a meaning that this server does not implement. Sent
    /// with a value other than null they are refused with a 400 naming them, never accepted and ignored — except at
    /// their `neutral` values, which ask for what this server does anyway (llama-server's `typical_p: 1` turns the
    /// sampler off; vLLM's `skip_special_tokens: true` and `include_stop_str_in_output: false` are its defaults and
    /// this server's behaviour): UIs that send every llama-server / vLLM field at its default are served (helper-63).
    static let unsupportedFields: [(name: String, hint: String, neutral: [JSONValue])] = [
        ("guided_json", "use response_format {\"type\":\"json_schema\"}", []),
        ("guided_regex", "use a json_schema string pattern in response_format", []),
        ("guided_choice", "use response_format with an enum schema", []),
        ("guided_grammar", "use response_format", []),
        ("json_schema", "use response_format {\"type\":\"json_schema\",\"json_schema\":{\"schema\":…}}", []),
        ("grammar", "use response_format", []),
        ("typical_p", "not implemented", [.int(1)]), ("tfs_z", "not implemented", [.int(1)]),
        ("mirostat", "not implemented", [.int(0)]),
        ("repeat_penalty", "use repetition_penalty", [.int(1)]),
        ("dry_multiplier", "not implemented", [.int(0)]), ("xtc_probability", "not implemented", [.int(0)]),
        ("dynatemp_range", "not implemented", [.int(0)]), ("typ_p", "not implemented", [.int(1)]),
        ("n_predict", "use max_tokens", []), ("n_probs", "use logprobs/top_logprobs", [.int(0)]),
        ("include_stop_str_in_output", "not implemented", [.bool(false)]),
        ("skip_special_tokens", "not implemented", [.bool(true)]),
        ("spaces_between_special_tokens", "not implemented", [.bool(true)]),
        ("use_beam_search", "not implemented", [.bool(false)]), ("length_penalty", "not implemented", []),
        ("truncate_prompt_tokens", "not implemented", []),
        ("add_generation_prompt", "not implemented", [.bool(true)]),
        ("add_special_tokens", "not implemented", []), ("documents", "not implemented", []),
        ("functions", "use tools", []), ("function_call", "use tool_choice", []),
        ("audio", "text only", []), ("prediction", "not implemented", []),
        ("web_search_options", "not implemented", []), ("verbosity", "not implemented", [.string("medium")]),
    ]

    /// The windows the penalties here take (vLLM's): no window of the last n tokens.
    static let penaltyWindows = "no window of the last n tokens: repetition_penalty covers prompt and output, "
        + "frequency_penalty and presence_penalty the output"

    /// Settings of a sampler that only act when its main field turns it on (llama-server's `mirostat_tau` with
    /// `mirostat`, `dry_base` with `dry_multiplier`, `repeat_last_n` with any of the three penalties…): accepted,
    /// whatever their value, while every main field is absent, null or neutral (UIs send them all at llama-server's
    /// defaults); otherwise refused with the hint (helper-65).
    static let companionFields: [(name: String, mains: [String], hint: String)] = [
        ("mirostat_tau", ["mirostat"], "not implemented"), ("mirostat_eta", ["mirostat"], "not implemented"),
        ("xtc_threshold", ["xtc_probability"], "not implemented"),
        ("dry_base", ["dry_multiplier"], "not implemented"), ("dry_allowed_length", ["dry_multiplier"], "not implemented"),
        ("dry_penalty_last_n", ["dry_multiplier"], "not implemented"),
        ("dry_sequence_breakers", ["dry_multiplier"], "not implemented"),
        // llama.cpp's one window for all three penalties (helper-73: beside frequency / presence it was ignored).
        ("repeat_last_n", ["repeat_penalty", "repetition_penalty", "frequency_penalty", "presence_penalty"], penaltyWindows),
        ("penalty_last_n", ["repeat_penalty", "repetition_penalty", "frequency_penalty", "presence_penalty"], penaltyWindows),
        ("dynatemp_exponent", ["dynatemp_range"], "not implemented"),
    ]

    /// True when `value` is one of `neutral` (numbers compared by value: `1`, `1.0` and `1e0` are the same).
    static func isNeutral(_ value: JSONValue, _ neutral: [JSONValue]) -> Bool {
        neutral.contains { n in
            if let a = n.doubleValue, let b = value.doubleValue { return a == b }
            return n == value
        }
    }

    /// Reads and range-checks the shared fields of a request object.
    /// - Parameter leastMaxTokens: the smallest `max_tokens` accepted (0 for `/v1/completions` with `echo`).
    static func read(_ f: FieldReader, chat: Bool, leastMaxTokens: Int = 1) throws(APIError) -> SamplingParameters {
        for (name, hint, neutral) in unsupportedFields {
            // `add_generation_prompt: false` is what vLLM requires beside `continue_final_message` (read there).
            if chat && name == "add_generation_prompt" && f.raw(name) == .bool(false)
                && f.raw("continue_final_message") == .bool(true) {
                continue
            }
            if let v = f.raw(name), !v.isNull, !isNeutral(v, neutral) {
                throw APIError.invalidRequest("'\(name)' is not supported by this server (\(hint))", param: name)
            }
        }
        for (name, mains, hint) in companionFields {
            guard let v = f.raw(name), !v.isNull else { continue }
            let on = mains.contains { main in
                guard let m = f.raw(main), !m.isNull else { return false }
                let neutral = main == "repetition_penalty" ? [JSONValue.int(1)]
                    : main == "frequency_penalty" || main == "presence_penalty" ? [JSONValue.int(0)]
                    : unsupportedFields.first { $0.name == main }?.neutral ?? []
                return !isNeutral(m, neutral)
            }
            if on { throw APIError.invalidRequest("'\(name)' is not supported by this server (\(hint))", param: name) }
        }
        if chat {
            for (name, neutral) in [("echo", JSONValue.bool(false)), ("best_of", .int(1)), ("suffix", .null)] {
                if let v = f.raw(name), !v.isNull, !isNeutral(v, [neutral]) {
                    throw APIError.invalidRequest("'\(name)' belongs to /v1/completions; chat completions do not take it", param: name)
                }
            }
            if let v = f.raw("store"), v != .bool(false), !v.isNull {
                throw APIError.invalidRequest("'store' is not supported: this server stores nothing", param: "store")
            }
        } else {
            if let v = f.raw("top_logprobs"), !v.isNull {
                throw APIError.invalidRequest("'top_logprobs' is a chat field; /v1/completions takes 'logprobs': N", param: "top_logprobs")
            }
            if let v = f.raw("response_format"), !v.isNull {
                throw APIError.invalidRequest("'response_format' is supported on /v1/chat/completions, not on /v1/completions",
                                              param: "response_format")
            }
        }
        var s = SamplingParameters()
        s.temperature = try f.double("temperature", lower: 0, upper: 2)
        s.topP = try f.double("top_p", lower: 0, upper: 1)
        s.topK = try f.int("top_k", min: -1)
        s.minP = try f.double("min_p", lower: 0, upper: 1)
        s.presencePenalty = try f.double("presence_penalty", lower: -2, upper: 2)
        s.frequencyPenalty = try f.double("frequency_penalty", lower: -2, upper: 2)
        s.repetitionPenalty = try f.double("repetition_penalty", lower: 0, lowerOpen: true)
        s.maxTokens = try f.int("max_tokens", min: leastMaxTokens)
        s.maxCompletionTokens = try f.int("max_completion_tokens", min: 1)
        if let stop = f.raw("stop") {
            switch stop {
            // An empty sequence would match before the first token; refused rather than dropped unseen.
            case .string(let str):
                guard !str.isEmpty else { throw APIError.invalidRequest("'stop' must not be an empty string", param: "stop") }
                s.stop = [str]
            case .array(let items):
                guard items.count <= 4 else {
                    throw APIError.invalidRequest("'stop' may hold at most 4 sequences, got \(items.count)", param: "stop")
                }
                for (i, item) in items.enumerated() {
                    guard let str = item.stringValue else {
                        throw APIError.invalidRequest("'stop' must be a string or an array of strings", param: "stop")
                    }
                    guard !str.isEmpty else {
                        throw APIError.invalidRequest("'stop[\(i)]' must not be an empty string", param: "stop")
                    }
                    s.stop.append(str)
                }
            default:
                throw APIError.invalidRequest("'stop' must be a string or an array of strings, got \(stop.typeName)", param: "stop")
            }
        }
        s.seed = try f.int("seed", min: Int(Int64.min), max: Int(Int64.max))
        if s.seed == -1 { s.seed = nil }   // -1 asks for a random seed (llama-server's default; vLLM reads it so too)
        s.stream = try f.bool("stream") ?? false
        if let opts = try f.object("stream_options") {
            guard s.stream else {
                throw APIError.invalidRequest("'stream_options' is only allowed when 'stream' is true", param: "stream_options")
            }
            let o = FieldReader(opts, prefix: "stream_options.")
            s.includeUsage = try o.bool("include_usage") ?? false
            s.continuousUsage = try o.bool("continuous_usage_stats") ?? false
            // OpenAI's obfuscation pads each chunk against length side channels; false (no padding) is what this
            // server does, true cannot be honoured.
            if try o.bool("include_obfuscation") == true {
                throw APIError.invalidRequest("'stream_options.include_obfuscation' true is not supported by this server (no padding is added)",
                                              param: "stream_options.include_obfuscation")
            }
            try o.refuseUnread { "Unrecognized stream option: stream_options.\($0)" }
        }
        if chat {
            // `modalities: ["text"]` is OpenAI's default; any other output modality is refused.
            if let m = try f.array("modalities"), m != [.string("text")] {
                throw APIError.invalidRequest("'modalities' supports only [\"text\"] on this server", param: "modalities")
            }
            s.logprobs = try f.bool("logprobs") ?? false
            s.topLogprobs = try f.int("top_logprobs", min: 0, max: 20)
            if s.topLogprobs != nil && !s.logprobs {
                throw APIError.invalidRequest("'top_logprobs' requires 'logprobs' to be true", param: "top_logprobs")
            }
        } else if let lp = try f.int("logprobs", min: 0, max: 20) {
            // Legacy completions: 0 still reports the chosen tokens' log-probabilities, with no alternatives (vLLM).
            s.logprobs = true
            s.topLogprobs = lp
        }
        s.n = try f.int("n", min: 1, max: SamplingParameters.maxN) ?? 1
        s.user = try f.string("user")
        s.priority = try f.int("priority", min: -SamplingParameters.priorityBound, max: SamplingParameters.priorityBound)
        s.ignoreEOS = try f.bool("ignore_eos") ?? false
        s.cachePrompt = try f.bool("cache_prompt") ?? true
        if let bias = try f.object("logit_bias") {
            guard case .object(let members) = bias else { return s }
            for (key, value) in members {
                guard let id = Int(key), id >= 0, String(id) == key else {
                    throw APIError.invalidRequest("'logit_bias' keys must be token ids (non-negative integers as strings), got '\(key)'",
                                                  param: "logit_bias")
                }
                guard let b = value.doubleValue, b.isFinite, b >= -100, b <= 100 else {
                    throw APIError.invalidRequest("'logit_bias' values must be numbers in [-100, 100], got \(value) for token \(key)",
                                                  param: "logit_bias")
                }
                s.logitBias[id] = b
            }
        }
        s.minTokens = try f.int("min_tokens", min: 0)
        if let m = s.minTokens, let cap = s.effectiveMaxTokens, m > cap {
            throw APIError.invalidRequest("'min_tokens' (\(m)) must be at most 'max_tokens' (\(cap))", param: "min_tokens")
        }
        if let ids = try f.array("stop_token_ids") {
            for (i, v) in ids.enumerated() {
                guard case .number = v, let id = v.intValue, id >= 0, id <= Int(Int32.max) else {
                    throw APIError.invalidRequest("'stop_token_ids[\(i)]' must be a non-negative integer token id, got \(v)",
                                                  param: "stop_token_ids")
                }
                s.stopTokenIds.append(id)
            }
        }
        return s
    }
}
