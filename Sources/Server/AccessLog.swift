import Foundation
import HTTPServer
import Logging

/// One request on its way through the server, for its `X-Request-Id` and its access-log line.
final class Exchange: @unchecked Sendable {
    /// The client's `X-Request-Id` when it is a plausible id, else one made here (`req-` + 24 characters).
    let id: String
    let method: String
    let route: String
    let start = DispatchTime.now()
    weak var responder: HTTPResponder?
    private let lock = NSLock()
    private var _status = 0
    private var _promptTokens: Int?
    private var _completionTokens: Int?
    /// Counts so far, for a line written before the request finished (a client that left: status 499).
    private var submittedPrompt = 0, generatedSoFar = 0
    private var firstToken: DispatchTime?
    private var _user: String?

    init(id: String, method: String, route: String, responder: HTTPResponder) {
        self.id = id
        self.method = method
        self.route = route
        self.responder = responder
    }

    /// The status sent (0 until a head goes out).
    var status: Int {
        get { lock.withLock { _status } }
        set { lock.withLock { _status = newValue } }
    }

    /// Marks generated text carrying `tokens` tokens; the first call is the time to first token.
    func tokenArrived(_ tokens: Int) {
        lock.withLock {
            if firstToken == nil { firstToken = .now() }
            generatedSoFar += tokens
        }
    }

    /// A generation of `promptTokens` prompt tokens was accepted by the engine (counted until `usage` is known).
    func submitted(promptTokens: Int) { lock.withLock { submittedPrompt += promptTokens } }

    /// The request's end-user id (`user`, `safety_identifier`, Anthropic `metadata.user_id`) for the access log:
    /// at most 256 characters, control characters as U+FFFD so a text log line stays one line.
    var user: String? {
        get { lock.withLock { _user } }
        set {
            let clean = newValue.map { u in
                String(String.UnicodeScalarView(u.unicodeScalars.prefix(256).map {
                    $0.properties.generalCategory == .control ? "\u{FFFD}" : $0 }))
            }
            lock.withLock { _user = clean }
        }
    }

    /// Records the request's token counts.
    func usage(prompt: Int, completion: Int) {
        lock.withLock {
            _promptTokens = prompt
            _completionTokens = completion
        }
    }

    /// The access-log line's fields: `request_id`, `method`, `route`, `status`, `prompt_tokens`,
    /// `completion_tokens`, `ttft_ms` (the last three only when the request generated; for a line written before
    /// the request finished, such as a client that left (499), the tokens submitted and generated so far),
    /// `duration_ms`, `user` (when the request named one).
    func metadata(at end: DispatchTime) -> Logger.Metadata {
        lock.withLock {
            func ms(_ from: DispatchTime, _ to: DispatchTime) -> Logger.Metadata.Value {
                .stringConvertible(Double((to.uptimeNanoseconds - from.uptimeNanoseconds) / 1000) / 1000)
            }
            var m: Logger.Metadata = [
                "request_id": .string(id), "method": LogText.metadata(method), "route": LogText.metadata(route),
                "status": .stringConvertible(_status), "duration_ms": ms(start, end),
            ]
            if let p = _promptTokens ?? (submittedPrompt > 0 ? submittedPrompt : nil) { m["prompt_tokens"] = .stringConvertible(p) }
            if let c = _completionTokens ?? (submittedPrompt > 0 ? generatedSoFar : nil) {
                m["completion_tokens"] = .stringConvertible(c)
            }
            if let f = firstToken { m["ttft_ms"] = ms(start, f) }
            if let u = _user { m["user"] = LogText.metadata(u) }
            return m
        }
    }

    /// `value` when it is 1...128 characters of letters, digits and `-_.:/+=@`; nil otherwise.
    static func acceptableId(_ value: String?) -> String? {
        guard let v = value, (1...128).contains(v.utf8.count) else { return nil }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+=@".utf8)
        return v.utf8.allSatisfy(allowed.contains) ? v : nil
    }
}

/// The exchanges whose response has not finished, keyed by their responder.
final class ExchangeTable: @unchecked Sendable {
    private let lock = NSLock()
    private var open: [ObjectIdentifier: Exchange] = [:]

    /// Registers `e`; returns the exchanges whose responder is gone without an `end` (a handler that never
    /// reported its end), which the caller logs.
    func add(_ e: Exchange, for key: ObjectIdentifier) -> [Exchange] {
        lock.withLock {
            let gone = open.filter { $0.value.responder == nil }
            for k in gone.keys { open[k] = nil }
            open[key] = e
            return Array(gone.values)
        }
    }

