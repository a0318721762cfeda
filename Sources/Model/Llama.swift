// The `llama` architecture (GGUF `general.architecture = llama`): Llama 1/2/3, SmolLM2, Mistral-style dense models.
//
// Follows llama.cpp src/models/llama.cpp (graph: RMSNorm → Q/K/V → RoPE (NORM mode: adjacent pairs, because
// convert_hf_to_gguf.py permutes the Q/K rows) → causal GQA attention → output projection → residual →
// RMSNorm → SwiGLU FFN → residual; final RMSNorm; LM head = `output.weight` or the tied `token_embd.weight`)
// and HF transformers models/llama/modeling_llama.py (LlamaDecoderLayer, LlamaRMSNorm, LlamaMLP).
// Papers: Touvron et al. 2023 (LLaMA) §2.2; RoPE: Su et al. 2021 §3.4; GQA: Ainslie et al. 2023.
import CKernels
import Compute
import Foundation
import GGUF

/// Weights of one decoder block (GGUF names `blk.N.*`).
struct LlamaLayer {
    let attnNorm: UnsafePointer<Float>   // [embd]
    let wq: WeightMatrix                 // [numHeads * headDim, embd]
    let wk: WeightMatrix                 // [numKVHeads * headDim, embd]
    let wv: WeightMatrix                 // [numKVHeads * headDim, embd]
    let wo: WeightMatrix                 // [embd, numHeads * headDim]
    let ffnNorm: UnsafePointer<Float>    // [embd]
    let gate: WeightMatrix               // [ffn, embd]
    let up: WeightMatrix                 // [ffn, embd]
    let down: WeightMatrix               // [embd, ffn]
}

/// A loaded `llama` model: weights in the GGUF mmap, per-step scratch sized at load.
public final class LlamaModel: LanguageModel, @unchecked Sendable {
    public let hyperparameters: ModelHyperparameters
    public var trace: ForwardTrace?
    /// Run-time options it was loaded with.
    public let options: ModelOptions

    private let gguf: GGUFFile
    private let loader: TensorLoader
    private let tokenEmbedding: WeightMatrix   // [vocab, embd]
    private let outputNorm: UnsafePointer<Float>
    private let output: WeightMatrix            // [vocab, embd]
    private let layers: [LlamaLayer]
    private let pool: ThreadPool
    private let repacker = WeightRepacker()
    private let matmul: Matmul
    private let attention: PagedAttention
    private let invFreq: [Double]               // [headDim / 2]

    // Per-step scratch, `T = options.maxBatchTokens`.
    private let x: ScratchBuffer        // [T, embd] residual stream
    private let h: ScratchBuffer        // [T, embd] normed input / projection output
    private let q: ScratchBuffer        // [T, numHeads * headDim]
    private let k: ScratchBuffer        // [T, numKVHeads * headDim]
    private let v: ScratchBuffer        // [T, numKVHeads * headDim]
    private let attnOut: ScratchBuffer  // [T, numHeads * headDim]
    private let gateBuf: ScratchBuffer  // [T, ffn]
    private let upBuf: ScratchBuffer    // [T, ffn]
    private let cosBuf: ScratchBuffer   // [T, headDim / 2]
    private let sinBuf: ScratchBuffer   // [T, headDim / 2]
    // Per-step index scratch (grows only when a batch exceeds every earlier one).
    private var batchTables = BatchTables()  // per-token block-table index of the current batch

