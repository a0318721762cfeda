// Shared decoder of the GQA + Mixture-of-Experts architectures `qwen2moe` (Qwen2MoE.swift), `qwen3moe`
// (Qwen3MoE.swift) and Mixtral-style `llama` with experts (Mixtral.swift); each of those files names its sources
// and holds its switches (`MoEDecoderVariant`). llama.cpp src/models/{qwen2moe,qwen3moe,llama}.cpp.
// Block l: x += W_O · Attn(RoPE(Q), RoPE(K), V)(RMSNorm(x));  x += MoE(RMSNorm(x));  logits = W_out · RMSNorm(x).
import Compute
import Foundation
import GGUF

/// Per-architecture switches of `MoEDecoderModel`.
struct MoEDecoderVariant {
    let rope: Ops.RopeMode
    let qkvBias: Bool
    let qkNorm: Bool
    let sharedExpert: Bool
    let defaultNormalize: Bool

    /// The variant for a GGUF architecture name.
    /// - Throws: `ModelLoadError.unsupportedArchitecture` for other names.
    static func forArchitecture(_ arch: String) throws -> MoEDecoderVariant {
        switch arch {
        case "llama": return .mixtral
        case "qwen2moe": return .qwen2moe
        case "qwen3moe": return .qwen3moe
        default: throw ModelLoadError.unsupportedArchitecture(arch)
        }
    }
}

/// Attention weights of one block (GGUF `blk.N.attn_*`).
struct GQAWeights {
    let attnNorm: UnsafePointer<Float>          // [embd]
    let wq: WeightMatrix                        // [H * hd, embd]
    let wk: WeightMatrix                        // [KV * hd, embd]
    let wv: WeightMatrix                        // [KV * hd, embd]
    let bq: UnsafePointer<Float>?               // [H * hd]
    let bk: UnsafePointer<Float>?               // [KV * hd]
    let bv: UnsafePointer<Float>?               // [KV * hd]
    let qNorm: UnsafePointer<Float>?            // [hd]
    let kNorm: UnsafePointer<Float>?            // [hd]
    let wo: WeightMatrix                        // [embd, H * hd]
    let ffnNorm: UnsafePointer<Float>           // [embd]
}

/// A loaded `qwen2moe`, `qwen3moe` or Mixtral-style `llama` model.
public final class MoEDecoderModel: MixtureOfExpertsModel, @unchecked Sendable {
    public let hyperparameters: ModelHyperparameters
    public var trace: ForwardTrace?
    /// Run-time options it was loaded with.
    public let options: ModelOptions
    /// Routing hyper-parameters.
    public let routerConfig: RouterConfig
    /// MoE execution path (default: per-token for small batches, grouped otherwise).
    public var moeExecution: MoEExecution {
        get { moe.execution }
        set { moe.execution = newValue }
    }

    private let variant: MoEDecoderVariant
    private let gguf: GGUFFile
    private let loader: TensorLoader
    private let tokenEmbedding: WeightMatrix   // [vocab, embd]
    private let outputNorm: UnsafePointer<Float>
    private let output: WeightMatrix            // [vocab, embd]
    private let attn: [GQAWeights]
    private let experts: [MoEWeights]
    private let pool: ThreadPool
    private let repacker = WeightRepacker()
    private let matmul: RoundingMatmul
    private let attention: PagedAttention
    private let moe: MoERunner
    private let invFreq: [Double]               // [hd / 2]
    private let index = BatchIndex()

    private let x: ScratchBuffer        // [T, embd] residual stream
    private let h: ScratchBuffer        // [T, embd] normed input
    private let o: ScratchBuffer        // [T, embd] block output
    private let q: ScratchBuffer        // [T, H * hd]
    private let k: ScratchBuffer        // [T, KV * hd]
    private let v: ScratchBuffer        // [T, KV * hd]
    private let attnOut: ScratchBuffer  // [T, H * hd]
    private let cosBuf: ScratchBuffer   // [T, hd / 2]
    private let sinBuf: ScratchBuffer   // [T, hd / 2]

