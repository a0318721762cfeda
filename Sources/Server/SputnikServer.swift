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
    /// Model id reported to clients.
    public let modelId: String
    /// The loaded model, its tokenizer, prompt builder and engine.
    public let serving: ServingModel
    /// The engine serving requests.
    public var engine: EngineCore { serving.engine }
    /// The model's vocabulary.
    var tokenizer: Tokenizer { serving.tokenizer }
    let created = Int(Date().timeIntervalSince1970)
    let logger: Logger
    private var http: HTTPServer?
    /// The route table as a router, and the paths answered without the API key (set once, at the end of `init`).
    private(set) var router: (router: HTTPRouter, open: Set<String>)!
    /// Prometheus metrics served at `/metrics`.
    let metrics: ServerMetrics
    /// The registry behind `/metrics`, for bootstrapping swift-metrics.
    public var metricsRegistry: PrometheusCollectorRegistry { metrics.registry }

    /// Loads everything; nothing listens until `start()`.
    /// - Throws: `ServerError` (bad options, model or template load failures, with the file named).
    public init(options: ServerOptions, logger: Logger) throws {
        try options.validate()
        self.options = options
        self.logger = logger
        var o = ServingModel.Options(modelPath: options.modelPath, threads: options.threads)
        o.chatTemplatePath = options.chatTemplatePath
        o.kvCacheType = options.kvCacheType == "f32" ? .f32 : .f16
        o.repackWeights = options.repackWeights
        o.contextSize = options.contextSize
        o.maxNumSeqs = options.maxNumSeqs
        o.maxNumBatchedTokens = options.maxNumBatchedTokens
        o.blockSize = options.blockSize
        o.kvCacheMemory = options.kvCacheMemory
        o.maxQueuedRequests = options.maxQueuedRequests
        o.enablePrefixCaching = options.enablePrefixCaching
        o.schedulingPolicy = SchedulingPolicy(rawValue: options.schedulingPolicy) ?? .fcfs
        do { serving = try ServingModel(options: o, logger: logger) } catch {
            switch error {
            case .template(let m): throw ServerError.template(m)
            case .modelLoad(let m): throw ServerError.modelLoad(m)
            default: throw ServerError.modelLoad("\(error)")
            }
        }
        modelId = options.alias ?? URL(fileURLWithPath: options.modelPath).deletingPathExtension().lastPathComponent
        logger.info("serving \(options.modelPath) as '\(modelId)'")
        metrics = ServerMetrics(modelName: modelId, engine: serving.engine)
        router = Self.makeRouter(self)
    }

    /// Starts the engine and the listener. - Returns: the bound port. - Throws: `HTTPServerError`.
    public func start() throws -> Int {
        engine.start()
        var c = HTTPServerConfiguration()
        c.host = options.host
        c.port = options.port
        c.maxBodyBytes = options.maxBodyBytes
        c.idleTimeout = options.idleTimeout
        c.errorBody = { status, message, code in
            var e = status >= 500 ? APIError.internal(message) : APIError.invalidRequest(message)
            e.status = status
            e.code = code
            return ("application/json", e.encoded())
        }
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

    static let corsHeaders: [(String, String)] = [("Access-Control-Allow-Origin", "*")]

    /// Sends a JSON body; one larger than the connection's output cap is answered with a 500 error
    /// (`response_too_large`) instead of being dropped.
    func sendJSON(_ res: HTTPResponder, _ status: Int, _ body: [UInt8], extra: [(String, String)] = []) {
        let headers = [("Content-Type", "application/json")] + Self.corsHeaders + extra
        guard res.trySend(status: status, headers: headers, body: body) else {
            var e = APIError.internal("The response (\(body.count) bytes) exceeds the server's limit of \(res.maxResponseBytes) bytes")
            e.code = "response_too_large"
            return res.send(status: 500, headers: [("Content-Type", "application/json")] + Self.corsHeaders, body: e.encoded())
        }
    }

    func sendError(_ res: HTTPResponder, _ e: APIError) {
        var extra: [(String, String)] = []
        if e.status == 429 || e.status == 503 { extra.append(("Retry-After", "1")) }
        sendJSON(res, e.status, e.encoded(), extra: extra)
    }
}
