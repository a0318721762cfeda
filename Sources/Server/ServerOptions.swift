import Foundation

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
    /// When set, every /v1 route requires `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
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
    /// Seconds an idle keep-alive connection is kept open.
    public var idleTimeout = 60.0

    public init() {}

    /// Checks ranges. - Throws: `ServerError.invalidOption` naming the option.
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ what: String) throws {
            if !ok { throw ServerError.invalidOption("--\(name) \(what)") }
        }
        try check(!modelPath.isEmpty, "model", "is required")
        try check((0...65535).contains(port), "port", "must be 0...65535")
        try check(threads >= 1 && threads <= 512, "threads", "must be 1...512")
        try check(contextSize.map { $0 >= 16 } ?? true, "ctx-size", "must be at least 16")
        try check(maxNumSeqs >= 1 && maxNumSeqs <= 1024, "max-num-seqs", "must be 1...1024")
        try check(maxNumBatchedTokens >= 1, "max-num-batched-tokens", "must be at least 1")
        try check([1, 2, 4, 8, 16, 32, 64, 128].contains(blockSize), "block-size", "must be a power of two up to 128")
        try check(["f16", "f32"].contains(kvCacheType), "kv-cache-type", "must be f16 or f32")
        try check(["fcfs", "priority"].contains(schedulingPolicy), "scheduling-policy", "must be fcfs or priority")
        try check(["deepseek", "none"].contains(reasoningFormat), "reasoning-format", "must be deepseek or none")
        try check(maxQueuedRequests >= 0, "max-queued-requests", "must be at least 0")
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
