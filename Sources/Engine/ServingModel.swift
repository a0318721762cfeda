import ChatTemplate
import Foundation
import GGUF
import Logging
import Model
import Scheduling
import Tokenizer

/// Everything one served model needs, loaded once at start-up: the GGUF file (mmap), its tokenizer and chat
/// template, the model weights, and the engine with its KV pool sized from the options.
public final class ServingModel: @unchecked Sendable {
    /// What to load and how to size the engine (the server's flags).
    public struct Options: Sendable {
        /// GGUF model file.
        public var modelPath: String
        /// A Jinja file that replaces the GGUF's `tokenizer.chat_template`.
        public var chatTemplatePath: String?
        /// Compute threads.
        public var threads: Int
        /// KV cache element type.
        public var kvCacheType: KVCacheType = .f16
        /// Copy/repack quantized weights into huge-page memory at load.
        public var repackWeights = true
        /// Use the GGUF file through a memory mapping (default); false reads it into anonymous memory
        /// (`--no-mmap`).
        public var useMmap = true
        /// Lock the model file's bytes in RAM after loading (`--mlock`); failure to lock is an error.
        public var mlock = false
        /// Tokens per request (prompt + completion); nil: min(4096, the model's training context).
        public var contextSize: Int?
        /// Most requests decoded together.
        public var maxNumSeqs = 8
        /// Token budget of one engine step (raised to `maxNumSeqs` if smaller).
        public var maxNumBatchedTokens = 512
        /// KV block size, tokens.
        public var blockSize = 16
        /// KV pool size in bytes; nil: `contextSize` × `maxNumSeqs` tokens.
        public var kvCacheMemory: Int?
        /// Waiting requests before `queueFull`.
        public var maxQueuedRequests = 256
        /// Reuse the KV of identical prompt prefixes.
        public var enablePrefixCaching = true
        /// Service order.
        public var schedulingPolicy = SchedulingPolicy.fcfs
        /// Weight-loading progress, `(bytesLoaded, bytesTotal)` (`ModelOptions.loadProgress`).
        public var loadProgress: (@Sendable (_ done: Int, _ total: Int) -> Void)?
        /// Where options that were not flags came from, by option name (`"ctx-size"` → `"SPUTNIK_CTX_SIZE"` or
        /// `"config key 'ctx-size'"`): messages about a value name that instead of the flag.
        public var origins: [String: String] = [:]
        /// Memory the system can give now, bytes (nil: unknown, no check); the load is refused when the model's
        /// `MemoryBudget` exceeds it. Default `MemoryBudget.systemAvailableBytes`.
        public var availableMemory: @Sendable () -> Int? = { MemoryBudget.systemAvailableBytes() }

        /// Options for `modelPath` with `threads` compute threads and the defaults above.
        public init(modelPath: String, threads: Int) {
            self.modelPath = modelPath
            self.threads = threads
        }

        /// The name a message about option `name` uses: its variable or config key (`origins`), else `--name`.
        public func label(_ name: String) -> String { origins[name] ?? "--\(name)" }
    }

    /// The mapped GGUF file.
    public let gguf: GGUFFile
    /// The model's vocabulary.
    public let tokenizer: Tokenizer
    /// Chat messages → prompt tokens.
    public let prompt: Prompt
    /// The running engine (not started).
    public let engine: EngineCore

    /// Opens `path` as GGUF and parses its header, metadata and tensor table (the weights are not read), so that a
    /// file that is not a model is refused before the server listens.
    /// - Throws: `EngineError.modelLoad` with the GGUF error, which names the file.
    public static func checkModelFile(_ path: String) throws(EngineError) {
        do { _ = try GGUFFile(path: path) } catch { throw EngineError.modelLoad("\(error)") }
    }