    /// Loads hyper-parameters and weights; see `ModelLoader.load` for errors.
    public init(gguf: GGUFFile, options: ModelOptions) throws {
        let arch = try gguf.architecture()
        let variant = try MoEDecoderVariant.forArchitecture(arch)
        self.variant = variant
        func key(_ k: String) -> String { "\(arch).\(k)" }
        func bad(_ k: String, _ r: String) -> ModelLoadError { .invalidHyperparameter(key: key(k), reason: r) }
        let embd = try gguf.int(key("embedding_length"))
        let numLayers = try gguf.int(key("block_count"))
        let H = try gguf.int(key("attention.head_count"))
        let KV = try gguf.optionalInt(key("attention.head_count_kv")) ?? H
        let hd = try gguf.optionalInt(key("attention.key_length")) ?? embd / max(H, 1)
        guard H > 0, KV > 0, H % KV == 0 else { throw bad("attention.head_count_kv", "\(H) heads not divisible into \(KV) KV heads") }
        if let vl = try gguf.optionalInt(key("attention.value_length")), vl != hd { throw bad("attention.value_length", "\(vl) != key_length \(hd)") }
        if let rd = try gguf.optionalInt(key("rope.dimension_count")), rd != hd { throw bad("rope.dimension_count", "partial RoPE (\(rd) of \(hd)) is not supported") }
        if let s = try gguf.optionalString(key("rope.scaling.type")), s != "none" { throw bad("rope.scaling.type", "RoPE scaling '\(s)' is not supported by \(arch) MoE") }
        let expertFFN = try gguf.optionalInt(key("expert_feed_forward_length")) ?? gguf.int(key("feed_forward_length"))
        let sharedFFN = variant.sharedExpert ? try gguf.optionalInt(key("expert_shared_feed_forward_length")) ?? 0 : 0
        let gatingID = try gguf.optionalInt(key("expert_gating_func")) ?? GatingFunction.softmax.rawValue
        guard let gating = GatingFunction(rawValue: gatingID) else { throw bad("expert_gating_func", "unknown value \(gatingID)") }
        let rc = RouterConfig(numExperts: try gguf.int(key("expert_count")), topK: try gguf.int(key("expert_used_count")),
                              gating: gating, normalizeWeights: try gguf.optionalBool(key("expert_weights_norm")) ?? variant.defaultNormalize,
                              weightScale: Float(try gguf.optionalDouble(key("expert_weights_scale")) ?? 1))
        try rc.validate(architecture: arch)
        routerConfig = rc
        let eps = Float(try gguf.optionalDouble(key("attention.layer_norm_rms_epsilon")) ?? 1e-6)
        let theta = try gguf.optionalDouble(key("rope.freq_base")) ?? 10_000
        guard let embdInfo = gguf.tensorInfo(named: "token_embd.weight") else { throw ModelLoadError.missingTensor("token_embd.weight") }
        let vocab = try gguf.optionalInt(key("vocab_size")) ?? embdInfo.dimensions.last ?? 0
        let hp = ModelHyperparameters(
            architecture: arch, vocabSize: vocab, contextLength: try gguf.optionalInt(key("context_length")) ?? 4096,
            numLayers: numLayers, embeddingLength: embd, numHeads: H, numKVHeads: KV, headDim: hd,
            feedForwardLength: expertFFN, rmsNormEpsilon: eps, ropeTheta: theta, ropePositionScale: 1)
        hyperparameters = hp
        self.options = options
        self.gguf = gguf

        var tl = TensorLoader(gguf: gguf)
        let repacker = self.repacker
        func rp(_ w: WeightMatrix) -> WeightMatrix { repacker.prepare(w, options) }
        tokenEmbedding = try tl.matrix("token_embd.weight", rows: vocab, cols: embd)
        outputNorm = try tl.vector("output_norm.weight", count: embd)
        output = rp(tl.has("output.weight") ? try tl.matrix("output.weight", rows: vocab, cols: embd) : tokenEmbedding)
        var attn: [GQAWeights] = [], experts: [MoEWeights] = []
        for l in 0..<numLayers {
            let p = "blk.\(l)."
            attn.append(GQAWeights(
                attnNorm: try tl.vector(p + "attn_norm.weight", count: embd),
                wq: rp(try tl.matrix(p + "attn_q.weight", rows: H * hd, cols: embd)),
                wk: rp(try tl.matrix(p + "attn_k.weight", rows: KV * hd, cols: embd)),
                wv: rp(try tl.matrix(p + "attn_v.weight", rows: KV * hd, cols: embd)),
                bq: variant.qkvBias ? try tl.vector(p + "attn_q.bias", count: H * hd) : nil,
                bk: variant.qkvBias ? try tl.vector(p + "attn_k.bias", count: KV * hd) : nil,
                bv: variant.qkvBias ? try tl.vector(p + "attn_v.bias", count: KV * hd) : nil,
                qNorm: variant.qkNorm ? try tl.vector(p + "attn_q_norm.weight", count: hd) : nil,
                kNorm: variant.qkNorm ? try tl.vector(p + "attn_k_norm.weight", count: hd) : nil,
                wo: rp(try tl.matrix(p + "attn_output.weight", rows: embd, cols: H * hd)),
                ffnNorm: try tl.vector(p + "ffn_norm.weight", count: embd)))
            experts.append(try MoEWeights.load(&tl, layer: l, embd: embd, expertFFN: expertFFN, sharedFFN: sharedFFN,
                                               config: rc, repack: rp))
        }
        self.attn = attn
        self.experts = experts
        loader = tl
        invFreq = Ops.ropeInverseFrequencies(headDim: hd, theta: theta)

        let T = max(1, options.maxBatchTokens)
        let threads = max(1, options.threads)
        pool = ThreadPool(threads: threads)
        matmul = RoundingMatmul(Matmul(pool: pool, maxTokens: T, maxInDim: max(embd, expertFFN, sharedFFN, H * hd),
                        floatReference: options.floatReference),
                                hasF16Weights: gguf.tensors.contains { $0.type == .f16 })
        attention = PagedAttention(numHeads: H, numKVHeads: KV, headDim: hd, maxContext: hp.contextLength, threads: threads)
        moe = MoERunner(embd: embd, expertFFN: expertFFN, sharedFFN: sharedFFN, config: rc, maxTokens: T, matmul: matmul)
        x = ScratchBuffer(count: T * embd)
        h = ScratchBuffer(count: T * embd)
        o = ScratchBuffer(count: T * embd)
        q = ScratchBuffer(count: T * H * hd)
        k = ScratchBuffer(count: T * KV * hd)
        v = ScratchBuffer(count: T * KV * hd)
        attnOut = ScratchBuffer(count: T * H * hd)
        cosBuf = ScratchBuffer(count: T * hd / 2)
        sinBuf = ScratchBuffer(count: T * hd / 2)
    }

