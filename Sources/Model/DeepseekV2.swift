// The `deepseek2` architecture: DeepSeek-V2, DeepSeek-V2-Lite, DeepSeek-V3, DeepSeek-R1.
//
// Papers: DeepSeek-V2 (arXiv 2405.04434) §2.1 Multi-head Latent Attention (low-rank KV compression, decoupled RoPE,
// weight absorption for inference) and §2.2 DeepSeekMoE (shared + routed experts, group-limited routing);
// DeepSeek-V3 technical report (arXiv 2412.19437) §2.1.2 (sigmoid gating, auxiliary-loss-free balancing with a
// selection-only bias, normalised top-k weights × routed scaling factor).
// Reference implementations followed: llama.cpp src/models/deepseek2.cpp (MLA branch, NORM rope on the decoupled
// part, `kq_scale = mscale² / sqrt(n_embd_head_k)`, leading dense blocks, `build_moe_ffn` + shared experts) and HF
// transformers models/deepseek_v3/modeling_deepseek_v3.py (`DeepseekV3Attention`, `DeepseekV3MoE`, `yarn_get_mscale`).
//
// Layer l:  x += W_O · MLA(RMSNorm(x));  x += (l < leading_dense ? SwiGLU : MoE)(RMSNorm(x));  logits = W_out · RMSNorm(x)
import Compute
import Foundation
import GGUF

/// Feed-forward of one `deepseek2` block.
enum DeepseekFFN {
    /// Dense SwiGLU (`ffn_gate` / `ffn_up` `[ffn, embd]`, `ffn_down` `[embd, ffn]`): the leading blocks.
    case dense(gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix)
    /// Routed + shared experts.
    case moe(MoEWeights)
}

/// A loaded `deepseek2` model: MLA attention with a latent KV cache, DeepSeekMoE feed-forward.
public final class DeepseekV2Model: MixtureOfExpertsModel, @unchecked Sendable {
    public let hyperparameters: ModelHyperparameters
    public var trace: ForwardTrace?
    /// Run-time options it was loaded with.
    public let options: ModelOptions
    /// Routing hyper-parameters of the MoE blocks.
    public let routerConfig: RouterConfig
    /// Leading dense blocks (`deepseek2.leading_dense_block_count`).
    public let leadingDenseBlocks: Int
    /// Uses the expanded MLA reference (K/V materialised per head) instead of the absorbed form; slow.
    public var expandedAttention = false
    /// MoE execution path (default: per-token for small batches, grouped otherwise).
    public var moeExecution: MoEExecution {
        get { moe.execution }
        set { moe.execution = newValue }
    }

    let dims: MLADims
    private let gguf: GGUFFile
    private let loader: TensorLoader
    private let owned: [MLAWeights]
    private let tokenEmbedding: WeightMatrix   // [vocab, embd]
    private let outputNorm: UnsafePointer<Float>
    private let output: WeightMatrix            // [vocab, embd]
    private let attnNorm: [UnsafePointer<Float>]
    private let ffnNorm: [UnsafePointer<Float>]
    private let ffns: [DeepseekFFN]
    private let pool: ThreadPool
    private let repacker = WeightRepacker()
    private let matmul: RoundingMatmul
    private let mla: MLAAttention
    private let moe: MoERunner
    private let invFreq: [Double]               // [rope / 2] (YaRN-corrected when scaled)
    private let index = BatchIndex()

    private let x: ScratchBuffer        // [T, embd] residual stream
    private let h: ScratchBuffer        // [T, embd] normed input
    private let o: ScratchBuffer        // [T, embd] block output
    private let attnOut: ScratchBuffer  // [T, H * v]
    private let gateBuf: ScratchBuffer  // [T, ffn]
    private let upBuf: ScratchBuffer    // [T, ffn]
    private let cosBuf: ScratchBuffer   // [T, rope / 2]
    private let sinBuf: ScratchBuffer   // [T, rope / 2]

