import Compute
import Engine
import Foundation
import HTTPServer
import Logging
import Model
import OpenAIAPI
import Prometheus
import Scheduling
import Tokenizer

/// The OpenAI-compatible server: owns the served model and the HTTP listener, and answers requests through the
/// route table (`Routes.swift`). Errors are `{"error":{"message","type","param","code"}}` with a 4xx/5xx status.
public final class SputnikServer: @unchecked Sendable {
    public let options: ServerOptions
    /// `options.allowedOrigins` as browsers serialise origins (`ServerOptions.serializedOrigin`; `*` kept), once.
    let allowedOrigins: Set<String>
    /// `options.apiKeys` (the `--api-key` list split at commas), once: checked on every request.
    let apiKeys: [String]?
    /// Model id reported to clients.
    public let modelId: String
    /// The loaded model, its tokenizer, prompt builder and engine (handlers run only once it is loaded:
    /// `admissionError` answers 503 before that).
    public var serving: ServingModel { state.withLock { $0.serving! } }
    /// The loaded model, or nil while it loads.
    var loadedServing: ServingModel? { state.withLock { $0.serving } }
    /// The engine serving requests.
    public var engine: EngineCore { serving.engine }
    /// The model's vocabulary.
    var tokenizer: Tokenizer { serving.tokenizer }
    let created = Int(Date().timeIntervalSince1970)
    let logger: Logger
    /// The loaded model (nil while loading) and the serving phase.
    private let state = LockedState()
    /// The route table as a router, and the paths answered without the API key (set once, at the end of `init`).
    private(set) var router: (router: HTTPRouter, open: Set<String>)!
    /// Prometheus metrics served at `/metrics`.
    let metrics: ServerMetrics
    /// Requests whose response has not ended (`AccessLog.swift`).
    let exchanges = ExchangeTable()
    /// The registry behind `/metrics`, for bootstrapping swift-metrics.
    public var metricsRegistry: PrometheusCollectorRegistry { metrics.registry }

    /// Where the server is in its life (loading, ready, draining).
    public var phase: ServingPhase { state.withLock { $0.phase } }

    /// Checks the options and, with `loadNow` (the default), loads the model; nothing listens until `start()`.
    /// With `loadNow: false` the caller may `start()` first (the socket then answers 503 `{"status":"loading"}`
    /// on `/health`) and call `load()` after.
    /// - Throws: `ServerError` (bad options, model or template load failures, with the file named).
    public init(options: ServerOptions, logger: Logger, loadNow: Bool = true) throws {
        try options.validate()
        // A file that is not GGUF, or a bad --chat-template, is refused here, before the server listens (the model
        // loads after).
        do { try ServingModel.checkModelFile(options.modelPath) } catch {
            if case .modelLoad(let m) = error { throw ServerError.modelLoad(m) }
            throw ServerError.modelLoad("\(error)")
        }
        // So is --mlock under a locked-memory limit too small for the weights.
        if options.mlock, let size = try? FileManager.default.attributesOfItem(atPath: options.modelPath)[.size] as? Int,
           let why = ServingModel.mlockRefusal(modelPath: options.modelPath, fileBytes: size) {
            throw ServerError.modelLoad(why)
        }
        if let path = options.chatTemplatePath {
            do { _ = try ServingModel.readTemplateFile(path, label: options.label("chat-template")) } catch {
                if case .template(let m) = error { throw ServerError.invalidOption(m) }
                throw ServerError.invalidOption("\(error)")
            }
        }
        self.options = options
        allowedOrigins = Set(options.allowedOrigins.map { $0 == "*" ? "*" : ServerOptions.serializedOrigin($0) })
        apiKeys = options.apiKeys
        self.logger = logger
        modelId = options.alias ?? URL(fileURLWithPath: options.modelPath).deletingPathExtension().lastPathComponent
        metrics = ServerMetrics(modelName: modelId)
        router = Self.makeRouter(self)
        if loadNow { try load() }
    }

