// The `qwen3moe` architecture (Qwen3-30B-A3B, Qwen3-235B-A22B).
//
// Paper: Qwen3 technical report (arXiv 2505.09388) §2 Architecture (QK-Norm instead of QKV bias, 128 experts,
// 8 active, no shared experts).
// References: llama.cpp src/models/qwen3moe.cpp; HF transformers models/qwen3_moe/modeling_qwen3_moe.py
// (`Qwen3MoeAttention` with q_norm/k_norm per head, `Qwen3MoeSparseMoeBlock`: softmax top-k, `norm_topk_prob`).
//
// Deltas from the shared pre-norm block (PreNormBlock.swift):
//   per-head RMSNorm of q and k (`attn_q_norm`, `attn_k_norm` [headDim]) before NEOX RoPE, no biases, explicit
//   head width (`attention.key_length`); every feed-forward a MoE with renormalised top-k weights, no shared expert.
//
// Tensors (GGUF names, ne order): as qwen2moe without biases and shared experts, with blk.N.attn_{q,k}_norm.
import Compute

/// Loader of `qwen3moe` files.
enum Qwen3MoE {
    /// - Throws: `ModelLoadError` for an unsupported variant or a missing / mis-shaped tensor.
    static func load(_ c: inout ModelContext) throws -> Architecture {
        let moe = try MoEShape(c.keys, normalizeByDefault: true, sharedFFN: 0)
        return try PreNormBlocks(&c, attention: AttentionVariant(rope: .neox, qkNorm: true), moe: moe)
    }
}
