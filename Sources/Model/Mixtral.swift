// Mixtral-style models: GGUF architecture `llama` with `llama.expert_count > 0` (Mixtral 8x7B/8x22B). Llama attention
// (NORM RoPE on the converter-permuted Q/K rows) and a sparse MoE feed-forward: softmax over the router logits,
// top-k, renormalised (eq. 1–2 of Jiang et al. 2024, "Mixtral of Experts", §2.1); no shared expert.
// Sources: HF transformers models/mixtral/modeling_mixtral.py (`MixtralSparseMoeBlock`); llama.cpp
// src/models/llama.cpp (`build_moe_ffn` branch when the block has `ffn_gate_inp`). `ModelLoader` sends such files
// here instead of `LlamaModel`; the forward is `MoEDecoderModel` (MoEDecoder.swift).

extension MoEDecoderVariant {
    /// Mixtral switches.
    static let mixtral = MoEDecoderVariant(rope: .norm, qkvBias: false, qkNorm: false, sharedExpert: false, defaultNormalize: true)
}
