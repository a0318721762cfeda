// The module's error value and the OpenAI error body it renders.
import JSON

/// An error answered to an API client: HTTP status plus the OpenAI error object
/// `{"error":{"message","type","param","code"}}` (OpenAI "Error codes" guide).
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// HTTP status, e.g. 400.
    public var status: Int
    /// Human-readable explanation.
    public var message: String
    /// Error class, e.g. `"invalid_request_error"`, `"server_error"`.
    public var type: String
    /// The offending request field (`"messages"`, `"messages[1].role"`, `"n"`), or nil.
    public var param: String?
    /// Machine-readable code, e.g. `"context_length_exceeded"`, or nil.
    public var code: String?
    /// For `context_length_exceeded`: the counts behind it, tokens (so another API's wording can be rendered).
    public var contextOverflow: ContextOverflow?

    /// The token counts of a context-length refusal.
    public struct ContextOverflow: Sendable, Equatable {
        /// Prompt tokens (for a prompt refused before tokenizing, a lower bound).
        public var promptTokens: Int
        /// Tokens asked for the completion, or nil when the prompt alone is too long.
        public var completionTokens: Int?
        /// The context length.
        public var limit: Int
        /// Whether `promptTokens` is a lower bound (a prompt refused before tokenizing).
        public var lowerBound: Bool = false
    }

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// Human-readable summary for logs and error messages.
    public var description: String {
        "\(status) \(type)\(param.map { " [\($0)]" } ?? ""): \(message)"
    }

    /// 400 `invalid_request_error`.
    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// 404 `invalid_request_error` (unknown route or model; use code `"model_not_found"` for models).
    public static func notFound(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 404, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// 401 `invalid_request_error`, code `"invalid_api_key"`.
    public static func authentication(_ message: String = "Incorrect or missing API key.") -> APIError {
        APIError(status: 401, message: message, type: "invalid_request_error", code: "invalid_api_key")
    }

    /// 429 `rate_limit_error`, code `"rate_limit_exceeded"` (send `Retry-After` with it).
    public static func rateLimited(_ message: String = "Too many requests; retry later.") -> APIError {
        APIError(status: 429, message: message, type: "rate_limit_error", code: "rate_limit_exceeded")
    }

    /// 503 `server_error`, code `"server_overloaded"` (send `Retry-After` with it).
    public static func overloaded(_ message: String = "The server is overloaded; retry later.") -> APIError {
        APIError(status: 503, message: message, type: "server_error", code: "server_overloaded")
    }

    /// 400 `invalid_request_error`, param `promptField` (`"messages"`, or `"prompt"` for /v1/completions), code
    /// `"context_length_exceeded"`.
    /// - Parameters: token counts: `requested` = prompt + max new tokens, `limit` = context length.
    public static func contextLengthExceeded(requested: Int, limit: Int, promptTokens: Int? = nil,
                                             promptField: String = "messages") -> APIError {
        var m = "This model's maximum context length is \(limit) tokens. However, you requested \(requested) tokens"
        if let promptTokens { m += " (\(promptTokens) in the \(promptField), \(requested - promptTokens) in the completion)" }
        m += ". Please reduce the length of the \(promptField) or completion."
        var e = APIError(status: 400, message: m, type: "invalid_request_error", param: promptField, code: "context_length_exceeded")
        if let promptTokens {
            e.contextOverflow = ContextOverflow(promptTokens: promptTokens, completionTokens: requested - promptTokens, limit: limit)
        }
        return e
    }

    /// 400 `context_length_exceeded` for a prompt refused before tokenizing: its text (`bytes` long) is at least
    /// `atLeast` tokens, more than the context's `limit` (callers round up, so `atLeast` > `limit`).
    public static func promptTooLong(atLeast: Int, bytes: Int, limit: Int, promptField: String) -> APIError {
        var e = APIError(status: 400,
                 message: "This model's maximum context length is \(limit) tokens. However, your \(promptField) \(promptField == "messages" ? "are" : "is") at least \(atLeast) tokens long (\(bytes) bytes of text). Please reduce the length of the \(promptField).",
                 type: "invalid_request_error", param: promptField, code: "context_length_exceeded")
        e.contextOverflow = ContextOverflow(promptTokens: atLeast, completionTokens: nil, limit: limit, lowerBound: true)
        return e
    }

    /// 415 `invalid_request_error`, code `"unsupported_media_type"`.
    public static func unsupportedMediaType(_ contentType: String?) -> APIError {
        APIError(status: 415, message: "Unsupported Content-Type '\(contentType ?? "(none)")'; send 'application/json'",
                 type: "invalid_request_error", code: "unsupported_media_type")
    }

    /// Checks a request's `Content-Type` for a JSON body (RFC 9110 §8.3.1: type/subtype case-insensitive,
    /// parameters such as `charset=utf-8` allowed; `application/*+json` accepted).
    /// - Parameters: `value` the header value or nil; with `lenient`, a missing header and
    ///   `application/x-www-form-urlencoded` (what `curl -d` sends) are accepted too.
    /// - Returns: nil when acceptable, else `unsupportedMediaType` (415).
    public static func checkJSONContentType(_ value: String?, lenient: Bool) -> APIError? {
        guard let value else { return lenient ? nil : unsupportedMediaType(nil) }
        let mediaType = value.split(separator: ";", maxSplits: 1).first.map {
            String($0).lowercased().filter { $0 != " " && $0 != "\t" }
        } ?? ""
        if mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) { return nil }
        if lenient && (mediaType == "application/x-www-form-urlencoded" || mediaType == "text/plain" || mediaType.isEmpty) {
            return nil
        }
        return unsupportedMediaType(value)
    }

    /// 500 `server_error`, code `"internal_error"`.
    public static func `internal`(_ message: String = "Internal server error.") -> APIError {
        APIError(status: 500, message: message, type: "server_error", code: "internal_error")
    }

    /// The body object.
    public var body: ErrorBody { ErrorBody(message: message, type: type, param: param, code: code) }

    /// The body as compact JSON bytes.
    public func encoded() -> [UInt8] { body.json.encoded() }
}

/// `{"error":{"message":…,"type":…,"param":…|null,"code":…|null}}` — every key always present.
public struct ErrorBody: Sendable, Equatable {
    /// Human-readable explanation.
    public var message: String
    /// Error class (see `APIError.type`).
    public var type: String
    /// Offending field path, or nil (rendered `null`).
    public var param: String?
    /// Machine-readable code, or nil (rendered `null`).
    public var code: String?

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(message: String, type: String, param: String?, code: String?) {
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue {
        .object([("error", .object([("message", .string(message)), ("type", .string(type)),
                                     ("param", .stringOrNull(param)), ("code", .stringOrNull(code))]))])
    }
}
