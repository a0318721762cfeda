// The `qwen2` architecture (GGUF `general.architecture = qwen2`): Qwen2, Qwen2.5, Qwen2.5-Coder, and the
// DeepSeek-R1-Distill-Qwen models.
//
// Follows llama.cpp src/models/qwen2.cpp (RMSNorm → Q/K/V projections **with biases** → RoPE in NEOX mode (halves
// rotate together: the converter does not permute Qwen's Q/K rows) → causal GQA attention → output projection
// (no bias) → residual → RMSNorm → SwiGLU FFN → residual; final RMSNorm; LM head `output.weight`, or the tied
// `token_embd.weight` when the file has none) and HF transformers models/qwen2/modeling_qwen2.py
// (Qwen2Attention: q/k/v_proj bias=True, o_proj bias=False; Qwen2MLP; Qwen2RMSNorm).
// Papers: Qwen2 Technical Report (Yang et al. 2024) §2.2.1; RoPE: Su et al. 2021 §3.4; GQA: Ainslie et al. 2023.
import Compute
import Foundation
import GGUF

/// Weights of one Qwen2 decoder block (GGUF names `blk.N.*`).
struct Qwen2Layer {
    let attnNorm: UnsafePointer<Float>   // [embd]
    let wq: WeightMatrix                 // [numHeads * headDim, embd]
    let wk: WeightMatrix                 // [numKVHeads * headDim, embd]
    let wv: WeightMatrix                 // [numKVHeads * headDim, embd]
    let bq: UnsafePointer<Float>         // [numHeads * headDim]
    let bk: UnsafePointer<Float>         // [numKVHeads * headDim]
    let bv: UnsafePointer<Float>         // [numKVHeads * headDim]
    let wo: WeightMatrix                 // [embd, numHeads * headDim]
    let ffnNorm: UnsafePointer<Float>    // [embd]
    let gate: WeightMatrix               // [ffn, embd]
    let up: WeightMatrix                 // [ffn, embd]
    let down: WeightMatrix               // [embd, ffn]
}

/// A loaded `qwen2` model: weights in the GGUF mmap, per-step scratch sized at load.
public final class Qwen2Model: LanguageModel, @unchecked Sendable {
    public let hyperparameters: ModelHyperparameters
    public var trace: ForwardTrace?
    /// Run-time options it was loaded with.
    public let options: ModelOptions

    private let gguf: GGUFFile
    private let loader: TensorLoader
    private let tokenEmbedding: WeightMatrix   // [vocab, embd]
    private let outputNorm: UnsafePointer<Float>
    private let output: WeightMatrix            // [vocab, embd]
    private let layers: [Qwen2Layer]
    private let pool: ThreadPool
    private let repacker = WeightRepacker()
    private let matmul: Matmul
    private let attention: PagedAttention
    private let invFreq: [Double]               // [headDim / 2]
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
    private let cosBuf: ScratchBuffer   // [T, headDim / 2]
    private let sinBuf: ScratchBuffer   // [T, headDim / 2]

    /// Loads hyper-parameters (`qwen2.*` keys) and weights; see `ModelLoader.load` for errors.
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
        if let rd = try gguf.optionalInt(key("rope.dimension_count")), rd != headDim {
            throw ModelLoadError.invalidHyperparameter(key: key("rope.dimension_count"), reason: "partial RoPE (\(rd) of \(headDim)) is not supported")
        }
        var positionScale = 1.0
        if let scaling = try gguf.optionalString(key("rope.scaling.type")), scaling != "none" {
            guard scaling == "linear", let factor = try gguf.optionalDouble(key("rope.scaling.factor")), factor > 0 else {
                throw ModelLoadError.invalidHyperparameter(key: key("rope.scaling.type"), reason: "RoPE scaling '\(scaling)' is not supported by qwen2")
            }
            positionScale = 1 / factor
        }
        guard let embdInfo = gguf.tensorInfo(named: "token_embd.weight") else { throw ModelLoadError.missingTensor("token_embd.weight") }
        let vocab = try gguf.optionalInt(key("vocab_size")) ?? embdInfo.dimensions.last ?? 0
        let theta = try gguf.optionalDouble(key("rope.freq_base")) ?? 10_000
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
        var layers: [Qwen2Layer] = []
        for i in 0..<numLayers {
            let p = "blk.\(i)."
            layers.append(Qwen2Layer(
                attnNorm: try tl.vector(p + "attn_norm.weight", count: embd),
                wq: rp(try tl.matrix(p + "attn_q.weight", rows: qw, cols: embd)),
                wk: rp(try tl.matrix(p + "attn_k.weight", rows: kvw, cols: embd)),
                wv: rp(try tl.matrix(p + "attn_v.weight", rows: kvw, cols: embd)),
                bq: try tl.vector(p + "attn_q.bias", count: qw),
                bk: try tl.vector(p + "attn_k.bias", count: kvw),
                bv: try tl.vector(p + "attn_v.bias", count: kvw),
                wo: rp(try tl.matrix(p + "attn_output.weight", rows: embd, cols: qw)),
                ffnNorm: try tl.vector(p + "ffn_norm.weight", count: embd),
                gate: rp(try tl.matrix(p + "ffn_gate.weight", rows: ffn, cols: embd)),
                up: rp(try tl.matrix(p + "ffn_up.weight", rows: ffn, cols: embd)),
                down: rp(try tl.matrix(p + "ffn_down.weight", rows: embd, cols: ffn))))
        }
        self.layers = layers
        invFreq = Ops.ropeInverseFrequencies(headDim: headDim, theta: theta)
        loader = tl

