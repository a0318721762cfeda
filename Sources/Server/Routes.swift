import Engine
import HTTPServer
import OpenAIAPI

/// The route table: every path the server answers, its method, whether it needs the API key, and its handler.
/// `/v1/x` and `/x` are the same route (clients use both). Paths are matched on the raw request path.
extension SputnikServer {
    /// The route table: `(method, path, open, handler)`. `open` routes answer without the API key (load
    /// balancers' health checks, Prometheus scrapes). Each path is served at `/v1/x` and at `/x`.
    static let routeTable: [(method: String, path: String, open: Bool, handle: @Sendable (SputnikServer) -> (HTTPRequest, HTTPResponder) -> Void)] = [
        ("GET", "/health", true, { $0.handleHealth }),
        ("GET", "/metrics", true, { $0.handleMetrics }),
        ("GET", "/models", false, { $0.handleModels }),
        ("POST", "/chat/completions", false, { $0.handleChatCompletion }),
        ("POST", "/responses", false, { $0.handleResponses }),
        ("POST", "/messages", false, { $0.handleAnthropicMessages }),
        ("POST", "/messages/count_tokens", false, { $0.handleAnthropicCountTokens }),
        ("POST", "/tokenize", false, { $0.handleTokenize }),
        ("POST", "/detokenize", false, { $0.handleDetokenize }),
    ]

    /// `routeTable` as a router (matching the raw path; `HEAD` falls back to `GET`) and the set of open paths.
    static func makeRouter(_ server: SputnikServer) -> (router: HTTPRouter, open: Set<String>) {
        var router = HTTPRouter()
        var open: Set<String> = []
        for r in routeTable {
            for path in [r.path, "/v1" + r.path] {
                router.add(r.method, path) { [unowned server] req, _, res in r.handle(server)(req, res) }
                if r.open { open.insert(path) }
            }
        }
        return (router, open)
    }

    /// Dispatches one request: CORS preflight, API key, route lookup (404 / 405 with `Allow`), handler.
    func route(_ req: HTTPRequest, _ res: HTTPResponder) {
        if req.method == "OPTIONS" { return sendCORSPreflight(res) }
        if !router.open.contains(req.path), let key = options.apiKey, !authorized(req, key) {
            let e = APIError.authentication("Invalid or missing API key. Send 'Authorization: Bearer <key>' or 'x-api-key: <key>'.")
            return Self.isAnthropicPath(req.path) ? sendAnthropicError(res, e) : sendError(res, e)
        }
        switch router.router.match(method: req.method, path: req.path) {
        case .found(let handler, let parameters):
            handler(req, parameters, res)
        case .methodNotAllowed(let allowed):
            let allow = (allowed.contains("GET") ? allowed + ["HEAD"] : allowed).joined(separator: ", ")  // HEAD falls back to GET
            var e = APIError.invalidRequest("Method not allowed; use \(allow)", param: nil)
            e.status = 405
            sendJSON(res, 405, e.encoded(), extra: [("Allow", allow)])
        case .notFound:
            sendError(res, APIError.notFound("Unknown route \(req.method) \(req.path)"))
        }
    }

    func handleHealth(_ req: HTTPRequest, _ res: HTTPResponder) {
        sendJSON(res, 200, Array(#"{"status":"ok"}"#.utf8))
    }

    func handleMetrics(_ req: HTTPRequest, _ res: HTTPResponder) {
        res.send(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                 body: metrics.render(engine.stats))
    }

    func handleModels(_ req: HTTPRequest, _ res: HTTPResponder) {
        let list = ModelList(data: [ModelCard(id: modelId, created: created, ownedBy: "sputnik")])
        sendJSON(res, 200, list.encoded())
    }

    /// `Authorization: Bearer <key>` or (Anthropic's) `x-api-key: <key>`, compared in constant time.
    private func authorized(_ req: HTTPRequest, _ key: String) -> Bool {
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
        let a = Array(sent.utf8), b = Array(key.utf8)
        var diff = a.count ^ b.count
        for i in 0..<min(a.count, b.count) { diff |= Int(a[i] ^ b[i]) }
        return diff == 0
    }

    private func sendCORSPreflight(_ res: HTTPResponder) {
        res.send(status: 204, headers: Self.corsHeaders + [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type, x-api-key, anthropic-version"),
            ("Access-Control-Max-Age", "86400"),
        ], body: [])
    }
}
