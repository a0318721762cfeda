import ChatTemplate
import Engine
import Foundation
import GGUF
import HTTPServer
import Logging
import Model
import OpenAIAPI
import Prometheus
import Tokenizer

/// The OpenAI-compatible server: loads the model, starts the engine and routes HTTP requests to it.
///
/// Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health` (also without the `/v1` prefix where
/// clients use it). Errors are `{"error":{"message","type","param","code"}}` with a 4xx/5xx status.
public final class SputnikServer: @unchecked Sendable {
    public let options: ServerOptions
    /// Model id reported to clients.
    public let modelId: String
    public let engine: Engine
    let tokenizer: Tokenizer
    let template: ChatTemplate
    let bosText: String?
    let eosText: String?
    let created = Int(Date().timeIntervalSince1970)
    let logger: Logger
    private var http: HTTPServer?
    /// Prometheus metrics served at `/metrics`.
    let metrics = ServerMetrics()
    /// The registry behind `/metrics`, for bootstrapping swift-metrics.
    public var metricsRegistry: PrometheusCollectorRegistry { metrics.registry }
    private let gguf: GGUFFile

    /// Loads everything; nothing listens until `start()`.
    /// - Throws: `ServerError` (bad options, model or template load failures, with the file named).
    public init(options: ServerOptions, logger: Logger) throws {
        try options.validate()
        self.options = options
        self.logger = logger
        do {
            gguf = try GGUFFile(path: options.modelPath)
            tokenizer = try Tokenizer(gguf: gguf)
        } catch {
            throw ServerError.modelLoad("\(error)")
        }
        let templateSource: String
        if let p = options.chatTemplatePath {
            do { templateSource = try String(contentsOfFile: p, encoding: .utf8) } catch {
                throw ServerError.template("cannot read \(p): \(error.localizedDescription)")
            }
        } else if let t = try? gguf.optionalString("tokenizer.chat_template") {
            templateSource = t
        } else {
            logger.warning("the model has no chat template: using ChatML (<|im_start|>role ... <|im_end|>); pass --chat-template FILE to choose another")
            templateSource = Self.chatMLTemplate
        }
        do { template = try ChatTemplate(source: templateSource) } catch { throw ServerError.template("\(error)") }
        let tok = tokenizer
        bosText = tok.bosTokenId.map { tok.tokenText($0) }
        eosText = tok.eosTokenId.map { tok.tokenText($0) }
        modelId = options.alias ?? URL(fileURLWithPath: options.modelPath).deletingPathExtension().lastPathComponent

        let model: LanguageModel
        do {
            model = try ModelLoader.load(gguf, options: ModelOptions(
                threads: options.threads, kvCacheType: options.kvCacheType == "f32" ? .f32 : .f16,
                repackWeights: options.repackWeights))
        } catch {
            throw ServerError.modelLoad("\(error)")
        }
        let trained = model.hyperparameters.contextLength
        let ctx = min(options.contextSize ?? min(4096, trained), trained)
        if let asked = options.contextSize, asked > trained {
            logger.warning("--ctx-size \(asked) exceeds the model's training context \(trained): using \(trained)")
        }
        // KV bytes of one token across all layers, whatever layout the architecture uses.
        let kvBytesPerToken = model.makeKVCache(numBlocks: 1, blockSize: 1).bytes
        var config = EngineConfig(contextSize: ctx, maxNumSeqs: options.maxNumSeqs,
                                  maxNumBatchedTokens: max(options.maxNumBatchedTokens, options.maxNumSeqs),
                                  blockSize: options.blockSize,
                                  numBlocks: options.kvCacheMemory.map { max(1, $0 / (kvBytesPerToken * options.blockSize)) },
                                  maxQueuedRequests: options.maxQueuedRequests)
        config.enablePrefixCaching = options.enablePrefixCaching
        engine = Engine(model: model, tokenizer: tokenizer, config: config, logger: logger)
        logger.info("model \(modelId): \(model.hyperparameters.architecture), \(model.hyperparameters.numLayers) layers, vocab \(model.hyperparameters.vocabSize), ctx \(ctx), \(options.threads) threads, KV pool \(config.numBlocks) blocks × \(config.blockSize)")
    }

