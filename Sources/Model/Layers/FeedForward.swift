// Gated feed-forward: out = W_down · (act(W_gate · x) ⊙ W_up · x), act = SiLU (SwiGLU: Llama, Qwen, DeepSeek dense
// blocks) or tanh-GELU (GeGLU: Gemma). Sources: Shazeer 2020 "GLU Variants" eq. 5–6; HF `LlamaMLP`,
// `Gemma3MLP`; llama.cpp `build_ffn` (LLM_FFN_SILU / LLM_FFN_GELU, LLM_FFN_PAR).
// A block's feed-forward is this dense form or a mixture of experts (MoE.swift); `FeedForwardRunner` runs either.
import Compute

/// Weights of one dense gated feed-forward (GGUF `blk.N.ffn_gate`, `ffn_up`, `ffn_down`).
struct FeedForwardWeights {
    let gate: WeightMatrix   // [ffn, embd]
    let up: WeightMatrix     // [ffn, embd]
    let down: WeightMatrix   // [embd, ffn]

    /// Loads `blk.<layer>.ffn_{gate,up,down}.weight` of hidden width `width`.
    /// - Throws: `ModelLoadError` for a missing tensor, wrong shape or unsupported type.
    init(_ c: inout ModelContext, layer: Int, width: Int) throws {
        let p = "blk.\(layer).", embd = c.keys.embd
        gate = try c.tensors.weight(p + "ffn_gate.weight", rows: width, cols: embd)
        up = try c.tensors.weight(p + "ffn_up.weight", rows: width, cols: embd)
        down = try c.tensors.weight(p + "ffn_down.weight", rows: embd, cols: width)
    }
}

/// Runs dense feed-forwards of hidden width up to `width` with scratch sized at load.
final class FeedForward {
    /// GeGLU (tanh GELU) instead of SwiGLU.
    let gelu: Bool
    private let matmul: RoundingMatmul
    private let g: ScratchBuffer   // [T, width] gate, then the gated product
    private let u: ScratchBuffer   // [T, width] up

    init(_ c: ModelContext, width: Int, gelu: Bool = false) {
        self.gelu = gelu
        matmul = c.matmul
        g = ScratchBuffer(count: c.maxTokens * width)
        u = ScratchBuffer(count: c.maxTokens * width)
    }

    /// out `[n, embd]` = FFN(x `[n, embd]`) (out may alias x).
    func callAsFunction(_ w: FeedForwardWeights, x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>) {
        let f = w.gate.rows
        matmul(x, numTokens: n, w.gate, g.pointer, w.up, u.pointer)                            // [n, ffn] each
        Ops.gatedActivation(gate: g.pointer, up: u.pointer, n: n * f, out: g.pointer, gelu: gelu, pool: matmul.pool)
        matmul(g.pointer, numTokens: n, w.down, out)                                           // [n, embd]
    }
}

/// The feed-forward of one block.
enum FeedForwardBlock {
    case dense(FeedForwardWeights)
    case moe(MoEWeights)
}

/// Runs either kind of `FeedForwardBlock` (a model has the runners its blocks need).
struct FeedForwardRunner {
    let dense: FeedForward?
    let moe: MoERunner?

    /// out `[n, embd]` = the block's feed-forward of x `[n, embd]` (out must not alias x for MoE); MoE layers trace
    /// their routing as `"moe_topk_ids"` / `"moe_topk_weights"` `[n, k]`.
    func callAsFunction(_ block: FeedForwardBlock, layer: Int, x: UnsafePointer<Float>, n: Int,
                        out: UnsafeMutablePointer<Float>, trace: Trace) {
        switch block {
        case .dense(let w): dense!(w, x: x, n: n, out: out)
        case .moe(let w): moe!.run(w, layer: layer, x: x, n: n, out: out, trace: trace)
        }
    }
}
