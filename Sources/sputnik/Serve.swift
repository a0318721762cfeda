import ArgumentParser
import Foundation
import JSON
import Logging
import Metrics
import Prometheus
import Server
import Tokenizer
import Yams

/// `sputnik serve`: loads a GGUF model and serves the OpenAI API. Every flag may also be given as the environment
/// variable `SPUTNIK_<FLAG>` (`--ctx-size` → `SPUTNIK_CTX_SIZE`) or as a key of the YAML file named by `--config`
/// (`ctx-size: 4096`); flags win over the environment, the environment over the file (`OptionLayers`).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve a GGUF model over the OpenAI HTTP API.")

    @Option(help: "YAML file with any of these options (flags and SPUTNIK_* variables override it; env SPUTNIK_CONFIG).")
    var config: String?
    @Argument(help: "GGUF model file (as `vllm serve MODEL`; or --model, SPUTNIK_MODEL, config key 'model').")
    var path: String?
    @Option(name: [.customShort("m"), .long], help: "GGUF model file (instead of the argument).")
    var model: String?
    @Option(help: "Model id reported by /v1/models and in responses (default: the file name).")
    var alias: String?
    @Option(help: "Address to listen on (default 127.0.0.1).")
    var host: String?
    @Option(parsing: .unconditional, help: "Port to listen on (default 8080).")
    var port: Int?
    @Option(name: [.customShort("t"), .long], parsing: .unconditional, help: "Compute threads (default: number of cores).")
    var threads: Int?
    @Option(name: [.customShort("c"), .customLong("ctx-size")], parsing: .unconditional, help: "Context size per request, tokens (default 4096, at most the model's).")
    var ctxSize: Int?
    @Option(name: .customLong("max-num-seqs"), parsing: .unconditional, help: "Most requests decoded together (default 8).")
    var maxNumSeqs: Int?
    @Option(name: .customLong("max-n"), parsing: .unconditional, help: "Most choices (n) one request may ask for, 1...128 (default 16; at most --max-num-seqs).")
    var maxN: Int?
    @Option(name: .customLong("max-num-batched-tokens"), parsing: .unconditional, help: "Token budget of one engine step, at least --max-num-seqs (default 512, or --max-num-seqs when larger).")
    var maxNumBatchedTokens: Int?
    @Option(name: .customLong("block-size"), parsing: .unconditional, help: "KV cache block size in tokens (default 16).")
    var blockSize: Int?
    @Option(name: .customLong("kv-cache-type"), help: "KV cache element type: f16 (default), bf16 (faster attention on AVX512-BF16 CPUs), f32, or q8_0 (MLA models only: 8-bit latent rows, faster long-context attention on AVX512-VNNI CPUs; block size a multiple of 16).")
    var kvCacheType: String?
    @Option(name: .customLong("max-queued-requests"), parsing: .unconditional, help: "Waiting requests before 429 (default 256).")
    var maxQueuedRequests: Int?
    @Option(name: .customLong("scheduling-policy"),
            help: "fcfs (default; a request's 'priority' must be 0) or priority (serve by 'priority' -100...100, lower first).")
    var schedulingPolicy: String?
    @Option(name: .customLong("api-key"), help: "Require the key on every route (as 'Authorization: Bearer KEY' or Anthropic's 'x-api-key: KEY') except /health, /version, CORS preflights and, with --metrics-no-auth, /metrics; several keys separated by commas (llama-server's form).")
    var apiKey: String?
    @Option(name: .customLong("chat-template"), help: "Jinja chat template overriding the GGUF's: a file, 'chatml', or the template itself (vLLM's single-line form).")
    var chatTemplate: String?
    @Option(name: .customLong("reasoning-format"),
            help: "deepseek (default: <think> blocks go to reasoning_content) or none (left inline in content).")
    var reasoningFormat: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info (default), notice, warning, error or critical.")
    var logLevel: String?
    @Option(name: .customLong("kv-cache-memory"), parsing: .unconditional, help: "KV cache pool size in bytes (default: ctx-size × max-num-seqs tokens).")
    var kvCacheMemory: Int?
    @Flag(name: .customLong("enable-prefix-caching"), inversion: .prefixedNo,
          help: "Reuse the KV cache of identical prompt prefixes (default on).")
    var enablePrefixCaching: Bool?
    @Flag(name: .customLong("repack"), inversion: .prefixedNo,
          help: "Copy quantized weights into huge-page memory at load, repacking Q4_1/Q8_0 (default on; --no-repack keeps them in the file mapping: no copy at load, slower decode). MoE routed experts are always used from the file mapping.")
    var repack: Bool?
    @Flag(name: .customLong("mmap"), inversion: .prefixedNo,
          help: "Use the model file through a memory mapping (default on; --no-mmap reads it into memory instead: slower start, no page-cache sharing between processes, and repacked weights are then held twice unless --no-repack).")
    var mmap: Bool?
    @Flag(name: .customLong("mlock"), help: "Lock the model in RAM so it is never evicted or swapped; start-up fails when the locked-memory limit (ulimit -l) is too low.")
    var mlock = false

    @Option(name: .customLong("allowed-origins"),
            help: "CORS origins allowed, as a JSON list or comma-separated (default *: any origin).")
    var allowedOrigins: String?
    @Flag(name: .customLong("metrics-no-auth"), help: "Serve /metrics without the API key (for scrapers; default off).")
    var metricsNoAuth = false
    @Option(name: .customLong("disable-access-log-for-endpoints"),
            help: "Comma-separated paths whose successful requests are logged at debug only, not info (default /health,/metrics: probes and metric scrapes; \"\" or none logs every request).")
    var disableAccessLogForEndpoints: String?
    @Option(name: .customLong("ssl-keyfile"), help: "PEM private key: serve HTTPS (TLS 1.2+) with --ssl-certfile.")
    var sslKeyfile: String?
    @Option(name: .customLong("ssl-certfile"), help: "PEM certificate (chain) for --ssl-keyfile.")
    var sslCertfile: String?
    @Option(name: .customLong("shutdown-timeout"), parsing: .unconditional,
            help: "Seconds running requests get to finish after SIGTERM before they are aborted (default 20).")
    var shutdownTimeout: Double?
    @Option(name: .customLong("sse-keepalive"), parsing: .unconditional,
            help: "Seconds of silence after which a stream gets a ': keep-alive' comment (default 15; 0: never).")
    var sseKeepAlive: Double?
    @Option(name: .customLong("max-connections"), parsing: .unconditional, help: "Open connections served at once; more get 503 (default 1024).")
    var maxConnections: Int?
    @Option(name: .customLong("timeout"), parsing: .unconditional,
            help: "llama-server's: seconds a keep-alive connection may idle, and a client may take no response bytes, before it is closed (default 60).")
    var timeout: Double?
    @Option(name: .customLong("log-format"), help: "text (default) or json: one JSON object per log line.")
    var logFormat: String?

    func validate() throws {
        if let path, model != nil {
            // The value of an option this command does not have becomes the model argument (helper-67: `-m M
            // --some-option 9` said only "give the model file once").
            let args = CommandLine.arguments
            if !FileManager.default.fileExists(atPath: path), let i = args.lastIndex(of: path), i > 1, args[i - 1].hasPrefix("-") {
                throw ValidationError("'\(path)' is not a model file: is '\(args[i - 1])' an option this server does not have? "
                                      + "(see sputnik serve --help; the model file is given once, as the argument or with --model)")
            }
            throw ValidationError("give the model file once: as the argument or --model")
        }
        if config?.isEmpty == true { throw ValidationError("--config must not be empty (leave it out to use no config file)") }
    }

    func run() throws {
        do { try start() } catch {
            // A refusal before the log format is set up (an environment variable or the config file that does not
            // parse) is a JSON line too when the flag or the environment asks for JSON (helper-60); later ones are
            // logged by `start` itself, which then throws `ExitCode`.
            if error is ExitCode { throw error }
            let asked = logFormat ?? ProcessInfo.processInfo.environment[OptionLayers.environmentName("log-format")]
            guard asked == "json" else { throw error }
            JSONLogHandler.critical("\(error)")
            throw ExitCode.failure
        }
    }

    private func start() throws {
        let environment = ProcessInfo.processInfo.environment
        let configVariable = OptionLayers.environmentName("config")
        let configPath = config ?? environment[configVariable].flatMap { $0.isEmpty ? nil : $0 }
        let configLabel = config != nil ? "--config" : configVariable
        let layers = try OptionLayers(environment: environment,
                                      file: try configPath.map { try ConfigFile.load($0, label: configLabel) } ?? [:],
                                      filePath: configPath)
        var o = ServerOptions()
        // A flag wins; else the environment, then the config file (recording which, for messages about the value).
        var origins: [String: String] = [:]
        func layer<T>(_ flag: T?, _ key: String, _ read: (String) throws -> T?) rethrows -> T? {
            if let flag { return flag }
            guard let value = try read(key) else { return nil }
            origins[key] = layers.origin(key)
            return value
        }
        guard let modelPath = try layer(path ?? model, "model", layers.string) else {
            // The one refusal a misspelt variable causes (the others are ignored): say so here, where the warning
            // logged later would never be seen (helper-72: SPUTNIK_MODLE).
            let typos = layers.unknownEnvironment.compactMap(OptionLayers.unknownVariableWarning)
            throw StartupError("no model: give it as the argument (sputnik serve FILE) or --model FILE, set SPUTNIK_MODEL or set "
                               + "'model' in the config file (sputnik serve --help)"
                               + typos.map { "; " + $0 }.joined())
        }
        o.modelPath = modelPath
        o.alias = try layer(alias, "alias", layers.string)
        o.host = try layer(host, "host", layers.string) ?? o.host
        o.port = try layer(port, "port", layers.int) ?? o.port
        o.threads = try layer(threads, "threads", layers.int) ?? o.threads
        o.contextSize = try layer(ctxSize, "ctx-size", layers.int)
        o.maxNumSeqs = try layer(maxNumSeqs, "max-num-seqs", layers.int) ?? o.maxNumSeqs
        o.maxChoices = try layer(maxN, "max-n", layers.int) ?? o.maxChoices
        // Unset, the step budget grows with --max-num-seqs (every running sequence takes a token per step); a value
        // given below it is refused by `validate`, as vLLM refuses it.
        o.maxNumBatchedTokens = try layer(maxNumBatchedTokens, "max-num-batched-tokens", layers.int)
            ?? max(o.maxNumBatchedTokens, o.maxNumSeqs)
        o.blockSize = try layer(blockSize, "block-size", layers.int) ?? o.blockSize
        o.kvCacheType = try layer(kvCacheType, "kv-cache-type", layers.string) ?? o.kvCacheType
        o.maxQueuedRequests = try layer(maxQueuedRequests, "max-queued-requests", layers.int) ?? o.maxQueuedRequests
        o.schedulingPolicy = try layer(schedulingPolicy, "scheduling-policy", layers.string) ?? o.schedulingPolicy
        o.apiKey = try layer(apiKey, "api-key", layers.string)
        o.chatTemplatePath = try layer(chatTemplate, "chat-template", layers.string)
        o.reasoningFormat = try layer(reasoningFormat, "reasoning-format", layers.string) ?? o.reasoningFormat
        o.kvCacheMemory = try layer(kvCacheMemory, "kv-cache-memory", layers.int)
        o.enablePrefixCaching = try enablePrefixCaching ?? layers.bool("enable-prefix-caching") ?? true
        o.repackWeights = try repack ?? layers.bool("repack") ?? true
        o.useMmap = try mmap ?? layers.bool("mmap") ?? true
        o.mlock = try mlock || (layers.bool("mlock") ?? false)
        o.allowedOrigins = try layer(allowedOrigins.map { try Self.originList($0) }, "allowed-origins") {
            try layers.stringList($0, parse: { try Self.originList($0, label: layers.origin("allowed-origins") ?? "--allowed-origins") })
        } ?? o.allowedOrigins
        o.metricsNoAuth = try metricsNoAuth || (layers.bool("metrics-no-auth") ?? false)
        o.quietAccessLogPaths = try layer(disableAccessLogForEndpoints, "disable-access-log-for-endpoints", layers.string)
            .map(OptionLayers.pathList) ?? o.quietAccessLogPaths
        o.sslKeyFile = try layer(sslKeyfile, "ssl-keyfile", layers.string)
        o.sslCertFile = try layer(sslCertfile, "ssl-certfile", layers.string)
        o.shutdownTimeout = try layer(shutdownTimeout, "shutdown-timeout", layers.double) ?? o.shutdownTimeout
        o.sseKeepAlive = try layer(sseKeepAlive, "sse-keepalive", layers.double) ?? o.sseKeepAlive
        o.maxConnections = try layer(maxConnections, "max-connections", layers.int) ?? o.maxConnections
        o.idleTimeout = try layer(timeout, "timeout", layers.double) ?? o.idleTimeout
        if path != nil { origins["model"] = "model file" }      // the argument: "model file x.gguf: …"
        o.origins = origins
        let level = try layer(logLevel, "log-level", layers.string) ?? "info"
        guard let lvl = Logger.Level(rawValue: level) else {
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw StartupError("\(origins["log-level"] ?? "--log-level") must be one of \(levels), got '\(level)'")
        }
        let format = try layer(logFormat, "log-format", layers.string) ?? "text"
        guard let fmt = LogFormat(rawValue: format) else {
            throw StartupError("\(origins["log-format"] ?? "--log-format") must be text or json, got '\(format)'")
        }
        LogFormat.bootstrap(fmt, level: lvl)
        let logger = Logger(label: "sputnik")
        // With --log-format json a refusal to start is a JSON log line too (it was plain text: helper-59); exit 1.
        do {
            try o.validate()
            try Self.serve(o, unknownEnvironment: layers.unknownEnvironment, logger: logger)
        } catch {
            guard fmt == .json else { throw error }
            logger.critical("\(error)")
            throw ExitCode.failure
        }
    }

    /// Listens, loads the model and serves until a signal drains the server (never returns).
    /// - Throws: `ServerError` / `StartupError` when the server cannot start or the model cannot load.
    private static func serve(_ options: ServerOptions, unknownEnvironment: [String], logger: Logger) throws -> Never {
        var o = options
        // A misspelt variable in a Deployment's `env:` must show at the default level (helper-70: SPUTNIK_MAX_NUM_SEQ
        // was read as nothing, and only --log-level debug said so), as vLLM warns of unknown VLLM_* variables.
        for name in unknownEnvironment {
            if let warning = OptionLayers.unknownVariableWarning(name) { logger.warning("\(warning)") }
        }
        let file = URL(fileURLWithPath: o.modelPath).lastPathComponent
        o.loadProgress = LoadProgressReporter.make(label: "loading \(file)") { percent in
            logger.info("loading weights", metadata: ["model": .string(file), "percent": .stringConvertible(percent)])
        }
        // Listen first (/health answers 503 {"status":"loading"}), then load the model.
        let server = try SputnikServer(options: o, logger: logger, loadNow: false)
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: server.metricsRegistry))
        let boundPort = try server.start()
        logger.info("listening on \(o.baseURL(port: boundPort)), loading the model")
        // SIGINT/SIGTERM: drain (stop accepting, let running requests finish up to --shutdown-timeout), exit 0.
        // SIGINT after that (Ctrl-C again) stops at once; SIGTERM again keeps draining, as uvicorn (vLLM's server)
        // does: one stop request often arrives as two SIGTERMs (GNU `timeout` signals the child, then its process
        // group; a re-issued container stop), and the second cut every running stream (helper-70).
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let signals = SignalCount()
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                if signals.next() == 1 {
                    logger.info("shutting down: draining for up to \(o.shutdownTimeout) s")
                    // Drain elsewhere: a source's handler does not run again while it runs, so a drain here would
                    // leave a second SIGTERM (or Ctrl-C) unhandled until the drain ended.
                    let timeout = o.shutdownTimeout
                    DispatchQueue(label: "sputnik.drain").async {
                        server.drain(timeout: timeout)
                        Foundation.exit(0)
                    }
                } else if sig == SIGINT {
                    logger.warning("second signal: stopping now")
                    server.stop()
                    Foundation.exit(0)
                } else {
                    logger.warning("SIGTERM again: still draining (SIGINT stops at once)")
                }
            }
            s.resume()
            sources.append(s)
        }
        do { try server.load() } catch {
            server.stop()
            throw error
        }
        logger.info("ready on \(o.baseURL(port: boundPort))")
        signals.sources = sources
        dispatchMain()
    }

    /// `--allowed-origins` as vLLM writes it (a JSON list) or comma-separated.
    static func originList(_ text: String, label: String = "--allowed-origins") throws -> [String] {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("[") {
            // The project's strict parser: JSONSerialization accepts a trailing comma (`["a",]`).
            let items: [JSONValue]?
            do { items = try JSONValue(parsing: t).arrayValue } catch {
                throw StartupError("\(label): expected a JSON list of strings, got \(text) (\(error))")
            }
            let list = items?.compactMap(\.stringValue) ?? []
            guard let items, list.count == items.count else {
                throw StartupError("\(label): expected a JSON list of strings, got \(text)")
            }
            return list
        }
        return t.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// Counts termination signals (the first drains, a second stops at once).
final class SignalCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    /// The signal sources, kept alive while the server runs.
    var sources: [DispatchSourceSignal] = []

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }
}

