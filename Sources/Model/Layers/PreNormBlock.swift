// The pre-norm decoder block of the Llama family, shared by `llama` (and Mixtral), `qwen2`, `qwen2moe` and
// `qwen3moe`, which differ only in the attention switches and the feed-forward kind (llama.cpp builds all four with
// the same graph: src/models/{llama,qwen2,qwen2moe,qwen3moe}.cpp; HF `LlamaDecoderLayer`):
//
//   x += Attention(RMSNorm(x) · attn_norm)        (GQA, Attention.swift)
//   x += FFN(RMSNorm(x) · ffn_norm)               (dense SwiGLU or MoE)
// Paper: Touvron et al. 2023 (LLaMA) §2.2 (pre-normalization, SwiGLU, RoPE).
import Compute

/// Weights of one pre-norm block (GGUF `blk.N.*`).
struct PreNormBlock {
    let attnNorm: UnsafePointer<Float>     // [embd]
    let attention: AttentionWeights
    let ffnNorm: UnsafePointer<Float>      // [embd]
    let ffn: FeedForwardBlock
}

/// A stack of pre-norm blocks: an `Architecture` for the Llama family.
final class PreNormBlocks: Architecture {
    let hyperparameters: ModelHyperparameters
    let blocks: [PreNormBlock]
    private let rope: RopeTable
    private let attention: GQAAttention
    private let ffn: FeedForwardRunner
    var moe: MoERunner? { ffn.moe }

    /// Loads `numLayers` blocks from the common keys: GQA of `variant` with RoPE over the whole head (θ =
    /// `rope.freq_base`, frequencies divided by `ropeFactors` `[headDim / 2]` when given, linear position scaling),
    /// and in every block a dense SwiGLU of `feed_forward_length` or, when `moe` is given, a mixture of experts.
    /// - Throws: `ModelLoadError` for an unsupported variant (head shape, partial RoPE, non-linear RoPE scaling) or
    ///   a missing / mis-shaped tensor.
    init(_ c: inout ModelContext, attention variant: AttentionVariant, ropeFactors: UnsafePointer<Float>? = nil,
         moe: MoEShape? = nil) throws {
        let k = c.keys
        try k.requireGroupedQueryAttention()
        rope = RopeTable(invFreq: RopeTable.frequencies(dim: k.headDim, theta: k.ropeTheta, factors: ropeFactors),
                         positionScale: try k.linearRopePositionScale(), maxTokens: c.maxTokens)
        let hp = k.hyperparameters(feedForwardLength: try moe?.expertFFN ?? k.int("feed_forward_length"),
                                   ropePositionScale: rope.positionScale)
        var blocks: [PreNormBlock] = []
        for l in 0..<hp.numLayers {
            let p = "blk.\(l)."
            let attnNorm = try c.tensors.vector(p + "attn_norm.weight", count: hp.embeddingLength)
            let attention = try AttentionWeights(&c, layer: l, variant: variant)
            let ffnNorm = try c.tensors.vector(p + "ffn_norm.weight", count: hp.embeddingLength)
            let ffn: FeedForwardBlock = if let moe { .moe(try MoEWeights(&c, layer: l, shape: moe)) }
                else { .dense(try FeedForwardWeights(&c, layer: l, width: hp.feedForwardLength)) }
            blocks.append(PreNormBlock(attnNorm: attnNorm, attention: attention, ffnNorm: ffnNorm, ffn: ffn))
        }
        self.blocks = blocks
        hyperparameters = hp
        attention = GQAAttention(c, variant: variant)
        ffn = FeedForwardRunner(dense: moe == nil ? FeedForward(c, width: hp.feedForwardLength) : nil,
                                moe: moe.map { MoERunner(c, shape: $0) })
    }

    func reserve(contextLength: Int) { attention.reserve(contextLength: contextLength) }

    func run(_ x: UnsafeMutablePointer<Float>, _ s: Step) {
        let n = s.n, embd = hyperparameters.embeddingLength, eps = hyperparameters.rmsNormEpsilon
        rope.fill(s.positions, n: n)                                                          // cos/sin [n, hd/2]
        for (l, b) in blocks.enumerated() {
            Ops.rmsNorm(x, weight: b.attnNorm, eps: eps, n: embd, count: n, out: s.h)         // h [n, embd]
            attention(b.attention, layer: l, x: s.h, rope: rope, s, out: s.o)                 // o [n, embd]
            Ops.add(s.o, into: x, n: n * embd)                                                // x [n, embd]
            Ops.rmsNorm(x, weight: b.ffnNorm, eps: eps, n: embd, count: n, out: s.h)          // h [n, embd]
            ffn(b.ffn, layer: l, x: s.h, n: n, out: s.o, trace: s.trace)                      // o [n, embd]
            Ops.add(s.o, into: x, n: n * embd)                                                // x [n, embd]
            s.trace("layer_output", l, x, n, embd)
        }
    }
}
