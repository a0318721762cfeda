import HTTPServer
import OpenAIAPI

/// The route table: every path the server answers, its method, whether it needs the API key, and its handler.
/// `/v1/x` and `/x` are the same route (clients use both). Paths are matched on the raw request path.
extension SputnikServer {
    /// One route.
    struct Route: Sendable {
        let path: String
        let method: String
        /// Answered without the API key (load balancers' health checks, Prometheus scrapes).
        let open: Bool
        let handle: @Sendable (SputnikServer) -> (HTTPRequest, HTTPResponder) -> Void
    }

    static let routes: [Route] = [
        Route(path: "/health", method: "GET", open: true, handle: { $0.handleHealth }),
        Route(path: "/metrics", method: "GET", open: true, handle: { $0.handleMetrics }),
        Route(path: "/models", method: "GET", open: false, handle: { $0.handleModels }),
        Route(path: "/chat/completions", method: "POST", open: false, handle: { $0.handleChatCompletion }),
        Route(path: "/tokenize", method: "POST", open: false, handle: { $0.handleTokenize }),
        Route(path: "/detokenize", method: "POST", open: false, handle: { $0.handleDetokenize }),
    ]

    /// Dispatches one request: CORS preflight, route lookup (404 / 405 with `Allow`), API key, handler.
    func route(_ req: HTTPRequest, _ res: HTTPResponder) {
        let path = req.path.hasPrefix("/v1/") ? String(req.path.dropFirst(3)) : req.path
        if req.method == "OPTIONS" { return sendCORSPreflight(res) }
        guard let route = Self.routes.first(where: { $0.path == path }) else {
            return sendError(res, APIError.notFound("Unknown route \(req.method) \(req.path)"))
        }
        if !route.open, let key = options.apiKey, !authorized(req, key) {
            return sendError(res, APIError.authentication("Invalid or missing API key. Send 'Authorization: Bearer <key>'."))
        }
        let headAllowed = route.method == "GET" && req.method == "HEAD" && route.path == "/health"
        guard req.method == route.method || headAllowed else {
            var e = APIError.invalidRequest("Method not allowed; use \(route.method)", param: nil)
            e.status = 405
            return sendJSON(res, 405, e.encoded(), extra: [("Allow", route.method)])
        }
        route.handle(self)(req, res)
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

    /// `Authorization: Bearer <key>`, compared in constant time.
    private func authorized(_ req: HTTPRequest, _ key: String) -> Bool {
        guard let h = req.headers["authorization"] else { return false }
        let parts = h.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let a = Array(parts[1].utf8), b = Array(key.utf8)
        var diff = a.count ^ b.count
        for i in 0..<min(a.count, b.count) { diff |= Int(a[i] ^ b[i]) }
        return diff == 0
    }

    private func sendCORSPreflight(_ res: HTTPResponder) {
        res.send(status: 204, headers: Self.corsHeaders + [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type"),
            ("Access-Control-Max-Age", "86400"),
        ], body: [])
    }
}