/// The YAML config file: a flat mapping of option names to scalars (checked against the option names by
/// `OptionLayers`).
enum ConfigFile {
    /// - Throws: `StartupError` naming the file when it cannot be read or is not a mapping; when it cannot be
    ///   read, also where its path was given (`label`: `--config` or `SPUTNIK_CONFIG`).
    static func load(_ path: String, label: String = "--config") throws -> [String: Any] {
        // A readable regular file of a sane size: a pipe blocked here forever and /dev/zero was read until memory
        // ran out.
        if let why = ServerOptions.unreadableReason(path) { throw StartupError("config file (\(label)) \(path): \(why)") }
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > 1 << 20 {
            throw StartupError("config file (\(label)) \(path): \(size) bytes; a config file is at most 1 MiB")
        }
        let text: String
        do { text = try TextFile.read(path) } catch { throw StartupError("config file (\(label)): \(error.description)") }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch { throw StartupError("config file \(path): \(error)") }
        if parsed == nil { return [:] }
        guard let map = parsed as? [String: Any] else { throw StartupError("config file \(path): expected a mapping of option: value") }
        return map
    }
}

/// A `serve` start-up error found after the flags parsed (a value from the environment or the config file, a file
/// that cannot be read): printed as `Error: <message>` without argument-parser's usage text, which names the
/// top-level command there and says nothing about the value.
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
