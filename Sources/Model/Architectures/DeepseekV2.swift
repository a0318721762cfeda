// The `deepseek2` architecture: DeepSeek-V2, DeepSeek-V2-Lite, DeepSeek-V3, DeepSeek-R1.
//
// Papers: DeepSeek-V2 (arXiv 2405.04434) §2.1 Multi-head Latent Attention (low-rank KV compression, decoupled RoPE,
// weight absorption for inference) and §2.2 DeepSeekMoE (shared + routed experts, group-limited routing);
// DeepSeek-V3 technical report (arXiv 2412.19437) §2.1.2 (sigmoid gating, auxiliary-loss-free balancing with a
// selection-only bias, normalised top-k weights × routed scaling factor).
// References: llama.cpp src/models/deepseek2.cpp (MLA branch, NORM rope on the decoupled part,
// `kq_scale = mscale² / sqrt(n_embd_head_k)`, leading dense blocks, `build_moe_ffn` + shared experts) and HF
// transformers models/deepseek_v3/modeling_deepseek_v3.py (`DeepseekV3Attention`, `DeepseekV3MoE`, `yarn_get_mscale`).
//
//   per layer l:  x += W_O · MLA(RMSNorm(x)·attn_norm)
//                 x += (l < leading_dense_block_count ? SwiGLU : MoE)(RMSNorm(x)·ffn_norm)
//   KV cache: one latent row [kvLoraRank + rope] per token and layer, no V (MLAAttention.swift).
//
// Tensors (GGUF names, ne order): blk.N.{attn_norm, ffn_norm} [embd]; attn_q_a / attn_q_a_norm / attn_q_b (or
// attn_q), attn_kv_a_mqa, attn_kv_a_norm, attn_k_b + attn_v_b (or the fused attn_kv_b), attn_output; leading
// blocks ffn_{gate,up,down}; the others ffn_gate_inp, exp_probs_b (V3), ffn_*_exps, ffn_*_shexp.
import Compute
import Foundation
import GGUF

/// DeepSeek-V2/V3 blocks: MLA attention with a latent KV cache, dense then DeepSeekMoE feed-forwards.
final class DeepseekV2: Architecture {
    let hyperparameters: ModelHyperparameters
    let cacheStoresValues = false
    var cacheLatentRank: Int? { dims.kvLoraRank }
    /// Leading dense blocks (`deepseek2.leading_dense_block_count`, default 1).
    let leadingDenseBlocks: Int
    /// Uses the expanded MLA reference (K/V materialised per head) instead of the absorbed form; slow.
    var expandedAttention = false
    let dims: MLADims
    private let attnNorm: [UnsafePointer<Float>]   // per layer [embd]
    private let attn: [MLAWeights]
    private let ffnNorm: [UnsafePointer<Float>]    // per layer [embd]
    private let ffns: [FeedForwardBlock]
    private let rope: RopeTable                    // [T, rope / 2], YaRN-corrected when scaled
    private let mla: MLAAttention
    private let ffn: FeedForwardRunner
    private let matmul: RoundingMatmul
    private let attnOut: ScratchBuffer             // [T, H * v]
    var moe: MoERunner? { ffn.moe }

    static func load(_ c: inout ModelContext) throws -> Architecture { try DeepseekV2(&c) }

