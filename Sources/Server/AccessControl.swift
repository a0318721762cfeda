import HTTPServer
import OpenAIAPI

/// The access rules every route shares, in one place: the API key (`--api-key`), CORS (`--allowed-origins`) and
/// the serving phase (loading, ready, draining).
///
/// One key rule: every route needs `Authorization: Bearer <key>` when a key is set, except `/health` (load
/// balancers), `/version` (as vLLM serves it), CORS preflights (browsers send them without credentials, FETCH
/// §3.2.2) and, only with `--metrics-no-auth`, `/metrics`. Unknown paths need the key too (401 before 404: the route table is not
/// disclosed to clients without it).
extension SputnikServer {
    /// The error a request gets before any handler runs, or nil to let it through: 403 for an `Origin` outside
    /// `--allowed-origins`, 401 without the right key on a guarded path, 503 while the model loads or the
    /// server drains (except `/health`, which reports that phase itself, and `/metrics` and `/version`, served in
    /// every phase).
    func admissionError(_ req: HTTPRequest) -> APIError? {
        if let origin = req.headers["origin"], !originAllowed(origin) {
            // The allowed list is the operator's configuration: not told to callers.
            var e = APIError.invalidRequest("Origin '\(origin)' is not allowed by this server's --allowed-origins",
                                            code: "origin_not_allowed")
            e.status = 403
            return e
        }
        if req.method == "OPTIONS" { return nil }
        if !router.open.contains(req.path), let keys = apiKeys, !Self.authorized(req, keys) {
            return APIError.authentication("Invalid or missing API key. Send 'Authorization: Bearer <key>' or 'x-api-key: <key>'.")
        }
        if !Self.everyPhasePaths.contains(req.path) {
            switch phase {
            case .loading: return APIError.overloaded("Loading model; retry when /health answers 200.")
            case .draining:
                // The code every other refusal at shutdown carries (queued and aborted requests; helper-70).
                var e = APIError.overloaded("The server is shutting down; retry on another replica.")
                e.code = "server_shutting_down"
                return e
            case .ready: break
            }
        }
        return nil
    }

    /// The routes answered in every phase, at both of their paths: `/health` (it reports the phase), `/version` and
    /// `/metrics` (`/v1/metrics` answered 503 while loading where `/metrics` answered 200).
    static let everyPhasePaths: Set<String> = ["/health", "/v1/health", "/version", "/v1/version", "/metrics", "/v1/metrics"]

    /// The `Expect: 100-continue` hook: the same admission rules and the 404 / 405 of a request no route serves,
    /// decided from the head before the body is invited, as `(status, headers, body)`; nil sends `100 Continue`.
    func expectationAnswer(_ req: HTTPRequest) -> (Int, [(String, String)], [UInt8])? {
        let refusal: (APIError, [(String, String)])?
        if let e = admissionError(req) { refusal = (e, []) } else { refusal = req.method == "OPTIONS" ? nil : unroutedError(req) }  // 404 / 405 too
        guard let (e, extra) = refusal else { return nil }
        var headers = [("Content-Type", "application/json")] + corsHeaders(req) + Self.errorFields(e) + extra
        headers += Self.idFields(logUnrouted(status: e.status, request: req), path: req.path)
        return (e.status, headers, Self.isAnthropicPath(req.path) ? AnthropicError(e).encoded() : e.encoded())
    }

    /// `Authorization: Bearer <key>` (scheme case-insensitive, RFC 9110 §11.1) or Anthropic's `x-api-key: <key>`
    /// with one of `keys`, each compared in constant time.
    static func authorized(_ req: HTTPRequest, _ keys: [String]) -> Bool {
        let sent: Substring
        if let h = req.headers["authorization"] {
            let parts = h.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
            sent = parts[1]
        } else if let x = req.headers["x-api-key"] {
            sent = Substring(x)
        } else {
            return false
        }
        let a = Array(sent.utf8)
        var match = false
        for key in keys {
            let b = Array(key.utf8)
            var diff = a.count ^ b.count
            for i in 0..<min(a.count, b.count) { diff |= Int(a[i] ^ b[i]) }
            match = match || diff == 0
        }
        return match
    }

    /// True when `--allowed-origins` is `*` or lists `origin`, both sides compared as browsers serialise origins
    /// (`ServerOptions.serializedOrigin`: `HTTPS://App.Example:443` in the list allows `https://app.example`, and a
    /// non-browser client's `Origin: HTTPS://APP.example` matches too).
    func originAllowed(_ origin: String) -> Bool {
        allowedOrigins.contains("*") || allowedOrigins.contains(origin) || allowedOrigins.contains(ServerOptions.serializedOrigin(origin))
    }

    /// The CORS fields of every response to `req`: `Access-Control-Allow-Origin: *` by default; with a list,
    /// the request's own origin when it is listed, and always `Vary: Origin` (the answer depends on it).
    func corsHeaders(_ req: HTTPRequest) -> [(String, String)] {
        if options.allowedOrigins.contains("*") { return [("Access-Control-Allow-Origin", "*")] }
        var h: [(String, String)] = [("Vary", "Origin")]
        if let origin = req.headers["origin"], originAllowed(origin) { h.append(("Access-Control-Allow-Origin", origin)) }
        return h
    }

    /// 204 to a CORS preflight (no key needed): the methods the routes serve and the request headers asked for;
    /// with its `X-Request-Id` and access-log line, as every response.
    func sendCORSPreflight(_ res: HTTPResponder) {
        let asked = res.request.headers["access-control-request-headers"].map { ", " + $0 } ?? ""
        send(res, 204, [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, x-api-key, anthropic-version" + asked),
            ("Access-Control-Max-Age", "86400"),
        ], [])
    }
}

/// Where the server is in its life: `/health` answers 503 `{"status":"loading"}` / `{"status":"draining"}`
/// outside `ready`, and the other routes answer 503 then.
public enum ServingPhase: Sendable, Equatable {
    /// Listening; the model is not loaded yet.
    case loading
    /// Serving requests.
    case ready
    /// SIGTERM received: running requests finish, new ones are refused.
    case draining
}