        let threads = max(1, options.threads)
        let T = max(1, options.maxBatchTokens)
        pool = ThreadPool(threads: threads)
        matmul = Matmul(pool: pool, maxTokens: T, maxInDim: max(embd, ffn, qw), floatReference: options.floatReference)
        attention = PagedAttention(numHeads: numHeads, numKVHeads: numKVHeads, headDim: headDim,
                                   maxContext: min(hp.contextLength, 4096), threads: threads)
        x = ScratchBuffer(count: T * embd)
        h = ScratchBuffer(count: T * embd)
        q = ScratchBuffer(count: T * qw)
        k = ScratchBuffer(count: T * kvw)
        v = ScratchBuffer(count: T * kvw)
        attnOut = ScratchBuffer(count: T * qw)
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
        batchTables.build(batch, cache: cache, hp: hyperparameters)
        attention.reserve(contextLength: cache.slotCount)
        if batch.tokens.isEmpty { return }
        batchTables.withChunks(batch, chunk: options.maxBatchTokens) { range, inputs in
            forwardChunk(range, inputs, cache: cache, logitRows: batch.logitRows, logits: logits)
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

        // Token embeddings and RoPE angles.                                     // x [n, embd]
        for t in 0..<n {
            let id = Int(inp.tokens[t0 + t])
            precondition(id >= 0 && id < hp.vocabSize, "token id \(id) outside the vocabulary")
            tokenEmbedding.dequantizeRow(id, into: x + t * embd)
            invFreq.withUnsafeBufferPointer { f in
                let p = Double(inp.positions[t0 + t]) * hp.ropePositionScale
                for i in 0..<half {
                    cosBuf.pointer[t * half + i] = Float(Foundation.cos(p * f[i]))
                    sinBuf.pointer[t * half + i] = Float(Foundation.sin(p * f[i]))
                }
            }
        }
        emit("embeddings", -1, x, n, embd)

        for (l, layer) in layers.enumerated() {
            Ops.rmsNorm(x, weight: layer.attnNorm, eps: eps, n: embd, count: n, out: h)       // [n, embd]
            matmul(h, numTokens: n, layer.wq, q, layer.wk, k, layer.wv, v)                  // q [n, H*hd], k/v [n, KV*hd]
            for t in 0..<n {
                Ops.add(layer.bq, into: q + t * qw, n: qw)
                Ops.add(layer.bk, into: k + t * kvw, n: kvw)
                Ops.add(layer.bv, into: v + t * kvw, n: kvw)
                Ops.rope(q + t * qw, numHeads: hp.numHeads, headDim: hd, cos: cosBuf.pointer + t * half,
                         sin: sinBuf.pointer + t * half, mode: .neox)
                Ops.rope(k + t * kvw, numHeads: hp.numKVHeads, headDim: hd, cos: cosBuf.pointer + t * half,
                         sin: sinBuf.pointer + t * half, mode: .neox)
            }
            attention.store(layer: l, cache: cache, k: k, v: v, slots: inp.slots + t0, count: n)
            attention.run(layer: l, cache: cache, q: q, positions: inp.positions + t0, tables: inp.tables,
                          tableStart: inp.tableStart + t0, count: n, out: attnOut, pool: pool)   // [n, H*hd]
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
