import Foundation
import Compute
import Engine
import Model

/// Everything `sputnik serve` configures, after merging flags and the config file.
public struct ServerOptions: Sendable {
    /// GGUF model file.
    public var modelPath = ""
    /// Model id shown to clients; default: the file name without `.gguf`.
    public var alias: String?
    public var host = "127.0.0.1"
    public var port = 8080
    /// Compute threads; default: active processor count.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Tokens per request (prompt + completion); nil: min(4096, the model's training context).
    public var contextSize: Int?
    public var maxNumSeqs = 8
    public var maxNumBatchedTokens = 512
    public var blockSize = 16
    /// "f16" or "f32".
    public var kvCacheType = "f16"
    public var maxQueuedRequests = 256
    /// KV pool size in bytes (`--kv-cache-memory`); nil: `contextSize` × `maxNumSeqs` tokens.
    public var kvCacheMemory: Int?
    /// Reuse the KV of identical prompt prefixes.
    public var enablePrefixCaching = true
    /// Copy/repack quantized weights into huge-page memory at load (`--repack`, default); false: `--no-repack`.
    public var repackWeights = true
    /// Memory-map the GGUF file (default); false: read it into anonymous memory (`--no-mmap`, llama-server's name).
    public var useMmap = true
    /// Lock the model in RAM after loading (`--mlock`, llama-server's name); start-up fails if it cannot.
    public var mlock = false
    /// When set, every route requires `Authorization: Bearer <key>` except `/health`, `/version`, CORS preflights
    /// and, with `metricsNoAuth`, `/metrics`; several keys are separated by commas (llama-server's `--api-key`).
    public var apiKey: String?
    /// The keys of `apiKey` (split at commas), or nil when no key is required.
    public var apiKeys: [String]? { apiKey.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } }
    /// A Jinja file that replaces the GGUF's `tokenizer.chat_template`.
    public var chatTemplatePath: String?
    /// Largest request body accepted, bytes.
    public var maxBodyBytes = 8 * 1024 * 1024
    /// `--scheduling-policy` (vLLM's flag): "fcfs" (default: a request's `priority` must be 0 or absent) or
    /// "priority" (requests are served by `priority`, lower first, in -100...100, then by arrival).
    public var schedulingPolicy = "fcfs"
    /// `--reasoning-format` (llama-server's flag): "deepseek" (default: `<think>…</think>` goes to
    /// `reasoning_content`) or "none" (left inline in `content`); a request's `reasoning_format` overrides it.
    public var reasoningFormat = "deepseek"
    /// `--timeout` (llama-server's): seconds an idle keep-alive connection is kept open, and seconds a client may
    /// take none of its pending response bytes before it is dropped (its request aborted, its KV blocks freed).
    public var idleTimeout = 60.0
    /// `--allowed-origins` (vLLM's name): CORS origins answered with `Access-Control-Allow-Origin`; `["*"]`
    /// (default) allows any. With a list, other origins get 403 and every response carries `Vary: Origin`.
    public var allowedOrigins = ["*"]
    /// `--metrics-no-auth`: serve `/metrics` without the API key (for scrapers); off by default.
    public var metricsNoAuth = false
    /// `--disable-access-log-for-endpoints` (vLLM's name): paths whose successful (status < 400) requests get no
    /// access-log line at the default level (they are logged at debug). Default `/health` and `/metrics`: a
    /// gateway's endpoint picker scrapes `/metrics` every 50 ms and probes `/health`, 20+ lines a second per replica
    /// (helper-70); llama-server never logs `/health`. Empty: every request is logged.
    public var quietAccessLogPaths = ["/health", "/metrics"]
    /// `--ssl-keyfile` / `--ssl-certfile` (vLLM's names): PEM private key and certificate chain; both set → the
    /// server speaks HTTPS only (TLS 1.2 or later).
    public var sslKeyFile: String?
    public var sslCertFile: String?

    /// The base URL clients reach the server at, for the log: `http[s]://host:port`, an IPv6 host in brackets
    /// (RFC 3986 §3.2.2: `http://[::1]:8080`, not `http://::1:8080`).
    public func baseURL(port: Int) -> String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(sslKeyFile == nil ? "http" : "https")://\(host):\(port)"
    }
    /// `--shutdown-timeout`: seconds running requests get to finish after SIGTERM before they are aborted.
    public var shutdownTimeout = 20.0
    /// `--sse-keepalive`: seconds of silence after which a stream gets a `: keep-alive` comment; 0: never.
    public var sseKeepAlive = 15.0
    /// `--max-connections`: open connections served at once; more get 503 + `Retry-After` and are closed.
    public var maxConnections = 1024
    /// Weight-loading progress, `(bytesLoaded, bytesTotal)`; `sputnik` draws it on a terminal.
    public var loadProgress: (@Sendable (_ done: Int, _ total: Int) -> Void)?
    /// Largest `n` (choices per request) served, `--max-n` (1...128, default 16); `--max-num-seqs` bounds it too.
    public var maxChoices = 16

    /// Where options that are not on the command line came from, by option name (`"kv-cache-type"` →
    /// `"SPUTNIK_KV_CACHE_TYPE"` or `"config key 'kv-cache-type'"`, `OptionLayers.origin`); `validate` names that
    /// source instead of the flag, so a bad value is found where it was written.
    public var origins: [String: String] = [:]

    public init() {}

    /// The element types `--kv-cache-type` takes, for messages ("f16, bf16, f32 or q8_0").
    public static var kvCacheTypeChoices: String { KVCacheType.choices }

    /// Bytes per element of the KV cache type named `name`, or nil when it names none.
    public static func kvCacheElementBytes(_ name: String) -> Int? { KVCacheType(rawValue: name)?.elementSize }

    /// Bytes one layer's q8_0 cache takes per token for MLA latent rows of `latentRank` + `rope` values
    /// (`MLAQ8Kernels.slotBytes`: two int8 copies and their scales), nil when the kernels do not take that shape.
    public static func q8LatentRowBytes(latentRank: Int, rope: Int) -> Int? {
        MLAQ8Kernels.supports(latentRank: latentRank, rope: rope) ? MLAQ8Kernels.slotBytes(latentRank: latentRank, rope: rope) : nil
    }

    /// The name a message about option `name` uses: its environment variable or config key when it came from one,
    /// else the flag (`--name`).
    public func label(_ name: String) -> String { origins[name] ?? "--\(name)" }

    /// Checks ranges. - Throws: `ServerError.invalidOption` naming the option (flag, variable or config key).
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ what: String) throws {
            if !ok { throw ServerError.invalidOption("\(label(name)) \(what)") }
        }
        try check(!modelPath.isEmpty, "model", "must not be empty")
        try check(chatTemplatePath.map { !$0.isEmpty } ?? true, "chat-template",
                  "must not be empty (leave it out to use the model's template)")
        try check(apiKeys.map { !$0.contains("") } ?? true, "api-key",
                  "must not be empty, nor hold an empty key between commas (leave it out to serve without a key)")
        try check((0...65535).contains(port), "port", "must be 0...65535")
        try check(threads >= 1 && threads <= 512, "threads", "must be 1...512")
        try check(contextSize.map { $0 >= 16 } ?? true, "ctx-size", "must be at least 16")
        try check(maxNumSeqs >= 1 && maxNumSeqs <= 1024, "max-num-seqs", "must be 1...1024")
        try check(maxChoices >= 1 && maxChoices <= 128, "max-n", "must be 1...128")
        try check(maxNumBatchedTokens >= 1, "max-num-batched-tokens", "must be at least 1")
        try check(maxNumBatchedTokens >= maxNumSeqs, "max-num-batched-tokens",
                  "(\(maxNumBatchedTokens)) must be at least \(label("max-num-seqs")) (\(maxNumSeqs)): every running sequence takes "
                  + "a token of each step's budget")
        try check([1, 2, 4, 8, 16, 32, 64, 128].contains(blockSize), "block-size", "must be a power of two up to 128")
        try check(KVCacheType(rawValue: kvCacheType) != nil, "kv-cache-type", "must be \(KVCacheType.choices)")
        try check(kvCacheType != KVCacheType.q8_0.rawValue || blockSize % 16 == 0, "block-size",
                  "(\(blockSize)) must be a multiple of 16 with \(label("kv-cache-type")) q8_0 (its tiles are 16 slots)")
        try check(["fcfs", "priority"].contains(schedulingPolicy), "scheduling-policy", "must be fcfs or priority")
        try check(["deepseek", "none"].contains(reasoningFormat), "reasoning-format", "must be deepseek or none")
        try check(maxQueuedRequests >= 0, "max-queued-requests", "must be at least 0")
        try check(kvCacheMemory.map { $0 >= 1 } ?? true, "kv-cache-memory", "must be a positive number of bytes")
        // TLS needs both files: name the one given where it was given, and every way to give the other.
        if (sslKeyFile == nil) != (sslCertFile == nil) {
            let (given, missing) = sslKeyFile != nil ? ("ssl-keyfile", "ssl-certfile") : ("ssl-certfile", "ssl-keyfile")
            throw ServerError.invalidOption("\(label(given)) is set without \(missing) (--\(missing), "
                + "\(OptionLayers.environmentName(missing)) or config key '\(missing)'): TLS needs both")
        }
        try check(shutdownTimeout >= 0, "shutdown-timeout", "must be at least 0 seconds")
        try check(sseKeepAlive >= 0 && sseKeepAlive <= 3600, "sse-keepalive", "must be 0...3600 seconds (0: off)")
        try check(maxConnections >= 1, "max-connections", "must be at least 1")
        try check(idleTimeout > 0 && idleTimeout <= 86400, "timeout", "must be more than 0 and at most 86400 seconds")
        try check(alias.map { !$0.isEmpty } ?? true, "alias", "must not be empty (leave it out to serve under the file's name)")
        try check(!allowedOrigins.isEmpty, "allowed-origins", "must list origins such as https://app.example or *")
        for entry in allowedOrigins where entry != "*" {
            if case .failure(let why) = Self.parseOrigin(entry) {
                throw ServerError.invalidOption("\(label("allowed-origins")): '\(entry)' is not an origin (\(why)): write "
                    + "scheme://host[:port] with no path, such as https://app.example, http://localhost:5173 or "
                    + "chrome-extension://<id>, separated by commas, or *")
            }
        }
        // Files last, so that a value error is reported first; both before the server listens.
        try checkReadable(modelPath, "model")
        if let path = chatTemplatePath, ServingModel.inlineTemplate(path) == nil { try checkReadable(path, "chat-template") }
    }

    /// Why an `--allowed-origins` entry is not an origin.
    struct OriginError: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// An origin as a browser serialises it in `Origin` (RFC 6454 §6.2): `scheme://host[:port]`, scheme and host in
    /// lower case, the port in decimal without leading zeros and left out when it is the scheme's default (http
    /// 80, https 443) or empty. Any scheme (`https`, `chrome-extension`, `tauri`, …); no user, path (one trailing
    /// `/` is dropped), query, fragment or wildcard; surrounding spaces are trimmed.
    /// - Returns: the serialisation, or why `entry` is not an origin.
    static func parseOrigin(_ entry: String) -> Result<String, OriginError> {
        func fail(_ why: String) -> Result<String, OriginError> { .failure(OriginError(reason: why)) }
        let s = entry.trimmingCharacters(in: .whitespaces).lowercased()
        guard let sep = s.range(of: "://") else { return fail("no scheme://") }
        let scheme = s[..<sep.lowerBound]
        var rest = s[sep.upperBound...]
        // One trailing slash is the empty path of a URL written for the origin: `https://app.example/`.
        if rest.hasSuffix("/"), rest.firstIndex(of: "/") == rest.index(before: rest.endIndex) { rest = rest.dropLast() }
        guard let first = scheme.first, first.isLetter,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return fail("bad scheme") }
        if let bad = rest.first(where: { "/?#@ \t*\\".contains($0) }) {
            return fail(bad == "*" ? "a wildcard is only allowed as the whole value *" : bad == " " || bad == "\t"
                        ? "a space; separate origins with commas" : "'\(bad)': an origin has no user, path, query or fragment")
        }
        // host, then an optional :port (an IPv6 host is in brackets).
        var host = rest, port: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return fail("unclosed [") }
            let after = host[host.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { return fail("text after ]") }
                port = after.dropFirst()
            }
            host = host[...close]
        } else if let colon = host.lastIndex(of: ":") {
            port = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty, !host.contains(":") || host.hasPrefix("[") else { return fail("no host") }
        // Browsers send an international host in its ASCII (punycode) form, which is what must be listed.
        guard host.allSatisfy(\.isASCII) else { return fail("write a non-ASCII host in its xn-- (punycode) form") }
        var out = "\(scheme)://\(host)"
        if let port, !port.isEmpty {
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(port), (1...65535).contains(n) else {
                return fail("port must be 1...65535")
            }
            if !((scheme == "http" && n == 80) || (scheme == "https" && n == 443)) { out += ":\(n)" }
        }
        return .success(out)
    }

    /// `origin` serialised as `parseOrigin` does (lower case, default port left out); an entry that is not an
    /// origin (refused by `validate`) comes back lower-cased.
    public static func serializedOrigin(_ origin: String) -> String {
        (try? parseOrigin(origin).get()) ?? origin.lowercased()
    }

    /// Throws unless `path` names a regular file this process may read: `<label> <path>: <reason>`.
    private func checkReadable(_ path: String, _ name: String) throws {
        if let reason = Self.unreadableReason(path) { throw ServerError.invalidOption("\(label(name)) \(path): \(reason)") }
    }

    /// Why `path` is not a regular file this process may read, or nil when it is: the `stat` / `access` error (with
    /// the current directory for a relative path), "is a directory" or "is not a regular file" (a pipe or device).
    public static func unreadableReason(_ path: String) -> String? {
        var st = stat()
        if stat(path, &st) != 0 {
            let why = String(cString: strerror(errno))
            // A relative path is read from the current directory, which is not always where the user thinks.
            return path.hasPrefix("/") ? why : "\(why) (relative to the current directory \(FileManager.default.currentDirectoryPath))"
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { return "is a directory" }
        if (st.st_mode & S_IFMT) != S_IFREG { return "is not a regular file" }
        return access(path, R_OK) == 0 ? nil : String(cString: strerror(errno))
    }

}

/// Errors from starting the server.
public enum ServerError: Error, CustomStringConvertible {
    case invalidOption(String)
    case modelLoad(String)
    case template(String)

    public var description: String {
        switch self {
        case .invalidOption(let s): return "invalid option: \(s)"
        case .modelLoad(let s): return "cannot load model: \(s)"
        case .template(let s): return "chat template: \(s)"
        }
    }
}