    /// Loads the model and, when the listener runs, starts the engine; the phase becomes `ready`.
    /// - Throws: `ServerError.modelLoad` / `.template` naming the file and the problem.
    public func load() throws {
        var o = ServingModel.Options(modelPath: options.modelPath, threads: options.threads)
        o.chatTemplatePath = options.chatTemplatePath
        o.kvCacheType = KVCacheType(rawValue: options.kvCacheType) ?? .f16
        o.repackWeights = options.repackWeights
        o.useMmap = options.useMmap
        o.mlock = options.mlock
        o.contextSize = options.contextSize
        o.maxNumSeqs = options.maxNumSeqs
        o.maxNumBatchedTokens = options.maxNumBatchedTokens
        o.blockSize = options.blockSize
        o.kvCacheMemory = options.kvCacheMemory
        o.origins = options.origins
        o.maxQueuedRequests = options.maxQueuedRequests
        o.enablePrefixCaching = options.enablePrefixCaching
        o.schedulingPolicy = SchedulingPolicy(rawValue: options.schedulingPolicy) ?? .fcfs
        o.loadProgress = options.loadProgress
        let loaded: ServingModel
        do { loaded = try ServingModel(options: o, logger: logger) } catch {
            // Every load error names the file (the tokenizer's and the shape checks' own messages do not).
            let path = options.modelPath
            func named(_ m: String) -> String { m.contains(path) ? m : "\(path): \(m)" }
            switch error {
            case .template(let m): throw ServerError.template(m)
            case .modelLoad(let m): throw ServerError.modelLoad(named(m))
            default: throw ServerError.modelLoad(named("\(error)"))
            }
        }
        let listening = state.withLock { s -> Bool in
            s.serving = loaded
            return s.listening
        }
        metrics.attach(loaded.engine)
        if listening { loaded.engine.start() }
        state.withLock { if $0.phase == .loading { $0.phase = .ready } }
        if let warning = KernelSet.unknownCapWarning { logger.warning("\(warning)") }
        if options.kvCacheType == "q8_0" && KernelSet.active != "avx512vnni" {
            // Its products need VPDPBUSD with AVX512-VL (ckernels.h); elsewhere the scalar twins run.
            let why = "\(options.label("kv-cache-type")) q8_0 runs scalar attention kernels with the \(KernelSet.active) "
                + "kernels (its fast kernels need AVX512-VNNI): long contexts decode slower than with f16"
            logger.warning("\(why)")
        }
        logger.info("serving \(options.modelPath) as '\(modelId)' (kernels: \(KernelSet.active), \(options.threads) threads)")
    }

    /// Starts the listener (and the engine, when the model is loaded). - Returns: the bound port.
    /// - Throws: `HTTPServerError`, or `ServerError.invalidOption` for unreadable TLS files.
    public func start() throws -> Int {
        var c = HTTPServerConfiguration()
        c.host = options.host
        c.port = options.port
        c.maxBodyBytes = options.maxBodyBytes
        c.idleTimeout = options.idleTimeout
        c.maxConnections = options.maxConnections
        c.errorBody = { status, message, code, request in
            var e = status >= 500 ? APIError.internal(message) : APIError.invalidRequest(message)
            e.status = status
            e.code = code
            // The Anthropic routes answer in Anthropic's error shape, the transport's errors included.
            if let request, Self.isAnthropicPath(request.path) { return ("application/json", AnthropicError(e).encoded()) }
            return ("application/json", e.encoded())
        }
        c.transportErrorHeaders = { [weak self] status, code, request in
            guard let self else { return [] }
            // CORS fields as on routed answers, so a browser may read these errors too; without a readable head the
            // origin is unknown, so only the default `--allowed-origins *` names one.
            let cors = request.map(self.corsHeaders)
                ?? (self.options.allowedOrigins.contains("*") ? [("Access-Control-Allow-Origin", "*")] : [])
            return Self.idFields(self.logUnrouted(status: status, request: request, code: code), path: request?.path) + cors
        }
        // A client that leaves in the middle of sending its request: logged as nginx's 499 (client closed request),
        // with the body bytes that arrived.
        c.abandonedRequest = { [weak self] request, bodyBytes in
            _ = self?.logUnrouted(status: 499, request: request, code: "client_closed_request", bodyBytes: bodyBytes)
        }
        // Every route but the POSTs answers from memory at once (health, metrics, model listings, CORS preflights):
        // a probe or a scrape never waits behind prompts being parsed and tokenized.
        c.isLightRequest = { $0.method != "POST" }
        if let key = options.sslKeyFile, let cert = options.sslCertFile {
            do { c.tls = try TLSContext(certificateFile: cert, keyFile: key) } catch {
                throw ServerError.invalidOption("\(options.label("ssl-keyfile")) / \(options.label("ssl-certfile")): \(error)")
            }
        }
        let server = HTTPServer(configuration: c, logger: logger,
                                expectation: { [weak self] req in self?.expectationAnswer(req) }) { [weak self] req, res in
            guard let self else { return res.send(status: 503, headers: [], body: []) }
            self.route(req, res)
        }
        let port = try server.start()
        let loaded = state.withLock { s -> ServingModel? in
            s.http = server
            s.listening = true
            return s.serving
        }
        loaded?.engine.start()
        return port
    }

