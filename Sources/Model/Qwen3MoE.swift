// The `qwen3moe` architecture (Qwen3-30B-A3B, Qwen3-235B-A22B): grouped-query attention with a per-head RMSNorm of
// q and k before NEOX RoPE, no biases, explicit head_dim (`attention.key_length`), softmax top-k routing with
// renormalised weights, no shared expert.
// Sources: Qwen3 technical report (arXiv 2505.09388), architecture section (QK-Norm, no shared experts);
// HF transformers models/qwen3_moe/modeling_qwen3_moe.py; llama.cpp src/models/qwen3moe.cpp.
// The forward is `MoEDecoderModel` (MoEDecoder.swift).

extension MoEDecoderVariant {
    /// Qwen3-MoE switches.
    static let qwen3moe = MoEDecoderVariant(rope: .neox, qkvBias: false, qkNorm: true, sharedExpert: false, defaultNormalize: true)
}