    func get(_ key: ObjectIdentifier) -> Exchange? { lock.withLock { open[key] } }

    /// Removes and returns the exchange (nil when it already ended).
    func remove(_ key: ObjectIdentifier) -> Exchange? { lock.withLock { open.removeValue(forKey: key) } }
}

/// `X-Request-Id` on every routed response and one access-log line per request (info level, message `request`).
extension SputnikServer {
    /// Starts the exchange of `req`: picks its id and logs it as status 499 if the client leaves before the
    /// response ends.
    @discardableResult
    func beginExchange(_ req: HTTPRequest, _ res: HTTPResponder) -> Exchange {
        let id = Exchange.acceptableId(req.headers["x-request-id"]) ?? "req-" + Self.randomId()
        let e = Exchange(id: id, method: req.method, route: req.path, responder: res)
        let key = ObjectIdentifier(res)
        for stale in exchanges.add(e, for: key) { logExchange(stale) }
        res.onClose { [weak self] in self?.endExchange(key, status: 499) }
        return e
    }

    /// The exchange answered by `res`, while it is open.
    func exchange(_ res: HTTPResponder) -> Exchange? { exchanges.get(ObjectIdentifier(res)) }

    /// The `X-Request-Id` field for `res`'s response (`idFields`); records `status` as the status sent.
    func requestIdHeaders(_ res: HTTPResponder, status: Int) -> [(String, String)] {
        guard let e = exchange(res) else { return [] }
        e.status = status
        return Self.idFields(e.id, path: e.route)
    }

    /// `X-Request-Id: id`, and on the Anthropic routes (`/v1/messages…`) the same id as `request-id`, the field
    /// Anthropic sends and its SDK reads (`_request_id`, `APIStatusError.request_id`; helper-71), on every answer
    /// of those routes, the transport's errors included (helper-72).
    static func idFields(_ id: String, path: String?) -> [(String, String)] {
        guard let path, isAnthropicPath(path) else { return [("X-Request-Id", id)] }
        return [("X-Request-Id", id), ("request-id", id)]
    }

    /// Ends `res`'s exchange and writes its access-log line (once; later calls do nothing).
    func endExchange(_ res: HTTPResponder, status: Int? = nil) { endExchange(ObjectIdentifier(res), status: status) }

    func endExchange(_ key: ObjectIdentifier, status: Int?) {
        guard let e = exchanges.remove(key) else { return }
        if let status { e.status = status }
        logExchange(e)
    }

    /// A request answered without an exchange: by the transport before routing
    /// (`HTTPServerConfiguration.transportErrorHeaders`, with the error `code`; `request` nil when the request line
    /// was not readable, then method and route are `-`) or from its head alone (an `Expect: 100-continue` or a
    /// content-encoded body refused before it is read or inflated), or not answered at all (the client left while
    /// sending it: status 499, with the `body_bytes` received). Picks its id as `beginExchange` does and writes its
    /// access-log line.
    /// - Returns: the id for the response's `X-Request-Id`.
    func logUnrouted(status: Int, request: HTTPRequest?, code: String? = nil, bodyBytes: Int? = nil) -> String {
        let id = Exchange.acceptableId(request?.headers["x-request-id"]) ?? "req-" + Self.randomId()
        var m: Logger.Metadata = ["request_id": .string(id), "method": LogText.metadata(request?.method ?? "-"),
                                  "route": LogText.metadata(request?.path ?? "-"), "status": .stringConvertible(status)]
        if let code { m["code"] = .string(code) }
        if let bodyBytes { m["body_bytes"] = .stringConvertible(bodyBytes) }
        logger.info("request", metadata: m)
        return id
    }

    private func logExchange(_ e: Exchange) {
        // Probes and scrapes that succeed (`--disable-access-log-for-endpoints`) at debug only.
        let paths = options.quietAccessLogPaths   // a path given quiets its /v1 alias too (/v1/metrics is /metrics)
        let route = e.route.hasPrefix("/v1/") && !paths.contains(e.route) ? String(e.route.dropFirst(3)) : e.route
        let quiet = e.status > 0 && e.status < 400 && paths.contains(route)
        logger.log(level: quiet ? .debug : .info, "request", metadata: e.metadata(at: .now()))
    }
}