    /// Loads hyper-parameters and weights; see `ModelLoader.load` for errors.
    public init(gguf: GGUFFile, options: ModelOptions) throws {
        let arch = try gguf.architecture()
        func key(_ k: String) -> String { "\(arch).\(k)" }
        let embd = try gguf.int(key("embedding_length"))
        let numHeads = try gguf.int(key("attention.head_count"))
        let numKVHeads = try gguf.optionalInt(key("attention.head_count_kv")) ?? numHeads
        let headDim = try gguf.optionalInt(key("attention.key_length")) ?? embd / max(numHeads, 1)
        let numLayers = try gguf.int(key("block_count"))
        let ffn = try gguf.int(key("feed_forward_length"))
        guard numHeads > 0, numKVHeads > 0, numHeads % numKVHeads == 0 else {
            throw ModelLoadError.invalidHyperparameter(key: key("attention.head_count_kv"),
                                                       reason: "\(numHeads) heads not divisible into \(numKVHeads) KV heads")
        }
        if let vl = try gguf.optionalInt(key("attention.value_length")), vl != headDim {
            throw ModelLoadError.invalidHyperparameter(key: key("attention.value_length"), reason: "\(vl) != key_length \(headDim)")
        }
        if let rd = try gguf.optionalInt(key("rope.dimension_count")), rd != headDim {
            throw ModelLoadError.invalidHyperparameter(key: key("rope.dimension_count"), reason: "partial RoPE (\(rd) of \(headDim)) is not supported")
        }
        var positionScale = 1.0
        if let scaling = try gguf.optionalString(key("rope.scaling.type")), scaling != "none" {
            guard scaling == "linear", let factor = try gguf.optionalDouble(key("rope.scaling.factor")), factor > 0 else {
                throw ModelLoadError.invalidHyperparameter(key: key("rope.scaling.type"), reason: "RoPE scaling '\(scaling)' is not supported by llama")
            }
            positionScale = 1 / factor
        }
        guard let embdInfo = gguf.tensorInfo(named: "token_embd.weight") else { throw ModelLoadError.missingTensor("token_embd.weight") }
        let vocab = try gguf.optionalInt(key("vocab_size")) ?? embdInfo.dimensions.last ?? 0
        let theta = try gguf.optionalDouble(key("rope.freq_base")) ?? 10_000
        let hp = ModelHyperparameters(
            architecture: arch, vocabSize: vocab, contextLength: try gguf.optionalInt(key("context_length")) ?? 4096,
            numLayers: numLayers, embeddingLength: embd, numHeads: numHeads, numKVHeads: numKVHeads, headDim: headDim,
            feedForwardLength: ffn, rmsNormEpsilon: Float(try gguf.optionalDouble(key("attention.layer_norm_rms_epsilon")) ?? 1e-5),
            ropeTheta: theta, ropePositionScale: positionScale)
        hyperparameters = hp
        self.options = options
        self.gguf = gguf

        var tl = TensorLoader(gguf: gguf)
        tokenEmbedding = try tl.matrix("token_embd.weight", rows: vocab, cols: embd)
        outputNorm = try tl.vector("output_norm.weight", count: embd)
        let out = tl.has("output.weight") ? try tl.matrix("output.weight", rows: vocab, cols: embd) : tokenEmbedding
        let repacker = self.repacker
        func rp(_ w: WeightMatrix) -> WeightMatrix { repacker.prepare(w, options) }
        output = rp(out)
        var layers: [LlamaLayer] = []
        for i in 0..<numLayers {
            let p = "blk.\(i)."
            layers.append(LlamaLayer(
                attnNorm: try tl.vector(p + "attn_norm.weight", count: embd),
                wq: rp(try tl.matrix(p + "attn_q.weight", rows: numHeads * headDim, cols: embd)),
                wk: rp(try tl.matrix(p + "attn_k.weight", rows: numKVHeads * headDim, cols: embd)),
                wv: rp(try tl.matrix(p + "attn_v.weight", rows: numKVHeads * headDim, cols: embd)),
                wo: rp(try tl.matrix(p + "attn_output.weight", rows: embd, cols: numHeads * headDim)),
                ffnNorm: try tl.vector(p + "ffn_norm.weight", count: embd),
                gate: rp(try tl.matrix(p + "ffn_gate.weight", rows: ffn, cols: embd)),
                up: rp(try tl.matrix(p + "ffn_up.weight", rows: ffn, cols: embd)),
                down: rp(try tl.matrix(p + "ffn_down.weight", rows: embd, cols: ffn))))
        }
        self.layers = layers
        var freqs = Ops.ropeInverseFrequencies(headDim: headDim, theta: theta)
        if tl.has("rope_freqs.weight") {   // Llama 3.1 long-context factors divide the frequencies.
            let f = try tl.vector("rope_freqs.weight", count: headDim / 2)
            for i in 0..<freqs.count { freqs[i] /= Double(f[i]) }
        }
        invFreq = freqs
        loader = tl

        let threads = max(1, options.threads)
        let T = max(1, options.maxBatchTokens)
        pool = ThreadPool(threads: threads)
        matmul = Matmul(pool: pool, maxTokens: T, maxInDim: max(embd, ffn, numHeads * headDim),
                        floatReference: options.floatReference)
        attention = PagedAttention(numHeads: numHeads, numKVHeads: numKVHeads, headDim: headDim,
                                   maxContext: hp.contextLength, threads: threads)
        x = ScratchBuffer(count: T * embd)
        h = ScratchBuffer(count: T * embd)
        q = ScratchBuffer(count: T * numHeads * headDim)
        k = ScratchBuffer(count: T * numKVHeads * headDim)
        v = ScratchBuffer(count: T * numKVHeads * headDim)
        attnOut = ScratchBuffer(count: T * numHeads * headDim)
        gateBuf = ScratchBuffer(count: T * ffn)
        upBuf = ScratchBuffer(count: T * ffn)
        cosBuf = ScratchBuffer(count: T * headDim / 2)
        sinBuf = ScratchBuffer(count: T * headDim / 2)
    }