    /// Starts the engine and the listener. - Returns: the bound port. - Throws: `HTTPServerError`.
    public func start() throws -> Int {
        engine.start()
        var c = HTTPServerConfiguration()
        c.host = options.host
        c.port = options.port
        c.maxBodyBytes = options.maxBodyBytes
        c.idleTimeout = options.idleTimeout
        let server = HTTPServer(configuration: c, logger: logger) { [weak self] req, res in
            guard let self else { return res.send(status: 503, headers: [], body: []) }
            self.route(req, res)
        }
        let port = try server.start()
        http = server
        return port
    }

    /// Stops listening and ends the engine (unfinished requests end as aborted).
    public func stop() {
        http?.stop()
        engine.shutdown()
    }

    // MARK: routing

    func route(_ req: HTTPRequest, _ res: HTTPResponder) {
        let path = req.path.hasPrefix("/v1/") ? String(req.path.dropFirst(3)) : req.path
        if req.method == "OPTIONS" { return sendCORSPreflight(res) }
        switch path {
        case "/health":
            guard req.method == "GET" || req.method == "HEAD" else { return methodNotAllowed(res, "GET") }
            sendJSON(res, 200, Array(#"{"status":"ok"}"#.utf8))
            return
        case "/metrics":
            guard req.method == "GET" else { return methodNotAllowed(res, "GET") }
            res.send(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                     body: metrics.render(engine.stats))
            return
        default: break
        }
        if let key = options.apiKey, !authorized(req, key) {
            return sendError(res, APIError.authentication("Invalid or missing API key. Send 'Authorization: Bearer <key>'."))
        }
        switch path {
        case "/models":
            guard req.method == "GET" else { return methodNotAllowed(res, "GET") }
            let list = ModelList(data: [ModelCard(id: modelId, created: created, ownedBy: "sputnik")])
            sendJSON(res, 200, list.encoded())
        case "/chat/completions":
            guard req.method == "POST" else { return methodNotAllowed(res, "POST") }
            handleChatCompletion(req, res)
        case "/tokenize":
            guard req.method == "POST" else { return methodNotAllowed(res, "POST") }
            handleTokenize(req, res)
        case "/detokenize":
            guard req.method == "POST" else { return methodNotAllowed(res, "POST") }
            handleDetokenize(req, res)
        default:
            sendError(res, APIError.notFound("Unknown route \(req.method) \(req.path)"))
        }
    }

    private func authorized(_ req: HTTPRequest, _ key: String) -> Bool {
        guard let h = req.headers["authorization"] else { return false }
        let parts = h.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        // Constant-time comparison.
        let a = Array(parts[1].utf8), b = Array(key.utf8)
        var diff = a.count ^ b.count
        for i in 0..<min(a.count, b.count) { diff |= Int(a[i] ^ b[i]) }
        return diff == 0
    }

    static let corsHeaders: [(String, String)] = [("Access-Control-Allow-Origin", "*")]

    func sendJSON(_ res: HTTPResponder, _ status: Int, _ body: [UInt8], extra: [(String, String)] = []) {
        res.send(status: status, headers: [("Content-Type", "application/json")] + Self.corsHeaders + extra, body: body)
    }

    func sendError(_ res: HTTPResponder, _ e: APIError) {
        var extra: [(String, String)] = []
        if e.status == 429 || e.status == 503 { extra.append(("Retry-After", "1")) }
        sendJSON(res, e.status, e.encoded(), extra: extra)
    }

    private func methodNotAllowed(_ res: HTTPResponder, _ allow: String) {
        var e = APIError.invalidRequest("Method not allowed; use \(allow)", param: nil)
        e.status = 405
        sendJSON(res, 405, e.encoded(), extra: [("Allow", allow)])
    }

    private func sendCORSPreflight(_ res: HTTPResponder) {
        res.send(status: 204, headers: Self.corsHeaders + [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type"),
            ("Access-Control-Max-Age", "86400"),
        ], body: [])
    }

    /// Used when the GGUF has no `tokenizer.chat_template` and no `--chat-template` is given.
    static let chatMLTemplate = """
    {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
    """
}
