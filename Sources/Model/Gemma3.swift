// The `gemma3` architecture (GGUF `general.architecture = gemma3`): Gemma 3 text models (270m ... 27b).
//
// Follows llama.cpp src/models/gemma3.cpp and the gemma3 hyper-parameters in src/llama-model.cpp, and HF
// transformers models/gemma3/modeling_gemma3.py (Gemma3TextScaledWordEmbedding, Gemma3DecoderLayer,
// Gemma3RMSNorm, Gemma3MLP). Paper: Gemma 3 Technical Report (Gemma Team 2025) §2.
//   x = embedding · √embd
//   per layer: h = RMSNorm(x)·attn_norm → Q/K/V → RMSNorm per head of Q and K (attn_q_norm / attn_k_norm) →
//     RoPE NEOX (local layers: base `rope.freq_base_swa`, default 10000, no scaling; global layers:
//     `rope.freq_base` with the file's linear scaling) → attention (scale `query_pre_attn_scalar`^-½ =
//     1/√headDim, 1/√(embd/heads) for the 62-layer 27B, as llama.cpp; local layers see only the last
//     `attention.sliding_window` positions) → attn_output → RMSNorm·post_attention_norm → residual;
//     RMSNorm·ffn_norm → GeGLU (gelu tanh(gate) · up) → ffn_down → RMSNorm·post_ffw_norm → residual.
//   Layer il is global when (il + 1) % 6 == 0 (llama.cpp set_swa_pattern(6); HF sliding_window_pattern 6).
//   Final RMSNorm·output_norm, LM head = tied token_embd (or output.weight), optional final logit soft-capping.
// NOTE: HF's Gemma RMSNorm multiplies by (1 + w); convert_hf_to_gguf.py stores w + 1 in the GGUF, so every norm
// here is a plain RMSNorm times the stored weight (as llama.cpp's build_norm does).
import Compute
import Foundation
import GGUF

/// Weights of one Gemma 3 decoder block (GGUF names `blk.N.*`).
struct Gemma3Layer {
    let attnNorm: UnsafePointer<Float>       // [embd]
    let wq: WeightMatrix                     // [numHeads * headDim, embd]
    let wk: WeightMatrix                     // [numKVHeads * headDim, embd]
    let wv: WeightMatrix                     // [numKVHeads * headDim, embd]
    let qNorm: UnsafePointer<Float>          // [headDim]
    let kNorm: UnsafePointer<Float>          // [headDim]
    let wo: WeightMatrix                     // [embd, numHeads * headDim]
    let postAttnNorm: UnsafePointer<Float>   // [embd]
    let ffnNorm: UnsafePointer<Float>        // [embd]
    let gate: WeightMatrix                   // [ffn, embd]
    let up: WeightMatrix                     // [ffn, embd]
    let down: WeightMatrix                   // [embd, ffn]
    let postFFNNorm: UnsafePointer<Float>    // [embd]
    /// Sliding window in tokens for local layers, 0 for global ones.
    let window: Int
}

/// A loaded `gemma3` model: weights in the GGUF mmap, per-step scratch sized at load.
public final class Gemma3Model: LanguageModel, @unchecked Sendable {
    public let hyperparameters: ModelHyperparameters
    public var trace: ForwardTrace?
    /// Run-time options it was loaded with.
    public let options: ModelOptions
    /// Sliding window of the local layers (`gemma3.attention.sliding_window`), 0 = none.
    public let slidingWindow: Int
    /// RoPE base of the local (sliding-window) layers.
    public let localRopeTheta: Double
    /// Final logit soft-capping `c·tanh(logit/c)` (`gemma3.final_logit_softcapping`), 0 = off.
    public let finalLogitSoftcap: Float

    private let gguf: GGUFFile
    private let loader: TensorLoader
    private let tokenEmbedding: WeightMatrix   // [vocab, embd]
    private let outputNorm: UnsafePointer<Float>
    private let output: WeightMatrix            // [vocab, embd]
    private let layers: [Gemma3Layer]
    private let pool: ThreadPool
    private let repacker = WeightRepacker()
    private let matmul: Matmul
    private let attention: PagedAttention
    private let invFreqGlobal: [Double]         // [headDim / 2]
    private let invFreqLocal: [Double]          // [headDim / 2]
    private var batchTables = BatchTables()

