// The `gemma3` architecture (GGUF `general.architecture = gemma3`): Gemma 3 text models (270m ... 27b).
//
// Paper: Gemma 3 Technical Report (Gemma Team 2025) §2 (5:1 interleaved local/global attention, 1024-token
// windows for the larger models, QK-norm, RoPE base 10k local / 1M global).
// References: llama.cpp src/models/gemma3.cpp and the gemma3 hyper-parameters in src/llama-model.cpp; HF
// transformers models/gemma3/modeling_gemma3.py (Gemma3TextScaledWordEmbedding, Gemma3DecoderLayer,
// Gemma3RMSNorm, Gemma3MLP).
//
//   x = embedding · √embd
//   per layer: h = RMSNorm(x)·attn_norm → Q/K/V → RMSNorm per head of Q and K → RoPE NEOX (local layers: base
//     `rope.freq_base_swa`, default 10000, no scaling; global layers: `rope.freq_base` with the file's linear
//     scaling) → attention (scale `query_pre_attn_scalar`^-½ = 1/√headDim, 1/√(embd/heads) for the 62-layer 27B,
//     as llama.cpp; local layers see only the last `attention.sliding_window` positions) → attn_output →
//     RMSNorm·post_attention_norm → residual; RMSNorm·ffn_norm → GeGLU → ffn_down → RMSNorm·post_ffw_norm → residual.
//   Layer il is global when (il + 1) % 6 == 0 (llama.cpp set_swa_pattern(6); HF sliding_window_pattern 6).
//   Final RMSNorm·output_norm, LM head = tied token_embd (or output.weight), `final_logit_softcapping` if set.
// NOTE: HF's Gemma RMSNorm multiplies by (1 + w); convert_hf_to_gguf.py stores w + 1 in the GGUF, so every norm
// here is a plain RMSNorm times the stored weight (as llama.cpp's build_norm does).
//
// Tensors (GGUF names, ne order): as qwen2 without biases, plus blk.N.attn_{q,k}_norm [headDim],
// blk.N.post_attention_norm [embd], blk.N.post_ffw_norm [embd].
import Compute

/// Weights of one Gemma 3 block (GGUF `blk.N.*`).
struct Gemma3Block {
    let attnNorm: UnsafePointer<Float>       // [embd]
    let attention: AttentionWeights          // with q/k norms
    let postAttnNorm: UnsafePointer<Float>   // [embd]
    let ffnNorm: UnsafePointer<Float>        // [embd]
    let ffn: FeedForwardWeights
    let postFFNNorm: UnsafePointer<Float>    // [embd]
    /// Sliding window in tokens for local layers, 0 for global ones.
    let window: Int
}

/// Gemma 3 blocks: sandwich norms, local/global attention, GeGLU.
final class Gemma3: Architecture {
    let hyperparameters: ModelHyperparameters
    let embeddingScale: Float
    let blocks: [Gemma3Block]
    private let globalRope: RopeTable   // rope.freq_base, linear scaling
    private let localRope: RopeTable    // rope.freq_base_swa, unscaled
    private let attention: GQAAttention
    private let ffn: FeedForward

    static func load(_ c: inout ModelContext) throws -> Architecture { try Gemma3(&c) }

    /// - Throws: `ModelLoadError` for an unsupported variant (head shape, RoPE scaling other than linear) or a
    ///   missing / mis-shaped tensor.
    init(_ c: inout ModelContext) throws {
        let k = c.keys, ffnWidth = try k.int("feed_forward_length")
        try k.requireGroupedQueryAttention()
        let window = max(0, try k.optionalInt("attention.sliding_window") ?? 0)
        let localTheta = window > 0 ? (try k.optionalDouble("rope.freq_base_swa") ?? 10_000) : k.ropeTheta
        globalRope = RopeTable(invFreq: RopeTable.frequencies(dim: k.headDim, theta: k.ropeTheta),
                               positionScale: try k.linearRopePositionScale(), maxTokens: c.maxTokens)
        localRope = RopeTable(invFreq: RopeTable.frequencies(dim: k.headDim, theta: localTheta), maxTokens: c.maxTokens)
        hyperparameters = k.hyperparameters(feedForwardLength: ffnWidth, ropePositionScale: globalRope.positionScale)
        let variant = AttentionVariant(rope: .neox, qkNorm: true)
        var blocks: [Gemma3Block] = []
        for l in 0..<k.numLayers {
            let p = "blk.\(l)."
            blocks.append(Gemma3Block(
                attnNorm: try c.tensors.vector(p + "attn_norm.weight", count: k.embd),
                attention: try AttentionWeights(&c, layer: l, variant: variant),
                postAttnNorm: try c.tensors.vector(p + "post_attention_norm.weight", count: k.embd),
                ffnNorm: try c.tensors.vector(p + "ffn_norm.weight", count: k.embd),
                ffn: try FeedForwardWeights(&c, layer: l, width: ffnWidth),
                postFFNNorm: try c.tensors.vector(p + "post_ffw_norm.weight", count: k.embd),
                window: window <= 0 || (l + 1) % 6 == 0 ? 0 : window))
        }
        self.blocks = blocks
        let scale = k.numLayers == 62 ? 1 / Float(k.embd / k.numHeads).squareRoot() : 1 / Float(k.headDim).squareRoot()
        attention = GQAAttention(c, variant: variant, scale: scale)
        ffn = FeedForward(c, width: ffnWidth, gelu: true)
        embeddingScale = Float(k.embd).squareRoot()
    }

    func reserve(contextLength: Int) { attention.reserve(contextLength: contextLength) }

    func run(_ x: UnsafeMutablePointer<Float>, _ s: Step) {
        let n = s.n, embd = hyperparameters.embeddingLength, eps = hyperparameters.rmsNormEpsilon
        globalRope.fill(s.positions, n: n)                                                    // cos/sin [n, hd/2]
        localRope.fill(s.positions, n: n)
        for (l, b) in blocks.enumerated() {
            let rope = b.window > 0 ? localRope : globalRope
            Ops.rmsNorm(x, weight: b.attnNorm, eps: eps, n: embd, count: n, out: s.h)          // h [n, embd]
            attention(b.attention, layer: l, x: s.h, rope: rope, window: b.window, s, out: s.o) // o [n, embd]
            Ops.rmsNorm(s.o, weight: b.postAttnNorm, eps: eps, n: embd, count: n, out: s.o)    // o [n, embd]
            Ops.add(s.o, into: x, n: n * embd)                                                 // x [n, embd]
            Ops.rmsNorm(x, weight: b.ffnNorm, eps: eps, n: embd, count: n, out: s.h)           // h [n, embd]
            ffn(b.ffn, x: s.h, n: n, out: s.o)                                                 // o [n, embd]
            Ops.rmsNorm(s.o, weight: b.postFFNNorm, eps: eps, n: embd, count: n, out: s.o)     // o [n, embd]
            Ops.add(s.o, into: x, n: n * embd)                                                 // x [n, embd]
            s.trace("layer_output", l, x, n, embd)
        }
    }
}