    /// A KV cache `[numLayers][numBlocks, blockSize, numKVHeads, headDim]` (K and V) of the options' type.
    public func makeKVCache(numBlocks: Int, blockSize: Int) -> PagedKVCache {
        PagedKVCache(numLayers: hyperparameters.numLayers, numBlocks: numBlocks, blockSize: blockSize,
                     numKVHeads: hyperparameters.numKVHeads, headDim: hyperparameters.headDim, type: options.kvCacheType)
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>) {
        precondition(cache.numLayers == hyperparameters.numLayers && cache.numKVHeads == hyperparameters.numKVHeads
                     && cache.headDim == hyperparameters.headDim && cache.storesValues, "KV cache was made for another model")
        attention.reserve(contextLength: cache.slotCount)
        index.index(batch, cache: cache)
        DecoderSupport.chunks(batch, index: index, maxTokens: options.maxBatchTokens) { range, p in
            forwardChunk(range, p, cache: cache, logitRows: batch.logitRows, logits: logits)
        }
    }

    private func forwardChunk(_ range: Range<Int>, _ p: BatchPointers, cache: PagedKVCache, logitRows: [Int],
                              logits: UnsafeMutablePointer<Float>) {
        let hp = hyperparameters
        let n = range.count, t0 = range.lowerBound, embd = hp.embeddingLength, eps = hp.rmsNormEpsilon
        let hd = hp.headDim, half = hd / 2, H = hp.numHeads, KV = hp.numKVHeads
        let x = x.pointer, h = h.pointer, o = o.pointer, q = q.pointer, k = k.pointer, v = v.pointer
        for t in 0..<n {                                                                  // x [n, embd]
            let id = Int(p.tokens[t0 + t])
            precondition(id >= 0 && id < hp.vocabSize, "token id \(id) outside the vocabulary")
            tokenEmbedding.dequantizeRow(id, into: x + t * embd)
        }
        DecoderSupport.ropeTable(positions: p.positions + t0, n: n, invFreq: invFreq, cos: cosBuf.pointer, sin: sinBuf.pointer)
        emit("embeddings", -1, x, n, embd)
        for l in 0..<hp.numLayers {
            let w = attn[l]
            Ops.rmsNorm(x, weight: w.attnNorm, eps: eps, n: embd, count: n, out: h)                 // [n, embd]
            matmul(h, numTokens: n, w.wq, q, w.wk, k, w.wv, v)                                     // q [n, H*hd], k/v [n, KV*hd]
            if let bq = w.bq, let bk = w.bk, let bv = w.bv {
                for t in 0..<n {
                    Ops.add(bq, into: q + t * H * hd, n: H * hd)
                    Ops.add(bk, into: k + t * KV * hd, n: KV * hd)
                    Ops.add(bv, into: v + t * KV * hd, n: KV * hd)
                }
            }
            if let qn = w.qNorm, let kn = w.kNorm {                                                 // per-head RMSNorm
                Ops.rmsNorm(q, weight: qn, eps: eps, n: hd, count: n * H, out: q)
                Ops.rmsNorm(k, weight: kn, eps: eps, n: hd, count: n * KV, out: k)
            }
            for t in 0..<n {
                Ops.rope(q + t * H * hd, numHeads: H, headDim: hd, cos: cosBuf.pointer + t * half,
                         sin: sinBuf.pointer + t * half, mode: variant.rope)
                Ops.rope(k + t * KV * hd, numHeads: KV, headDim: hd, cos: cosBuf.pointer + t * half,
                         sin: sinBuf.pointer + t * half, mode: variant.rope)
            }
            attention.store(layer: l, cache: cache, k: k, v: v, slots: p.slots + t0, count: n)
            attention.run(layer: l, cache: cache, q: q, positions: p.positions + t0, tables: p.tables,
                          tableStart: p.tableStart + t0, count: n, out: attnOut.pointer, pool: pool)  // [n, H*hd]
            matmul(attnOut.pointer, numTokens: n, w.wo, o)                                          // [n, embd]
            Ops.add(o, into: x, n: n * embd)
            Ops.rmsNorm(x, weight: w.ffnNorm, eps: eps, n: embd, count: n, out: h)                 // [n, embd]
            let topK = routerConfig.topK
            moe.run(experts[l], x: h, n: n, out: o, routing: trace == nil ? nil : { ids, weights in  // [n, embd]
                let f = (0..<(n * topK)).map { Float(ids[$0]) }
                f.withUnsafeBufferPointer { self.trace?("moe_topk_ids", l, $0, [n, topK]) }
                self.trace?("moe_topk_weights", l, UnsafeBufferPointer(start: weights, count: n * topK), [n, topK])
            })
            Ops.add(o, into: x, n: n * embd)
            emit("layer_output", l, x, n, embd)
        }
        if trace != nil {
            Ops.rmsNorm(x, weight: outputNorm, eps: eps, n: embd, count: n, out: h)
            emit("output_norm", -1, h, n, embd)
        }
        DecoderSupport.logits(range: range, logitRows: logitRows, x: x, h: h, outputNorm: outputNorm, eps: eps,
                              embd: embd, vocab: hp.vocabSize, output: output, matmul: matmul, logits: logits)
    }

    private func emit(_ name: String, _ layer: Int, _ p: UnsafeMutablePointer<Float>, _ rows: Int, _ cols: Int) {
        guard let trace else { return }
        trace(name, layer, UnsafeBufferPointer(start: p, count: rows * cols), [rows, cols])
    }
}