    // Per-step scratch, `T = options.maxBatchTokens`.
    private let x: ScratchBuffer        // [T, embd] residual stream
    private let h: ScratchBuffer        // [T, embd] normed input / projection output
    private let q: ScratchBuffer        // [T, numHeads * headDim]
    private let k: ScratchBuffer        // [T, numKVHeads * headDim]
    private let v: ScratchBuffer        // [T, numKVHeads * headDim]
    private let attnOut: ScratchBuffer  // [T, numHeads * headDim]
    private let gateBuf: ScratchBuffer  // [T, ffn]
    private let upBuf: ScratchBuffer    // [T, ffn]
    private let cosG: ScratchBuffer     // [T, headDim / 2] global layers
    private let sinG: ScratchBuffer     // [T, headDim / 2]
    private let cosL: ScratchBuffer     // [T, headDim / 2] local layers
    private let sinL: ScratchBuffer     // [T, headDim / 2]

    /// Loads hyper-parameters (`gemma3.*` keys) and weights; see `ModelLoader.load` for errors.
    public init(gguf: GGUFFile, options: ModelOptions) throws {
        let arch = try gguf.architecture()
        func key(_ k: String) -> String { "\(arch).\(k)" }
        let embd = try gguf.int(key("embedding_length"))
        let numHeads = try gguf.int(key("attention.head_count"))
        let numKVHeads = try gguf.optionalInt(key("attention.head_count_kv")) ?? numHeads
        let headDim = try gguf.optionalInt(key("attention.key_length")) ?? embd / max(numHeads, 1)
        let numLayers = try gguf.int(key("block_count"))
        let ffn = try gguf.int(key("feed_forward_length"))
        guard numHeads > 0, numKVHeads > 0, numHeads % numKVHeads == 0, headDim % 2 == 0 else {
            throw ModelLoadError.invalidHyperparameter(key: key("attention.head_count_kv"),
                                                       reason: "\(numHeads) heads not divisible into \(numKVHeads) KV heads of even width")
        }
        if let vl = try gguf.optionalInt(key("attention.value_length")), vl != headDim {
            throw ModelLoadError.invalidHyperparameter(key: key("attention.value_length"), reason: "\(vl) != key_length \(headDim)")
        }
        var positionScale = 1.0
        if let scaling = try gguf.optionalString(key("rope.scaling.type")), scaling != "none" {
            guard scaling == "linear", let factor = try gguf.optionalDouble(key("rope.scaling.factor")), factor > 0 else {
                throw ModelLoadError.invalidHyperparameter(key: key("rope.scaling.type"), reason: "RoPE scaling '\(scaling)' is not supported by gemma3")
            }
            positionScale = 1 / factor
        }
        guard let embdInfo = gguf.tensorInfo(named: "token_embd.weight") else { throw ModelLoadError.missingTensor("token_embd.weight") }
        let vocab = try gguf.optionalInt(key("vocab_size")) ?? embdInfo.dimensions.last ?? 0
        let theta = try gguf.optionalDouble(key("rope.freq_base")) ?? 10_000
        let window = try gguf.optionalInt(key("attention.sliding_window")) ?? 0
        slidingWindow = max(0, window)
        localRopeTheta = window > 0 ? (try gguf.optionalDouble(key("rope.freq_base_swa")) ?? 10_000) : theta
        finalLogitSoftcap = Float(try gguf.optionalDouble(key("final_logit_softcapping")) ?? 0)
        let hp = ModelHyperparameters(
            architecture: arch, vocabSize: vocab, contextLength: try gguf.optionalInt(key("context_length")) ?? 32768,
            numLayers: numLayers, embeddingLength: embd, numHeads: numHeads, numKVHeads: numKVHeads, headDim: headDim,
            feedForwardLength: ffn, rmsNormEpsilon: Float(try gguf.optionalDouble(key("attention.layer_norm_rms_epsilon")) ?? 1e-6),
            ropeTheta: theta, ropePositionScale: positionScale)
        hyperparameters = hp
        self.options = options
        self.gguf = gguf

        var tl = TensorLoader(gguf: gguf)
        let repacker = self.repacker
        func rp(_ w: WeightMatrix) -> WeightMatrix { repacker.prepare(w, options) }
        tokenEmbedding = try tl.matrix("token_embd.weight", rows: vocab, cols: embd)
        outputNorm = try tl.vector("output_norm.weight", count: embd)
        output = rp(tl.has("output.weight") ? try tl.matrix("output.weight", rows: vocab, cols: embd) : tokenEmbedding)
        let qw = numHeads * headDim, kvw = numKVHeads * headDim
        var layers: [Gemma3Layer] = []
        for i in 0..<numLayers {
            let p = "blk.\(i)."
            let global = window <= 0 || (i + 1) % 6 == 0
            layers.append(Gemma3Layer(
                attnNorm: try tl.vector(p + "attn_norm.weight", count: embd),
                wq: rp(try tl.matrix(p + "attn_q.weight", rows: qw, cols: embd)),
                wk: rp(try tl.matrix(p + "attn_k.weight", rows: kvw, cols: embd)),
                wv: rp(try tl.matrix(p + "attn_v.weight", rows: kvw, cols: embd)),
                qNorm: try tl.vector(p + "attn_q_norm.weight", count: headDim),
                kNorm: try tl.vector(p + "attn_k_norm.weight", count: headDim),
                wo: rp(try tl.matrix(p + "attn_output.weight", rows: embd, cols: qw)),
                postAttnNorm: try tl.vector(p + "post_attention_norm.weight", count: embd),
                ffnNorm: try tl.vector(p + "ffn_norm.weight", count: embd),
                gate: rp(try tl.matrix(p + "ffn_gate.weight", rows: ffn, cols: embd)),
                up: rp(try tl.matrix(p + "ffn_up.weight", rows: ffn, cols: embd)),
                down: rp(try tl.matrix(p + "ffn_down.weight", rows: embd, cols: ffn)),
                postFFNNorm: try tl.vector(p + "post_ffw_norm.weight", count: embd),
                window: global ? 0 : window))
        }
        self.layers = layers
        invFreqGlobal = Ops.ropeInverseFrequencies(headDim: headDim, theta: theta)
        invFreqLocal = Ops.ropeInverseFrequencies(headDim: headDim, theta: localRopeTheta)
        loader = tl

        let threads = max(1, options.threads)
        let T = max(1, options.maxBatchTokens)
        pool = ThreadPool(threads: threads)
        matmul = Matmul(pool: pool, maxTokens: T, maxInDim: max(embd, ffn, qw), floatReference: options.floatReference)
        let scale = numLayers == 62 ? 1 / Float(embd / numHeads).squareRoot() : 1 / Float(headDim).squareRoot()
        attention = PagedAttention(numHeads: numHeads, numKVHeads: numKVHeads, headDim: headDim,
                                   maxContext: min(hp.contextLength, 4096), threads: threads, scale: scale)
        x = ScratchBuffer(count: T * embd)
        h = ScratchBuffer(count: T * embd)
        q = ScratchBuffer(count: T * qw)
        k = ScratchBuffer(count: T * kvw)
        v = ScratchBuffer(count: T * kvw)
        attnOut = ScratchBuffer(count: T * qw)
        gateBuf = ScratchBuffer(count: T * ffn)
        upBuf = ScratchBuffer(count: T * ffn)
        cosG = ScratchBuffer(count: T * headDim / 2)
        sinG = ScratchBuffer(count: T * headDim / 2)
        cosL = ScratchBuffer(count: T * headDim / 2)
        sinL = ScratchBuffer(count: T * headDim / 2)
    }

