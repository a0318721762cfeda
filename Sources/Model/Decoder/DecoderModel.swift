// THE decoder: one chunk loop for every architecture.
//
//   forward(batch) = for each chunk of ≤ maxBatchTokens tokens:
//       x = embed(tokens)                       x [n, embd]      trace "embeddings"
//       architecture.run(x)                     x [n, embd]      (its per-layer loop; trace "layer_output")
//       logits[wanted rows] = head(x)           [m, vocab]       trace "output_norm"
//
// llama.cpp builds the same graph per architecture (src/models/*.cpp: inp_embd … build_norm(output_norm) …
// build_lora_mm(output)); HF transformers `*ForCausalLM.forward` (embed_tokens → layers → norm → lm_head).
import Compute
import GGUF

/// A loaded decoder-only model: an `Architecture`'s blocks between the token embedding and the logits head.
/// Weights stay in the GGUF mapping (or in load-time repacked copies); per-step scratch is sized at load.
public final class DecoderModel: LanguageModel, @unchecked Sendable {
    public let hyperparameters: ModelHyperparameters
    public var trace: ForwardTrace?
    /// Run-time options it was loaded with.
    public let options: ModelOptions
    /// The architecture's blocks (e.g. `Llama`, `DeepseekV2`); tests reach variant switches through it.
    let body: Architecture

    private let gguf: GGUFFile
    private let tensors: TensorLoader       // keeps repacked weights and converted vectors alive
    private let matmul: RoundingMatmul
    private let embedding: TokenEmbedding
    private let head: LogitsHead
    private let tables = BatchTables()
    private let x: ScratchBuffer   // [T, embd] residual stream, T = options.maxBatchTokens
    private let h: ScratchBuffer   // [T, embd] normed block input / head input
    private let o: ScratchBuffer   // [T, embd] block output

    /// Routing hyper-parameters of the MoE blocks, nil for dense models.
    public var routerConfig: RouterConfig? { body.moe?.config }

    /// Tokens routed to each expert of each layer since load, nil for dense models.
    public var expertTokenCounts: ExpertTokenCounts? { body.moe?.expertCounts }
    /// MoE execution path of the following forwards (default per-token for small batches, grouped otherwise);
    /// ignored by dense models.
    public var moeExecution: MoEExecution {
        get { body.moe?.execution ?? .automatic }
        set { body.moe?.execution = newValue }
    }
    /// Whether per-token MoE steps take the fused path (`FusedExperts`, default true) when the weights allow it;
    /// false runs one matmul per expert (tests compare the two). Ignored by dense models.
    public var moeFusedDecode: Bool {
        get { body.moe?.fusedDecode ?? false }
        set { body.moe?.fusedDecode = newValue }
    }
    /// Token × MoE-layer steps that took the fused path since load (0 for dense models).
    public var moeFusedSteps: Int { body.moe?.fusedSteps ?? 0 }

