import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import Server
import Yams

/// `sputnik serve`: loads a GGUF model and serves the OpenAI API. Every flag may also be given as a key of the
/// YAML file named by `--config` (same name without dashes' prefix, e.g. `ctx-size: 4096`); flags win.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve a GGUF model over the OpenAI HTTP API.")

    @Option(help: "YAML file with any of these options (flags override it).")
    var config: String?
    @Option(name: [.customShort("m"), .long], help: "GGUF model file.")
    var model: String?
    @Option(help: "Model id reported by /v1/models and in responses (default: the file name).")
    var alias: String?
    @Option(help: "Address to listen on (default 127.0.0.1).")
    var host: String?
    @Option(help: "Port to listen on (default 8080).")
    var port: Int?
    @Option(name: [.customShort("t"), .long], help: "Compute threads (default: number of cores).")
    var threads: Int?
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Context size per request, tokens (default 4096, at most the model's).")
    var ctxSize: Int?
    @Option(name: .customLong("max-num-seqs"), help: "Most requests decoded together (default 8).")
    var maxNumSeqs: Int?
    @Option(name: .customLong("max-num-batched-tokens"), help: "Token budget of one engine step (default 512).")
    var maxNumBatchedTokens: Int?
    @Option(name: .customLong("block-size"), help: "KV cache block size in tokens (default 16).")
    var blockSize: Int?
    @Option(name: .customLong("kv-cache-type"), help: "KV cache element type: f16 (default) or f32.")
    var kvCacheType: String?
    @Option(name: .customLong("max-queued-requests"), help: "Waiting requests before 429 (default 256).")
    var maxQueuedRequests: Int?
    @Option(name: .customLong("scheduling-policy"),
            help: "fcfs (default; a request's 'priority' must be 0) or priority (serve by 'priority' -100...100, lower first).")
    var schedulingPolicy: String?
    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' (or env SPUTNIK_API_KEY).")
    var apiKey: String?
    @Option(name: .customLong("chat-template"), help: "Jinja chat template file overriding the GGUF's.")
    var chatTemplate: String?
    @Option(name: .customLong("reasoning-format"),
            help: "deepseek (default: <think> blocks go to reasoning_content) or none (left inline in content).")
    var reasoningFormat: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info (default), warning, error.")
    var logLevel: String?
    @Option(name: .customLong("kv-cache-memory"), help: "KV cache pool size in bytes (default: ctx-size × max-num-seqs tokens).")
    var kvCacheMemory: Int?
    @Flag(name: .customLong("enable-prefix-caching"), inversion: .prefixedNo,
          help: "Reuse the KV cache of identical prompt prefixes (default on).")
    var enablePrefixCaching: Bool?
    @Flag(name: .customLong("repack"), inversion: .prefixedNo,
          help: "Copy quantized weights into huge-page memory at load, repacking Q4_1/Q8_0 (default on; --no-repack keeps them in the file mapping: no copy at load, slower decode).")
    var repack: Bool?

    func run() throws {
        let file = try config.map(ConfigFile.load) ?? ConfigFile(values: [:])
        var o = ServerOptions()
        guard let modelPath = model ?? file.string("model") else {
            throw ValidationError("no model: pass --model FILE or set 'model' in the config file")
        }
        o.modelPath = modelPath
        o.alias = alias ?? file.string("alias")
        o.host = host ?? file.string("host") ?? o.host
        o.port = try port ?? file.int("port") ?? o.port
        o.threads = try threads ?? file.int("threads") ?? o.threads
        o.contextSize = try ctxSize ?? file.int("ctx-size")
        o.maxNumSeqs = try maxNumSeqs ?? file.int("max-num-seqs") ?? o.maxNumSeqs
        o.maxNumBatchedTokens = try maxNumBatchedTokens ?? file.int("max-num-batched-tokens") ?? o.maxNumBatchedTokens
        o.blockSize = try blockSize ?? file.int("block-size") ?? o.blockSize
        o.kvCacheType = kvCacheType ?? file.string("kv-cache-type") ?? o.kvCacheType
        o.maxQueuedRequests = try maxQueuedRequests ?? file.int("max-queued-requests") ?? o.maxQueuedRequests
        o.schedulingPolicy = schedulingPolicy ?? file.string("scheduling-policy") ?? o.schedulingPolicy
        o.apiKey = apiKey ?? file.string("api-key") ?? ProcessInfo.processInfo.environment["SPUTNIK_API_KEY"]
        o.chatTemplatePath = chatTemplate ?? file.string("chat-template")
        o.reasoningFormat = reasoningFormat ?? file.string("reasoning-format") ?? o.reasoningFormat
        o.kvCacheMemory = try kvCacheMemory ?? file.int("kv-cache-memory")
        o.enablePrefixCaching = try enablePrefixCaching ?? file.bool("enable-prefix-caching") ?? true
        o.repackWeights = try repack ?? file.bool("repack") ?? true
        let level = logLevel ?? file.string("log-level") ?? "info"
        guard let lvl = Logger.Level(rawValue: level) else { throw ValidationError("unknown --log-level '\(level)'") }
        try o.validate()

        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = lvl
            return h
        }
        let logger = Logger(label: "sputnik")
        let server = try SputnikServer(options: o, logger: logger)
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: server.metricsRegistry))
        let boundPort = try server.start()
        logger.info("listening on http://\(o.host):\(boundPort)")
        // Serve until SIGINT/SIGTERM.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let stopSem = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stopSem.signal() }
            s.resume()
            sources.append(s)
        }
        stopSem.wait()
        logger.info("shutting down")
        server.stop()
        withExtendedLifetime(sources) {}
    }
}

/// The YAML config file: a flat mapping of option names to scalars.
struct ConfigFile {
    let values: [String: Any]

    static func load(_ path: String) throws -> ConfigFile {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ValidationError("cannot read config file \(path): \(error.localizedDescription)")
        }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch { throw ValidationError("config file \(path): \(error)") }
        if parsed == nil { return ConfigFile(values: [:]) }
        guard let map = parsed as? [String: Any] else { throw ValidationError("config file \(path): expected a mapping of option: value") }
        let known: Set<String> = ["model", "alias", "host", "port", "threads", "ctx-size", "max-num-seqs",
                                  "max-num-batched-tokens", "block-size", "kv-cache-type", "max-queued-requests",
                                  "scheduling-policy", "api-key", "chat-template", "log-level", "kv-cache-memory",
                                  "enable-prefix-caching", "repack", "reasoning-format"]
        if let bad = map.keys.first(where: { !known.contains($0) }) {
            throw ValidationError("config file \(path): unknown key '\(bad)'")
        }
        return ConfigFile(values: map)
    }

    func string(_ key: String) -> String? { values[key].map { "\($0)" } }

    func bool(_ key: String) throws -> Bool? {
        guard let v = values[key] else { return nil }
        if let b = v as? Bool { return b }
        throw ValidationError("config key '\(key)' must be true or false, got '\(v)'")
    }

    func int(_ key: String) throws -> Int? {
        guard let v = values[key] else { return nil }
        if let i = v as? Int { return i }
        throw ValidationError("config key '\(key)' must be an integer, got '\(v)'")
    }
}