    public func makeKVCache(numBlocks: Int, blockSize: Int) -> PagedKVCache {
        PagedKVCache(numLayers: hyperparameters.numLayers, numBlocks: numBlocks, blockSize: blockSize,
                     numKVHeads: hyperparameters.numKVHeads, headDim: hyperparameters.headDim, type: options.kvCacheType)
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>) {
        batchTables.build(batch, cache: cache, hp: hyperparameters)
        attention.reserve(contextLength: cache.slotCount)
        if batch.tokens.isEmpty { return }
        batchTables.withChunks(batch, chunk: options.maxBatchTokens) { range, inputs in
            forwardChunk(range, inputs, cache: cache, logitRows: batch.logitRows, logits: logits)
        }
        if finalLogitSoftcap > 0 {
            let c = finalLogitSoftcap
            for i in 0..<(batch.logitRows.count * hyperparameters.vocabSize) { logits[i] = c * tanhf(logits[i] / c) }
        }
    }

    /// One chunk of at most `maxBatchTokens` tokens (indices `range` of the batch).
    private func forwardChunk(_ range: Range<Int>, _ inp: ChunkInputs, cache: PagedKVCache, logitRows: [Int],
                              logits: UnsafeMutablePointer<Float>) {
        let hp = hyperparameters
        let n = range.count, t0 = range.lowerBound
        let embd = hp.embeddingLength, eps = hp.rmsNormEpsilon
        let hd = hp.headDim, half = hd / 2
        let qw = hp.numHeads * hd, kvw = hp.numKVHeads * hd, ffn = hp.feedForwardLength
        let x = x.pointer, h = h.pointer, q = q.pointer, k = k.pointer, v = v.pointer
        let attnOut = attnOut.pointer, g = gateBuf.pointer, u = upBuf.pointer
        let embedScale = Float(embd).squareRoot()

        // Scaled token embeddings and the RoPE angles of both layer kinds.      // x [n, embd]
        for t in 0..<n {
            let id = Int(inp.tokens[t0 + t])
            precondition(id >= 0 && id < hp.vocabSize, "token id \(id) outside the vocabulary")
            tokenEmbedding.dequantizeRow(id, into: x + t * embd)
            for i in 0..<embd { x[t * embd + i] *= embedScale }
            let pos = Double(inp.positions[t0 + t])
            for i in 0..<half {
                let ag = pos * hp.ropePositionScale * invFreqGlobal[i], al = pos * invFreqLocal[i]
                cosG.pointer[t * half + i] = Float(Foundation.cos(ag))
                sinG.pointer[t * half + i] = Float(Foundation.sin(ag))
                cosL.pointer[t * half + i] = Float(Foundation.cos(al))
                sinL.pointer[t * half + i] = Float(Foundation.sin(al))
            }
        }
        emit("embeddings", -1, x, n, embd)

        for (l, layer) in layers.enumerated() {
            let (cs, sn) = layer.window > 0 ? (cosL.pointer, sinL.pointer) : (cosG.pointer, sinG.pointer)
            Ops.rmsNorm(x, weight: layer.attnNorm, eps: eps, n: embd, count: n, out: h)       // [n, embd]
            matmul(h, numTokens: n, layer.wq, q, layer.wk, k, layer.wv, v)                  // q [n, H*hd], k/v [n, KV*hd]
            Ops.rmsNorm(q, weight: layer.qNorm, eps: eps, n: hd, count: n * hp.numHeads, out: q)     // per head
            Ops.rmsNorm(k, weight: layer.kNorm, eps: eps, n: hd, count: n * hp.numKVHeads, out: k)
            for t in 0..<n {
                Ops.rope(q + t * qw, numHeads: hp.numHeads, headDim: hd, cos: cs + t * half, sin: sn + t * half, mode: .neox)
                Ops.rope(k + t * kvw, numHeads: hp.numKVHeads, headDim: hd, cos: cs + t * half, sin: sn + t * half, mode: .neox)
            }
            attention.store(layer: l, cache: cache, k: k, v: v, slots: inp.slots + t0, count: n)
            attention.run(layer: l, cache: cache, q: q, positions: inp.positions + t0, tables: inp.tables,
                          tableStart: inp.tableStart + t0, count: n, out: attnOut, pool: pool,
                          window: layer.window)                                              // [n, H*hd]
            matmul(attnOut, numTokens: n, layer.wo, h)                                       // [n, embd]
            Ops.rmsNorm(h, weight: layer.postAttnNorm, eps: eps, n: embd, count: n, out: h)
            Ops.add(h, into: x, n: n * embd)
            Ops.rmsNorm(x, weight: layer.ffnNorm, eps: eps, n: embd, count: n, out: h)      // [n, embd]
            matmul(h, numTokens: n, layer.gate, g, layer.up, u)                             // [n, ffn] each
            Ops.gatedActivation(gate: g, up: u, n: n * ffn, out: g, gelu: true, pool: pool)   // [n, ffn]
            matmul(g, numTokens: n, layer.down, h)                                           // [n, embd]
            Ops.rmsNorm(h, weight: layer.postFFNNorm, eps: eps, n: embd, count: n, out: h)
            Ops.add(h, into: x, n: n * embd)
            emit("layer_output", l, x, n, embd)
        }

        if trace != nil {
            Ops.rmsNorm(x, weight: outputNorm, eps: eps, n: embd, count: n, out: h)
            emit("output_norm", -1, h, n, embd)
        }
        let norm = outputNorm
        headLogits(range: range, logitRows: logitRows, x: x, embd: embd, vocab: hp.vocabSize, scratch: h,
                   norm: { Ops.rmsNorm($0, weight: norm, eps: eps, n: embd, out: $1) },
                   matmul: matmul, head: output, logits: logits)                            // [m, vocab]
    }

    private func emit(_ name: String, _ layer: Int, _ p: UnsafeMutablePointer<Float>, _ rows: Int, _ cols: Int) {
        guard let trace else { return }
        trace(name, layer, UnsafeBufferPointer(start: p, count: rows * cols), [rows, cols])
    }
}
