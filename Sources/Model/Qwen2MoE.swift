// The `qwen2moe` architecture (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): Qwen2 attention (q/k/v biases, NEOX RoPE) and a
// sparse MoE block with softmax top-k routing (weights not renormalised unless `expert_weights_norm`) plus one
// shared expert whose output is scaled by sigmoid(x · ffn_gate_inp_shexp).
// Sources: Qwen2 technical report (arXiv 2407.10671), MoE architecture (shared + routed experts); HF transformers
// models/qwen2_moe/modeling_qwen2_moe.py (`Qwen2MoeSparseMoeBlock`); llama.cpp src/models/qwen2moe.cpp.
// The forward is `MoEDecoderModel` (MoEDecoder.swift).

extension MoEDecoderVariant {
    /// Qwen2-MoE switches.
    static let qwen2moe = MoEDecoderVariant(rope: .neox, qkvBias: true, qkNorm: false, sharedExpert: true, defaultNormalize: false)
}