    /// Query compression is used when `blk.0.attn_q_a.weight` exists (the `q_lora_rank` key may be absent or 0
    /// otherwise); the fused `attn_kv_b` layout is accepted as well.
    /// - Throws: `ModelLoadError` (missing tensor, shape mismatch, unsupported type, invalid/unsupported
    ///   hyper-parameter such as an unknown RoPE scaling); `GGUFError` for missing or mistyped keys.
    init(_ c: inout ModelContext) throws {
        let k = c.keys, H = k.numHeads
        let ropeDim = try k.int("rope.dimension_count")
        let qHead = try k.optionalInt("attention.key_length_mla") ?? k.int("attention.key_length")
        let vHead = try k.optionalInt("attention.value_length_mla") ?? k.int("attention.value_length")
        guard ropeDim > 0, ropeDim % 2 == 0, qHead > ropeDim else {
            throw k.invalid("rope.dimension_count", "\(ropeDim) does not fit a \(qHead)-wide query head")
        }
        var qLora = try k.optionalInt("attention.q_lora_rank") ?? 0
        if let qa = c.tensors.gguf.tensorInfo(named: "blk.0.attn_q_a.weight") {
            if qLora == 0 { qLora = qa.dimensions.count == 2 ? qa.dimensions[1] : 0 }
        } else {
            qLora = 0
        }
        let d = MLADims(numHeads: H, qLoraRank: qLora, kvLoraRank: try k.int("attention.kv_lora_rank"),
                        nope: qHead - ropeDim, rope: ropeDim, v: vHead)
        dims = d
        let ffnWidth = try k.int("feed_forward_length"), expertFFN = try k.int("expert_feed_forward_length")
        let leading = try k.optionalInt("leading_dense_block_count") ?? 1
        guard leading >= 0, leading <= k.numLayers else { throw k.invalid("leading_dense_block_count", "\(leading) of \(k.numLayers) blocks") }
        leadingDenseBlocks = leading
        let moeShape = MoEShape(config: try RouterConfig(k, normalizeByDefault: false), expertFFN: expertFFN,
                                sharedFFN: (try k.optionalInt("expert_shared_count") ?? 0) * expertFFN)
        if leading < k.numLayers { try moeShape.config.validate(architecture: k.arch) }

        // RoPE scaling and attention scale (llama.cpp deepseek2.cpp; HF yarn_get_mscale).
        var scale = 1 / Float(qHead).squareRoot()
        var freqs = RopeTable.frequencies(dim: ropeDim, theta: k.ropeTheta)
        switch try k.optionalString("rope.scaling.type") ?? "none" {
        case "none": break
        case "yarn":
            let factor = try k.optionalDouble("rope.scaling.factor") ?? 1
            guard factor >= 1 else { throw k.invalid("rope.scaling.factor", "YaRN factor \(factor) < 1") }
            if factor > 1 {
                freqs = RopeTable.yarnFrequencies(
                    dim: ropeDim, base: k.ropeTheta, factor: factor, originalContext: try k.int("rope.scaling.original_context_length"),
                    betaFast: try k.optionalDouble("rope.scaling.yarn_beta_fast") ?? 32,
                    betaSlow: try k.optionalDouble("rope.scaling.yarn_beta_slow") ?? 1)
                // yarn_log_multiplier = 0.1 · mscale_all_dim (converter's encoding); mscale = 1 + 0.1·m·ln(factor).
                let mscale = Float(1 + (try k.optionalDouble("rope.scaling.yarn_log_multiplier") ?? 0) * Foundation.log(factor))
                scale *= mscale * mscale
            }
        case let other: throw k.invalid("rope.scaling.type", "RoPE scaling '\(other)' is not supported by deepseek2")
        }
        rope = RopeTable(invFreq: freqs, maxTokens: c.maxTokens)
        hyperparameters = k.hyperparameters(feedForwardLength: ffnWidth, kvHeads: 1, kvHeadDim: d.cacheRow)

        var an: [UnsafePointer<Float>] = [], fn: [UnsafePointer<Float>] = [], attn: [MLAWeights] = []
        var ffns: [FeedForwardBlock] = []
        for l in 0..<k.numLayers {
            an.append(try c.tensors.vector("blk.\(l).attn_norm.weight", count: k.embd))
            fn.append(try c.tensors.vector("blk.\(l).ffn_norm.weight", count: k.embd))
            attn.append(try MLAWeights.load(&c, layer: l, dims: d))
            ffns.append(l < leading ? .dense(try FeedForwardWeights(&c, layer: l, width: ffnWidth))
                                    : .moe(try MoEWeights(&c, layer: l, shape: moeShape)))
        }
        attnNorm = an
        ffnNorm = fn
        self.attn = attn
        self.ffns = ffns
        mla = MLAAttention(c, dims: d, scale: scale)
        ffn = FeedForwardRunner(dense: FeedForward(c, width: ffnWidth), moe: MoERunner(c, shape: moeShape))
        matmul = c.matmul
        attnOut = ScratchBuffer(count: c.maxTokens * H * vHead)
    }

    func reserve(contextLength: Int) { mla.reserve(contextLength: contextLength) }

    func run(_ x: UnsafeMutablePointer<Float>, _ s: Step) {
        let n = s.n, embd = hyperparameters.embeddingLength, eps = hyperparameters.rmsNormEpsilon
        rope.fill(s.positions, n: n)                                                          // cos/sin [n, rope/2]
        for l in 0..<hyperparameters.numLayers {
            Ops.rmsNorm(x, weight: attnNorm[l], eps: eps, n: embd, count: n, out: s.h)        // h [n, embd]
            mla.run(attn[l], layer: l, x: s.h, rope: rope, s, expanded: expandedAttention,
                    out: attnOut.pointer)                                                     // [n, H * v]
            matmul(attnOut.pointer, numTokens: n, attn[l].wo, s.o)                            // o [n, embd]
            Ops.add(s.o, into: x, n: n * embd)                                                // x [n, embd]
            Ops.rmsNorm(x, weight: ffnNorm[l], eps: eps, n: embd, count: n, out: s.h)         // h [n, embd]
            ffn(ffns[l], layer: l, x: s.h, n: n, out: s.o, trace: s.trace)                    // o [n, embd]
            Ops.add(s.o, into: x, n: n * embd)                                                // x [n, embd]
            s.trace("layer_output", l, x, n, embd)
        }
    }
}
