// The `qwen2moe` architecture (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B).
//
// Paper: Qwen2 technical report (arXiv 2407.10671) §2.2.2 MoE (shared + fine-grained routed experts).
// References: llama.cpp src/models/qwen2moe.cpp; HF transformers models/qwen2_moe/modeling_qwen2_moe.py
// (`Qwen2MoeSparseMoeBlock`: softmax top-k, `norm_topk_prob` default False, shared expert scaled by
// sigmoid(x · shared_expert_gate)).
//
// Deltas from the shared pre-norm block (PreNormBlock.swift):
//   Qwen2 attention (q/k/v biases, NEOX RoPE); every block's feed-forward is a MoE: `expert_count` experts of
//   `expert_feed_forward_length`, weights not renormalised unless `expert_weights_norm`, plus one shared expert of
//   `expert_shared_feed_forward_length` scaled by sigmoid(x · ffn_gate_inp_shexp).
//
// Tensors (GGUF names, ne order): as qwen2, with blk.N.ffn_gate_inp [embd, E], ffn_{gate,up,down}_exps
// [embd, ffnExp, E] / [ffnExp, embd, E], ffn_{gate,up,down}_shexp, ffn_gate_inp_shexp [embd] or [embd, 1].
import Compute

/// Loader of `qwen2moe` files.
enum Qwen2MoE {
    /// - Throws: `ModelLoadError` for an unsupported variant or a missing / mis-shaped tensor.
    static func load(_ c: inout ModelContext) throws -> Architecture {
        let shared = try c.keys.optionalInt("expert_shared_feed_forward_length") ?? 0
        let moe = try MoEShape(c.keys, normalizeByDefault: false, sharedFFN: shared)
        return try PreNormBlocks(&c, attention: AttentionVariant(rope: .neox, qkvBias: true), moe: moe)
    }
}