    /// Loads hyper-parameters and weights. Query compression is used when `blk.0.attn_q_a.weight` exists (the
    /// `q_lora_rank` key may be absent or 0 otherwise); the fused `attn_kv_b` layout is accepted as well.
    /// - Throws: `ModelLoadError` (missing tensor, shape mismatch, unsupported type, invalid/unsupported
    ///   hyper-parameter such as an unknown RoPE scaling); `GGUFError` for missing or mistyped keys.
    public init(gguf: GGUFFile, options: ModelOptions) throws {
        let arch = try gguf.architecture()
        func key(_ k: String) -> String { "\(arch).\(k)" }
        func bad(_ k: String, _ r: String) -> ModelLoadError { .invalidHyperparameter(key: key(k), reason: r) }
        let embd = try gguf.int(key("embedding_length"))
        let numLayers = try gguf.int(key("block_count"))
        let H = try gguf.int(key("attention.head_count"))
        let kvLora = try gguf.int(key("attention.kv_lora_rank"))
        let rope = try gguf.int(key("rope.dimension_count"))
        let qHead = try gguf.optionalInt(key("attention.key_length_mla")) ?? gguf.int(key("attention.key_length"))
        let vHead = try gguf.optionalInt(key("attention.value_length_mla")) ?? gguf.int(key("attention.value_length"))
        guard rope > 0, rope % 2 == 0, qHead > rope else { throw bad("rope.dimension_count", "\(rope) does not fit a \(qHead)-wide query head") }
        var qLora = try gguf.optionalInt(key("attention.q_lora_rank")) ?? 0
        if let qa = gguf.tensorInfo(named: "blk.0.attn_q_a.weight") {
            if qLora == 0 { qLora = qa.dimensions.count == 2 ? qa.dimensions[1] : 0 }
        } else {
            qLora = 0
        }
        let d = MLADims(numHeads: H, qLoraRank: qLora, kvLoraRank: kvLora, nope: qHead - rope, rope: rope, v: vHead)
        dims = d
        let ffn = try gguf.int(key("feed_forward_length"))
        let expertFFN = try gguf.int(key("expert_feed_forward_length"))
        let sharedFFN = (try gguf.optionalInt(key("expert_shared_count")) ?? 0) * expertFFN
        let leading = try gguf.optionalInt(key("leading_dense_block_count")) ?? 1
        guard leading >= 0, leading <= numLayers else { throw bad("leading_dense_block_count", "\(leading) of \(numLayers) blocks") }
        leadingDenseBlocks = leading
        let gatingID = try gguf.optionalInt(key("expert_gating_func")) ?? GatingFunction.softmax.rawValue
        guard let gating = GatingFunction(rawValue: gatingID) else { throw bad("expert_gating_func", "unknown value \(gatingID)") }
        let rc = RouterConfig(
            numExperts: try gguf.int(key("expert_count")), topK: try gguf.int(key("expert_used_count")), gating: gating,
            groupCount: try gguf.optionalInt(key("expert_group_count")) ?? 1,
            groupUsedCount: try gguf.optionalInt(key("expert_group_used_count")) ?? 1,
            normalizeWeights: try gguf.optionalBool(key("expert_weights_norm")) ?? false,
            weightScale: Float(try gguf.optionalDouble(key("expert_weights_scale")) ?? 1))
        if leading < numLayers { try rc.validate(architecture: arch) }
        routerConfig = rc
        let eps = Float(try gguf.optionalDouble(key("attention.layer_norm_rms_epsilon")) ?? 1e-6)
        let theta = try gguf.optionalDouble(key("rope.freq_base")) ?? 10_000

        // RoPE scaling and attention scale (llama.cpp deepseek2.cpp; HF yarn_get_mscale).
        var scale = 1 / Float(qHead).squareRoot()
        var freqs = Ops.ropeInverseFrequencies(headDim: rope, theta: theta)
        switch try gguf.optionalString(key("rope.scaling.type")) ?? "none" {
        case "none": break
        case "yarn":
            let factor = try gguf.optionalDouble(key("rope.scaling.factor")) ?? 1
            guard factor >= 1 else { throw bad("rope.scaling.factor", "YaRN factor \(factor) < 1") }
            if factor > 1 {
                let orig = try gguf.int(key("rope.scaling.original_context_length"))
                freqs = DecoderSupport.yarnInverseFrequencies(
                    dim: rope, base: theta, factor: factor, originalContext: orig,
                    betaFast: try gguf.optionalDouble(key("rope.scaling.yarn_beta_fast")) ?? 32,
                    betaSlow: try gguf.optionalDouble(key("rope.scaling.yarn_beta_slow")) ?? 1)
                // yarn_log_multiplier = 0.1 · mscale_all_dim (converter's encoding); mscale = 1 + 0.1·m·ln(factor).
                let logMul = try gguf.optionalDouble(key("rope.scaling.yarn_log_multiplier")) ?? 0
                let mscale = Float(1 + logMul * Foundation.log(factor))
                scale *= mscale * mscale
            }
        case let other: throw bad("rope.scaling.type", "RoPE scaling '\(other)' is not supported by deepseek2")
        }
        invFreq = freqs

        guard let embdInfo = gguf.tensorInfo(named: "token_embd.weight") else { throw ModelLoadError.missingTensor("token_embd.weight") }
        let vocab = try gguf.optionalInt(key("vocab_size")) ?? embdInfo.dimensions.last ?? 0
        let hp = ModelHyperparameters(
            architecture: arch, vocabSize: vocab, contextLength: try gguf.optionalInt(key("context_length")) ?? 4096,
            numLayers: numLayers, embeddingLength: embd, numHeads: H, numKVHeads: 1, headDim: d.cacheRow,
            feedForwardLength: ffn, rmsNormEpsilon: eps, ropeTheta: theta, ropePositionScale: 1)
        hyperparameters = hp
        self.options = options
        self.gguf = gguf

        var tl = TensorLoader(gguf: gguf)
        let repacker = self.repacker
        func rp(_ w: WeightMatrix) -> WeightMatrix { repacker.prepare(w, options) }
        tokenEmbedding = try tl.matrix("token_embd.weight", rows: vocab, cols: embd)
        outputNorm = try tl.vector("output_norm.weight", count: embd)
        output = rp(tl.has("output.weight") ? try tl.matrix("output.weight", rows: vocab, cols: embd) : tokenEmbedding)
        var attn: [MLAWeights] = [], an: [UnsafePointer<Float>] = [], fn: [UnsafePointer<Float>] = [], ffns: [DeepseekFFN] = []
        for l in 0..<numLayers {
            let p = "blk.\(l)."
            an.append(try tl.vector(p + "attn_norm.weight", count: embd))
            fn.append(try tl.vector(p + "ffn_norm.weight", count: embd))
            attn.append(try MLAWeights.load(&tl, layer: l, embd: embd, dims: d, eps: eps, repack: rp))
            if l < leading {
                ffns.append(.dense(gate: rp(try tl.matrix(p + "ffn_gate.weight", rows: ffn, cols: embd)),
                                   up: rp(try tl.matrix(p + "ffn_up.weight", rows: ffn, cols: embd)),
                                   down: rp(try tl.matrix(p + "ffn_down.weight", rows: embd, cols: ffn))))
            } else {
                ffns.append(.moe(try MoEWeights.load(&tl, layer: l, embd: embd, expertFFN: expertFFN,
                                                     sharedFFN: sharedFFN, config: rc, repack: rp)))
            }
        }
        owned = attn
        attnNorm = an
        ffnNorm = fn
        self.ffns = ffns
        loader = tl

        let T = max(1, options.maxBatchTokens)
        pool = ThreadPool(threads: max(1, options.threads))
        matmul = RoundingMatmul(Matmul(pool: pool, maxTokens: T,
                        maxInDim: max(embd, ffn, expertFFN, sharedFFN, qLora, d.nope, kvLora, H * vHead),
                        floatReference: options.floatReference),
                                hasF16Weights: gguf.tensors.contains { $0.type == .f16 })
        mla = MLAAttention(dims: d, eps: eps, scale: scale, maxTokens: T, maxContext: hp.contextLength,
                           matmul: matmul, pool: pool)
        moe = MoERunner(embd: embd, expertFFN: expertFFN, sharedFFN: sharedFFN, config: rc, maxTokens: T, matmul: matmul)
        x = ScratchBuffer(count: T * embd)
        h = ScratchBuffer(count: T * embd)
        o = ScratchBuffer(count: T * embd)
        attnOut = ScratchBuffer(count: T * H * vHead)
        gateBuf = ScratchBuffer(count: T * ffn)
        upBuf = ScratchBuffer(count: T * ffn)
        cosBuf = ScratchBuffer(count: T * rope / 2)
        sinBuf = ScratchBuffer(count: T * rope / 2)
    }