    public func makeKVCache(numBlocks: Int, blockSize: Int) -> PagedKVCache {
        PagedKVCache(numLayers: hyperparameters.numLayers, numBlocks: numBlocks, blockSize: blockSize,
                     numKVHeads: hyperparameters.numKVHeads, headDim: hyperparameters.headDim, type: options.kvCacheType)
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>) {
        let n = batch.tokens.count
        batchTables.build(batch, cache: cache, hp: hyperparameters)
        attention.reserve(contextLength: cache.slotCount)
        if n == 0 { return }
        let T = max(1, options.maxBatchTokens)
        batchTables.tables.withUnsafeBufferPointer { tablesPtr in
            batchTables.tableStart.withUnsafeBufferPointer { startPtr in
                batch.tokens.withUnsafeBufferPointer { tok in
                    batch.positions.withUnsafeBufferPointer { pos in
                        batch.slotMapping.withUnsafeBufferPointer { slots in
                            var c0 = 0
                            while c0 < n {
                                let c1 = min(n, c0 + T)
                                forwardChunk(c0..<c1, tokens: tok.baseAddress!, positions: pos.baseAddress!,
                                             slots: slots.baseAddress!, tables: tablesPtr.baseAddress!,
                                             tableStart: startPtr.baseAddress!, cache: cache,
                                             logitRows: batch.logitRows, logits: logits)
                                c0 = c1
                            }
                        }
                    }
                }
            }
        }
    }