    /// Graceful drain (SIGTERM): stops accepting connections, answers new requests 503 (`/health` too), answers the
    /// requests the engine has not started yet 503 with `Retry-After` at once (streamed ones too: their head waits
    /// for the start), lets running requests finish for up to `timeout` seconds, then stops (what is still running
    /// is aborted: a stream ends with an error event, a whole response is a 503).
    /// - Returns: the number of running requests that were aborted at the timeout.
    @discardableResult
    public func drain(timeout: Double) -> Int {
        let (http, loaded) = state.withLock { s -> (HTTPServer?, ServingModel?) in
            s.phase = .draining
            return (s.http, s.serving)
        }
        http?.stopAccepting()
        // Behind a gateway or with a retrying client, another replica can take them now rather than after the
        // timeout.
        loaded?.engine.abortUnstarted()
        let deadline = Date().addingTimeInterval(timeout)
        var busy = 0
        repeat {
            busy = state.withLock { $0.serving }?.engine.unfinishedCount ?? 0
            if busy == 0 { break }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        if busy > 0 { logger.warning("shutdown timeout: aborting \(busy) unfinished requests") }
        stop()
        return busy
    }

    /// Stops the engine (unfinished requests end as aborted, their clients get an error) and then the listener.
    public func stop() {
        let (http, loaded) = state.withLock { s in (s.http, s.serving) }
        loaded?.engine.shutdown()
        // Let the abort answers reach the sockets before the connections close.
        let flushBy = Date().addingTimeInterval(1)
        while let h = http, h.bufferedBytes > 0, Date() < flushBy { Thread.sleep(forTimeInterval: 0.01) }
        http?.stop()
    }

    /// Sends a JSON body; one larger than the connection's output cap is answered with a 500 error
    /// (`response_too_large`) instead of being dropped.
    /// It carries the request's `X-Request-Id` and ends its exchange (the access-log line).
    func sendJSON(_ res: HTTPResponder, _ status: Int, _ body: [UInt8], extra: [(String, String)] = []) {
        send(res, status, [("Content-Type", "application/json")] + extra, body)
    }

    /// Sends a whole response with the request's `X-Request-Id` and ends its exchange (the access-log line); one
    /// larger than the connection's output cap becomes a 500 `response_too_large` error.
    func send(_ res: HTTPResponder, _ status: Int, _ headers: [(String, String)], _ body: [UInt8]) {
        defer { endExchange(res) }
        guard res.trySend(status: status, headers: headers + requestIdHeaders(res, status: status), body: body) else {
            var e = APIError.internal("The response (\(body.count) bytes) exceeds the server's limit of \(res.maxResponseBytes) bytes")
            e.code = "response_too_large"
            return res.send(status: 500, headers: [("Content-Type", "application/json")]
                            + requestIdHeaders(res, status: 500), body: e.encoded())
        }
    }

    func sendError(_ res: HTTPResponder, _ e: APIError) {
        sendJSON(res, e.status, e.encoded(), extra: Self.errorFields(e))
    }

    /// The header fields an error's status calls for: `Retry-After` on 429 and 503, and on 401 the challenge RFC 9110
    /// §15.5.2 requires (`WWW-Authenticate: Bearer`; Anthropic's `x-api-key` is accepted as well).
    static func errorFields(_ e: APIError) -> [(String, String)] {
        switch e.status {
        case 429, 503: return [("Retry-After", "1")]
        case 401: return [("WWW-Authenticate", "Bearer")]
        default: return []
        }
    }
}

/// The server's mutable state, under one lock.
private final class LockedState: @unchecked Sendable {
    struct Value {
        var serving: ServingModel?
        var phase = ServingPhase.loading
        var http: HTTPServer?
        var listening = false
    }
    private let lock = NSLock()
    private var value = Value()

    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