    /// Reads the common keys, sizes the matmul by the widest matrix row of the file, loads the embedding and
    /// head, then the architecture's blocks through `load`.
    /// - Throws: `ModelLoadError`, `GGUFError` (see `ModelLoader.load`).
    init(gguf: GGUFFile, options: ModelOptions, load: (inout ModelContext) throws -> Architecture) throws {
        let keys = try CommonKeys(gguf)
        let T = max(1, options.maxBatchTokens)
        let widest = gguf.tensors.filter { $0.dimensions.count >= 2 }.map { $0.dimensions[0] }.max() ?? 0
        let base = Matmul(pool: ThreadPool(threads: max(1, options.threads)), maxTokens: T,
                          maxInDim: max(widest, keys.embd, keys.headDim), floatReference: options.floatReference)
        matmul = RoundingMatmul(base, hasF16Weights: gguf.tensors.contains { $0.type == .f16 })
        // A q8_0 cache holds MLA latent rows: refused from the metadata, before any weight loads.
        if options.kvCacheType == .q8_0, try keys.optionalInt("attention.kv_lora_rank") == nil {
            throw ModelLoadError.unsupportedOption(
                "a q8_0 KV cache holds MLA latent rows (DeepSeek-V2/V3/R1); this \(keys.arch) model's attention keeps K and V rows: use --kv-cache-type f16, bf16 or f32")
        }
        var c = ModelContext(keys: keys, tensors: TensorLoader(gguf: gguf, options: options), options: options, matmul: matmul)
        let table = try c.tensors.matrix("token_embd.weight", rows: keys.vocabSize, cols: keys.embd)
        head = try LogitsHead(&c, embedding: table)
        body = try load(&c)
        c.tensors.finishProgress()
        if options.kvCacheType == .bf16 {
            let d = body.hyperparameters.headDim
            guard PagedAttentionKernels.bf16Supports(headSize: d) else {
                throw ModelLoadError.invalidHyperparameter(
                    key: "attention.key_length",
                    reason: "head size \(d) does not suit a bf16 KV cache (needs a multiple of 16 up to 1024); use --kv-cache-type f16")
            }
        }
        if options.kvCacheType == .q8_0, let latent = body.cacheLatentRank {
            let rope = body.hyperparameters.headDim - latent
            guard MLAQ8Kernels.supports(latentRank: latent, rope: rope) else {
                throw ModelLoadError.unsupportedOption(
                    "latent rows of \(latent) + \(rope) values do not suit a q8_0 KV cache (needs kv_lora_rank a multiple of 16 and a RoPE part of 4 to 256 values, a multiple of 4); use --kv-cache-type f16, bf16 or f32")
            }
        }
        embedding = TokenEmbedding(table: table, scale: body.embeddingScale)
        hyperparameters = body.hyperparameters
        tensors = c.tensors
        self.options = options
        self.gguf = gguf
        x = ScratchBuffer(count: T * keys.embd)
        h = ScratchBuffer(count: T * keys.embd)
        o = ScratchBuffer(count: T * keys.embd)
    }

    public func lockWeightsInMemory() -> String? {
        tensors.repacker.lockInMemory() ?? gguf.lockInMemory(excluding: tensors.repacker.releasedRanges)
    }

    /// A KV cache `[numLayers][numBlocks, blockSize, numKVHeads, headDim]` of the options' type: K and V, or
    /// (MLA) one latent row per token and no V.
    public func makeKVCache(numBlocks: Int, blockSize: Int) -> PagedKVCache {
        PagedKVCache(numLayers: hyperparameters.numLayers, numBlocks: numBlocks, blockSize: blockSize,
                     numKVHeads: hyperparameters.numKVHeads, headDim: hyperparameters.headDim, type: options.kvCacheType,
                     storesValues: body.cacheStoresValues, latentRank: body.cacheLatentRank ?? 0)
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>) {
        let hp = hyperparameters
        precondition(cache.numLayers == hp.numLayers && cache.numKVHeads == hp.numKVHeads && cache.headDim == hp.headDim
                     && cache.storesValues == body.cacheStoresValues, "KV cache was made for another model")
        tables.index(batch, cache: cache)
        body.reserve(contextLength: cache.slotCount)
        matmul.base.gemmForAnyTokenCount = batch.computesPrompt
        tables.withChunks(batch, chunk: options.maxBatchTokens) { range, inputs in
            chunk(range, inputs, cache: cache, logitRows: batch.logitRows, logits: logits)
        }
        head.cap(logits, rows: batch.logitRows.count)
    }

    /// One chunk of at most `maxBatchTokens` tokens (indices `range` of the batch).
    private func chunk(_ range: Range<Int>, _ inp: ChunkInputs, cache: PagedKVCache, logitRows: [Int],
                       logits: UnsafeMutablePointer<Float>) {
        let n = range.count, t0 = range.lowerBound, embd = hyperparameters.embeddingLength
        let trace = Trace(hook: self.trace)
        embedding.lookup(inp.tokens + t0, n: n, into: x.pointer)                                // x [n, embd]
        trace("embeddings", -1, x.pointer, n, embd)
        body.run(x.pointer, Step(n: n, positions: inp.positions + t0, slots: inp.slots + t0, tables: inp.tables,
                                 tableStart: inp.tableStart + t0, cache: cache, h: h.pointer, o: o.pointer,
                                 trace: trace))                                                  // x [n, embd]
        head(range: range, logitRows: logitRows, x: x.pointer, scratch: h.pointer, matmul: matmul, trace: trace,
             logits: logits)                                                                     // [m, vocab]
    }
}