    /// Why `--mlock` cannot lock a model of `fileBytes` under this process's limits, or nil when it can (or the
    /// limits cannot be read): without CAP_IPC_LOCK (bit 14 of `CapEff` in `/proc/self/status`) the locked-memory
    /// limit (`RLIMIT_MEMLOCK`, `ulimit -l`) must hold the weights, about the file's size. Checked before the
    /// server listens; the lock itself happens after the load.
    public static func mlockRefusal(modelPath: String, fileBytes: Int) -> String? {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
           let caps = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16),
           caps & (1 << 14) != 0 {
            return nil
        }
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
              Int(clamping: limit.rlim_cur) < fileBytes else { return nil }
        return "\(modelPath): --mlock could not lock the weights (\(fileBytes >> 20) MiB file) in RAM: the locked-memory "
            + "limit is \(limit.rlim_cur >> 10) KiB (raise it, `ulimit -l`, or run with CAP_IPC_LOCK, or without --mlock)"
    }

    /// Reads and parses the chat template file `path` (`--chat-template`), so that a bad file is refused before
    /// anything else happens. `label` names where the path came from (`--chat-template`, its variable or config key).
    /// - Returns: the template source.
    /// - Throws: `EngineError.template` "`label` `path`: why" when it cannot be read, is empty or does not parse.
    public static func readTemplateFile(_ path: String, label: String) throws(EngineError) -> String {
        let source: String
        if let inline = inlineTemplate(path) {
            source = inline
        } else {
            do { source = try TextFile.read(path) } catch { throw EngineError.template("\(label): \(error.description)") }
        }
        if source.allSatisfy(\.isWhitespace) {
            throw EngineError.template("\(label) \(path): the file is empty (leave the option out to use the model's template)")
        }
        do { _ = try ChatTemplate(source: source) } catch { throw EngineError.template("\(label) \(path): \(error)") }
        return source
    }

    /// A `--chat-template` value that is not a file: `chatml` (llama-server's built-in name; the ChatML template
    /// used when a model has none) or, as vLLM takes it, the template itself (it holds `{{` or `{%`); nil otherwise,
    /// and whenever a file of that name exists.
    public static func inlineTemplate(_ value: String) -> String? {
        if FileManager.default.fileExists(atPath: value) { return nil }
        if value == "chatml" { return Prompt.chatMLTemplate }
        return value.contains("{{") || value.contains("{%") ? value : nil
    }

    /// Opens and loads the model; nothing runs until `engine.start()`.
    /// - Throws: `EngineError.modelLoad` (file, tokenizer or weights) or `.template` (chat template), naming the
    ///   file.
    public init(options o: Options, logger: Logger) throws(EngineError) {
        do {
            gguf = try GGUFFile(path: o.modelPath, mmap: o.useMmap)
            tokenizer = try Tokenizer(gguf: gguf)
        } catch {
            throw EngineError.modelLoad("\(error)")
        }
        // The template is checked before the weights load, so a bad --chat-template fails at once.
        let templateSource: String
        if let p = o.chatTemplatePath {
            templateSource = try Self.readTemplateFile(p, label: o.label("chat-template"))
        } else if let t = try? gguf.optionalString("tokenizer.chat_template") {
            templateSource = t
        } else {
            logger.warning("the model has no chat template: using ChatML (<|im_start|>role ... <|im_end|>); pass --chat-template FILE to choose another")
            templateSource = Prompt.chatMLTemplate
        }
        do { prompt = Prompt(template: try ChatTemplate(source: templateSource), tokenizer: tokenizer, source: templateSource) } catch {
            throw EngineError.template("\(error)")
        }
        // A q8_0 KV cache holds MLA latent rows: a model without them is refused from its metadata, before its
        // weights load (helper-74: the refusal came after a full load), naming where the choice was made.
        if o.kvCacheType == .q8_0, let arch = try? gguf.architecture(),
           ((try? gguf.optionalInt("\(arch).attention.kv_lora_rank")) ?? nil) == nil {
            throw EngineError.modelLoad("\(o.modelPath): \(o.label("kv-cache-type")) q8_0 holds MLA latent rows "
                + "(DeepSeek-V2/V3/R1); this \(arch) model's attention keeps K and V rows: use f16, bf16 or f32")
        }
        // Runtime besides the weights: ~256 MiB of scratch and buffers plus the KV pool when its size is given.
        // --no-mmap with repacking holds the read copy and the repacked copy (an upper bound: routed experts are
        // never copied).
        let weightBytes = gguf.fileSize * (!o.useMmap && o.repackWeights ? 2 : 1)
        let budget = MemoryBudget(weightBytes: weightBytes, runtimeBytes: (256 << 20) + (o.kvCacheMemory ?? 0))
        let available = o.availableMemory()
        if let refusal = budget.refusal(availableBytes: available) {
            throw EngineError.modelLoad("\(o.modelPath): \(refusal)")
        }
        // A file cached in 4 KiB pages (written, or read piecemeal) is dropped from the page cache first, so that
        // the readahead below brings it back in 2 MiB pages, which decode streams faster.
        if let r = gguf.settleInHugePages(), r.dropped {
            logger.info("\(o.modelPath): \((r.residentBytes - r.hugeBytes) >> 20) MiB of the file were cached in 4 KiB pages; reading it again into 2 MiB pages")
        }
        // The model fits: have the kernel read the rest of the file in the background while the weights load.
        if let why = gguf.adviseWillNeed() { logger.warning("\(o.modelPath): readahead advice failed: \(why)") }
        let model: LanguageModel
        let loadStart = DispatchTime.now().uptimeNanoseconds
        do {
            var mo = ModelOptions(threads: o.threads, kvCacheType: o.kvCacheType, repackWeights: o.repackWeights)
            mo.loadProgress = o.loadProgress
            model = try ModelLoader.load(gguf, options: mo)
        } catch {
            throw EngineError.modelLoad("\(error)")
        }
        // The weights as read: the load-time copies and what stays in the mapping, not the file pages a copy
        // replaced (locking the whole file read those back in and held the weights twice).
        if o.mlock, let why = model.lockWeightsInMemory() {
            throw EngineError.modelLoad("\(o.modelPath): --mlock could not lock the weights (\(gguf.fileSize >> 20) MiB file) in RAM: \(why) "
                                        + "(raise the locked-memory limit, `ulimit -l`, or run without --mlock)")
        }
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9

        let trained = model.hyperparameters.contextLength
        let ctx = min(o.contextSize ?? min(4096, trained), trained)
        if let asked = o.contextSize, asked > trained {
            logger.warning("\(o.label("ctx-size")) \(asked) exceeds the model's training context \(trained): using \(trained)")
        }
        // KV bytes of one token across all layers, whatever layout the architecture uses.
        let kvBytesPerToken = model.makeKVCache(numBlocks: 1, blockSize: 1).bytes
        var config = EngineConfig(contextSize: ctx, maxNumSeqs: o.maxNumSeqs,
                                  maxNumBatchedTokens: max(o.maxNumBatchedTokens, o.maxNumSeqs),
                                  blockSize: o.blockSize,
                                  numBlocks: o.kvCacheMemory.map { max(1, $0 / (kvBytesPerToken * o.blockSize)) },
                                  maxQueuedRequests: o.maxQueuedRequests)
        if let bytes = o.kvCacheMemory, config.numBlocks * o.blockSize < ctx {
            // Whole blocks only (the pool itself is at least one block): 10 bytes hold no token.
            let tokens = bytes / (kvBytesPerToken * o.blockSize) * o.blockSize
            // The least that holds the context in whole blocks (helper-74: the bytes of ctx tokens alone were
            // suggested, which a context that ends inside a block does not fit).
            let needed = (ctx + o.blockSize - 1) / o.blockSize * o.blockSize * kvBytesPerToken
            // vLLM refuses the same way: a request of the full context could never be scheduled.
            throw EngineError.modelLoad("\(o.label("kv-cache-memory")) \(bytes) bytes holds \(tokens) tokens of KV cache "
                + "(\(kvBytesPerToken) bytes per token), fewer than the context of \(ctx) tokens: raise it to at least "
                + "\(needed) bytes (whole blocks of \(o.blockSize) tokens) or lower \(o.label("ctx-size"))")
        }
        // The pool sized by default (--ctx-size × --max-num-seqs tokens) is known only now that the model gives its
        // bytes per token: checked against the memory that was available before the weights loaded, with them, before
        // it is allocated (helper-59: --max-num-seqs 512 died allocating 45 GiB; 256 grew towards the OOM killer).
        if o.kvCacheMemory == nil {
            let poolBytes = config.numBlocks * config.blockSize * kvBytesPerToken
            let withPool = MemoryBudget(weightBytes: weightBytes, runtimeBytes: (256 << 20) + poolBytes)
            if let refusal = withPool.refusal(availableBytes: available, advice:
                "its KV cache for \(o.label("ctx-size")) \(ctx) × \(o.label("max-num-seqs")) \(o.maxNumSeqs) tokens "
                + "(\(kvBytesPerToken) bytes each) is \(MemoryBudget.gib(poolBytes)): lower \(o.label("max-num-seqs")) or "
                + "\(o.label("ctx-size")), or size the pool with \(o.label("kv-cache-memory"))") {
                throw EngineError.modelLoad("\(o.modelPath): \(refusal)")
            }
        }
        config.enablePrefixCaching = o.enablePrefixCaching
        config.schedulingPolicy = o.schedulingPolicy
        engine = EngineCore(model: model, tokenizer: tokenizer, config: config, logger: logger)
        let h = model.hyperparameters
        logger.info("model \(h.architecture), \(h.numLayers) layers, vocab \(h.vocabSize), ctx \(ctx), \(o.threads) threads, KV pool \(config.numBlocks) blocks × \(config.blockSize) (\(o.kvCacheType.rawValue)), weights loaded in \(String(format: "%.2f", loadSeconds)) s\(gguf.isMapped ? "" : " (read into memory: --no-mmap)")\(o.mlock ? ", locked in RAM (--mlock)" : "")")
    }
}