    /// A latent KV cache `[numLayers][numBlocks, blockSize, kvLoraRank + qkRopeHeadDim]` (keys only, no V).
    public func makeKVCache(numBlocks: Int, blockSize: Int) -> PagedKVCache {
        PagedKVCache(numLayers: hyperparameters.numLayers, numBlocks: numBlocks, blockSize: blockSize, numKVHeads: 1,
                     headDim: dims.cacheRow, type: options.kvCacheType, storesValues: false)
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>) {
        precondition(cache.numLayers == hyperparameters.numLayers && cache.numKVHeads * cache.headDim == dims.cacheRow,
                     "KV cache was made for another model")
        mla.reserve(contextLength: cache.slotCount)
        index.index(batch, cache: cache)
        DecoderSupport.chunks(batch, index: index, maxTokens: options.maxBatchTokens) { range, p in
            forwardChunk(range, p, cache: cache, logitRows: batch.logitRows, logits: logits)
        }
    }

    private func forwardChunk(_ range: Range<Int>, _ p: BatchPointers, cache: PagedKVCache, logitRows: [Int],
                              logits: UnsafeMutablePointer<Float>) {
        let hp = hyperparameters
        let n = range.count, t0 = range.lowerBound, embd = hp.embeddingLength, eps = hp.rmsNormEpsilon
        let x = x.pointer, h = h.pointer, o = o.pointer
        for t in 0..<n {                                                                  // x [n, embd]
            let id = Int(p.tokens[t0 + t])
            precondition(id >= 0 && id < hp.vocabSize, "token id \(id) outside the vocabulary")
            tokenEmbedding.dequantizeRow(id, into: x + t * embd)
        }
        DecoderSupport.ropeTable(positions: p.positions + t0, n: n, invFreq: invFreq, cos: cosBuf.pointer, sin: sinBuf.pointer)
        emit("embeddings", -1, x, n, embd)
        for l in 0..<hp.numLayers {
            Ops.rmsNorm(x, weight: attnNorm[l], eps: eps, n: embd, count: n, out: h)               // [n, embd]
            mla.run(owned[l], layer: l, x: h, n: n, cos: cosBuf.pointer, sin: sinBuf.pointer, cache: cache,
                    slots: p.slots + t0, positions: p.positions + t0, tables: p.tables, tableStart: p.tableStart + t0,
                    expanded: expandedAttention, out: attnOut.pointer)                                // [n, H * v]
            matmul(attnOut.pointer, numTokens: n, owned[l].wo, o)                                   // [n, embd]
            Ops.add(o, into: x, n: n * embd)
            Ops.rmsNorm(x, weight: ffnNorm[l], eps: eps, n: embd, count: n, out: h)                // [n, embd]
            switch ffns[l] {
            case .dense(let gate, let up, let down):
                matmul(h, numTokens: n, gate, gateBuf.pointer, up, upBuf.pointer)                   // [n, ffn] each
                Ops.siluMul(gate: gateBuf.pointer, up: upBuf.pointer, n: n * gate.rows, out: gateBuf.pointer)
                matmul(gateBuf.pointer, numTokens: n, down, o)                                      // [n, embd]
            case .moe(let w):
                let k = routerConfig.topK
                moe.run(w, x: h, n: n, out: o, routing: trace == nil ? nil : { ids, weights in      // [n, embd]
                    let f = (0..<(n * k)).map { Float(ids[$0]) }
                    f.withUnsafeBufferPointer { self.trace?("moe_topk_ids", l, $0, [n, k]) }
                    self.trace?("moe_topk_weights", l, UnsafeBufferPointer(start: weights, count: n * k), [n, k])
                })
            }
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