    /// One chunk of at most `maxBatchTokens` tokens (indices `range` of the batch).
    private func forwardChunk(_ range: Range<Int>, tokens: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
                              slots: UnsafePointer<Int32>, tables: UnsafePointer<Int32>, tableStart: UnsafePointer<Int32>,
                              cache: PagedKVCache, logitRows: [Int], logits: UnsafeMutablePointer<Float>) {
        let hp = hyperparameters
        let n = range.count, t0 = range.lowerBound
        let embd = hp.embeddingLength, eps = hp.rmsNormEpsilon
        let hd = hp.headDim, half = hd / 2
        let qw = hp.numHeads * hd, kvw = hp.numKVHeads * hd, ffn = hp.feedForwardLength
        let x = x.pointer, h = h.pointer, q = q.pointer, k = k.pointer, v = v.pointer
        let attnOut = attnOut.pointer, g = gateBuf.pointer, u = upBuf.pointer

        // Token embeddings and RoPE angles.                                     // x [n, embd]
        for t in 0..<n {
            let id = Int(tokens[t0 + t])
            precondition(id >= 0 && id < hp.vocabSize, "token id \(id) outside the vocabulary")
            tokenEmbedding.dequantizeRow(id, into: x + t * embd)
            invFreq.withUnsafeBufferPointer { f in
                let p = Double(positions[t0 + t]) * hp.ropePositionScale
                for i in 0..<half {
                    cosBuf.pointer[t * half + i] = Float(_cos(p * f[i]))
                    sinBuf.pointer[t * half + i] = Float(_sin(p * f[i]))
                }
            }
        }
        emit("embeddings", -1, x, n, embd)

        for (l, layer) in layers.enumerated() {
            Ops.rmsNorm(x, weight: layer.attnNorm, eps: eps, n: embd, count: n, out: h)       // [n, embd]
            matmul(h, numTokens: n, layer.wq, q, layer.wk, k, layer.wv, v)                  // q [n, H*hd], k/v [n, KV*hd]
            for t in 0..<n {
                Ops.rope(q + t * qw, numHeads: hp.numHeads, headDim: hd, cos: cosBuf.pointer + t * half,
                         sin: sinBuf.pointer + t * half, mode: .norm)
                Ops.rope(k + t * kvw, numHeads: hp.numKVHeads, headDim: hd, cos: cosBuf.pointer + t * half,
                         sin: sinBuf.pointer + t * half, mode: .norm)
            }
            attention.store(layer: l, cache: cache, k: k, v: v, slots: slots + t0, count: n)
            attention.run(layer: l, cache: cache, q: q, positions: positions + t0, tables: tables,
                          tableStart: tableStart + t0, count: n, out: attnOut, pool: pool)   // [n, H*hd]
            matmul(attnOut, numTokens: n, layer.wo, h)                                       // [n, embd]
            Ops.add(h, into: x, n: n * embd)
            Ops.rmsNorm(x, weight: layer.ffnNorm, eps: eps, n: embd, count: n, out: h)      // [n, embd]
            matmul(h, numTokens: n, layer.gate, g, layer.up, u)                             // [n, ffn] each
            Ops.gatedActivation(gate: g, up: u, n: n * ffn, out: g, pool: pool)   // [n, ffn]
            matmul(g, numTokens: n, layer.down, h)                                           // [n, embd]
            Ops.add(h, into: x, n: n * embd)
            emit("layer_output", l, x, n, embd)
        }

        if trace != nil {
            Ops.rmsNorm(x, weight: outputNorm, eps: eps, n: embd, count: n, out: h)
            emit("output_norm", -1, h, n, embd)
        }
        // Logits for the wanted rows of this chunk: consecutive output rows go through one matmul.
        var i = 0
        while i < logitRows.count {
            guard range.contains(logitRows[i]) else { i += 1; continue }
            var j = i
            while j < logitRows.count, range.contains(logitRows[j]), j - i < n { j += 1 }
            for r in i..<j {
                Ops.rmsNorm(x + (logitRows[r] - t0) * embd, weight: outputNorm, eps: eps, n: embd,
                            out: h + (r - i) * embd)                                          // [m, embd]
            }
            matmul(h, numTokens: j - i, output, logits + i * hp.vocabSize)                  // [m, vocab]
            i = j
        }
    }

    private func emit(_ name: String, _ layer: Int, _ p: UnsafeMutablePointer<Float>, _ rows: Int, _ cols: Int) {
        guard let trace else { return }
        trace(name, layer, UnsafeBufferPointer(start: p, count: rows * cols), [rows, cols])
    }
}

@inline(__always) private func _cos(_ a: Double) -> Double { Foundation.cos(a) }
@inline(__always) private func _sin(_ a: Double) -> Double { Foundation.sin(a) }
