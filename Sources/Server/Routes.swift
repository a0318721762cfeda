import Engine
import HTTPServer
import JSON
import OpenAIAPI

/// The route table: every path the server answers, its method, whether it needs the API key, and its handler.
/// `/v1/x` and `/x` are the same route (clients use both). Paths are matched on the raw request path.
extension SputnikServer {
    /// The route table: `(method, path, open, handler)`. `open` routes answer without the API key (load
    /// balancers' health checks; `/metrics` too with `--metrics-no-auth`). `AccessControl.swift` holds the rule. Each path is served at `/v1/x` and at `/x`.
    static let routeTable: [(method: String, path: String, open: Bool, handle: @Sendable (SputnikServer) -> (HTTPRequest, HTTPResponder) -> Void)] = [
        ("GET", "/health", true, { $0.handleHealth }),
        ("GET", "/version", true, { $0.handleVersion }),
        ("GET", "/metrics", false, { $0.handleMetrics }),  // open only with --metrics-no-auth
        ("GET", "/models", false, { $0.handleModels }),
        ("GET", "/models/{id...}", false, { $0.handleModel }),
        ("POST", "/chat/completions", false, { $0.handleChatCompletion }),
        ("POST", "/completions", false, { $0.handleCompletion }),
        ("POST", "/responses", false, { $0.handleResponses }),
        ("POST", "/messages", false, { $0.handleAnthropicMessages }),
        ("POST", "/messages/count_tokens", false, { $0.handleAnthropicCountTokens }),
        ("POST", "/tokenize", false, { $0.handleTokenize }),
        ("POST", "/apply-template", false, { $0.handleApplyTemplate }),
        ("POST", "/detokenize", false, { $0.handleDetokenize }),
    ]

    /// `routeTable` as a router (matching the raw path; `HEAD` falls back to `GET`) and the set of open paths.
    static func makeRouter(_ server: SputnikServer) -> (router: HTTPRouter, open: Set<String>) {
        var router = HTTPRouter()
        var open: Set<String> = []
        for r in routeTable {
            for path in [r.path, "/v1" + r.path] {
                router.add(r.method, path) { [unowned server] req, _, res in r.handle(server)(req, res) }
                if r.open || (r.path == "/metrics" && server.options.metricsNoAuth) { open.insert(path) }
            }
        }
        return (router, open)
    }

    /// Dispatches one request: CORS fields, the shared access rules (`AccessControl.swift`: origin, API key,
    /// serving phase), CORS preflight, route lookup (404 / 405 with `Allow`), handler.
    func route(_ req: HTTPRequest, _ res: HTTPResponder) {
        res.commonHeaders = corsHeaders(req)
        beginExchange(req, res)
        if let e = admissionError(req) { return Self.isAnthropicPath(req.path) ? sendAnthropicError(res, e) : sendError(res, e) }
        if req.method == "OPTIONS" { return sendCORSPreflight(res) }
        if case .found(let handler, let parameters) = router.router.match(method: req.method, path: req.path) {
            return handler(req, parameters, res)
        }
        guard let (e, extra) = unroutedError(req) else { return }
        // Anthropic's paths answer in Anthropic's error shape, as their SDK expects (helper-40).
        if e.status == 405 {
            sendJSON(res, 405, Self.isAnthropicPath(req.path) ? AnthropicError(e).encoded() : e.encoded(), extra: extra)
        } else if Self.isAnthropicPath(req.path) {
            sendAnthropicError(res, e)
        } else {
            sendError(res, e)
        }
    }

    /// The error for a request no route serves, with its extra header fields: 405 with `Allow` for a known path and
    /// another method, else 404; nil when a route serves it. Also the `Expect: 100-continue` answer for such a
    /// request, so its client does not upload a body only to get the 404.
    func unroutedError(_ req: HTTPRequest) -> (APIError, [(String, String)])? {
        switch router.router.match(method: req.method, path: req.path) {
        case .found: return nil
        case .methodNotAllowed(let allowed):
            let allow = (allowed.contains("GET") ? allowed + ["HEAD"] : allowed).joined(separator: ", ")  // HEAD falls back to GET
            var e = APIError.invalidRequest("Method not allowed; use \(allow)", param: nil)
            e.status = 405
            return (e, [("Allow", allow)])
        case .notFound:
            if let why = Self.notServed[req.path] {
                var e = APIError.notFound("\(req.path) is not served by this server: \(why)")
                e.status = 501
                e.type = "not_supported_error"
                return (e, [])
            }
            return (APIError.notFound("Unknown route \(req.method) \(req.path)"), [])
        }
    }

    /// Routes of llama-server and vLLM this server does not have, with what to use instead: 501 (llama-server's
    /// answer for a feature it was not started with) naming them, not a bare 404 (helper-67).
    static let notServed: [String: String] = {
        let embeddings = "it serves generative models only (no embeddings or reranking)"
        let completion = "use POST /v1/completions (OpenAI's form; llama-server's own /completion form is not implemented)"
        return [
            "/v1/embeddings": embeddings, "/embeddings": embeddings, "/embedding": embeddings,
            "/rerank": embeddings, "/reranking": embeddings, "/v1/rerank": embeddings, "/v2/rerank": embeddings,
            "/v1/score": embeddings, "/score": embeddings, "/pooling": embeddings, "/classify": embeddings,
            "/completion": completion, "/infill": completion + "; for fill-in-the-middle, its `suffix` field",
            "/props": "GET /v1/models lists the model (its id, context length and owner); GET /version the server's version",
            "/slots": "GET /metrics reports running and waiting requests and the KV cache usage",
            "/v1/audio/transcriptions": "it serves text models only", "/v1/audio/speech": "it serves text models only",
            "/v1/images/generations": "it serves text models only",
        ]
    }()

    /// 200 `{"status":"ok"}` when ready; 503 `{"status":"loading"}` / `{"status":"draining"}` otherwise.
    func handleHealth(_ req: HTTPRequest, _ res: HTTPResponder) {
        switch phase {
        case .ready: sendJSON(res, 200, Array(#"{"status":"ok"}"#.utf8))
        case .loading: sendJSON(res, 503, Array(#"{"status":"loading"}"#.utf8), extra: [("Retry-After", "1")])
        case .draining: sendJSON(res, 503, Array(#"{"status":"draining"}"#.utf8), extra: [("Retry-After", "1")])
        }
    }

    /// `{"version": "x.y.z"}` in every phase (vLLM's `GET /version`), without the API key as vLLM serves it.
    func handleVersion(_ req: HTTPRequest, _ res: HTTPResponder) {
        sendJSON(res, 200, JSONValue.object([("version", .string(SputnikVersion.string))]).encoded())
    }

    /// The exposition in every phase (a scrape while the model loads or the server drains is a 200, as vLLM's: a 503
    /// made Prometheus record the target down and lose a draining pod's last values; helper-59).
    func handleMetrics(_ req: HTTPRequest, _ res: HTTPResponder) {
        send(res, 200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], metrics.render(loadedServing?.engine.stats))
    }

    func handleModels(_ req: HTTPRequest, _ res: HTTPResponder) {
        let list = ModelList(data: [ModelCard(id: modelId, created: created, ownedBy: "sputnik",
                                                    maxModelLen: loadedServing?.engine.config.contextSize)])
        sendJSON(res, 200, list.encoded())
    }
}
