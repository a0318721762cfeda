// The `qwen2` architecture (GGUF `general.architecture = qwen2`): Qwen2, Qwen2.5, Qwen2.5-Coder, and the
// DeepSeek-R1-Distill-Qwen models.
//
// Paper: Qwen2 Technical Report (Yang et al. 2024) §2.2.1 (GQA, SwiGLU, RoPE, QKV bias, RMSNorm pre-norm).
// References: llama.cpp src/models/qwen2.cpp; HF transformers models/qwen2/modeling_qwen2.py (Qwen2Attention:
// q/k/v_proj bias=True, o_proj bias=False; Qwen2MLP; Qwen2RMSNorm).
//
// Deltas from the shared pre-norm block (PreNormBlock.swift):
//   q/k/v projections with biases (`attn_{q,k,v}.bias`); RoPE in NEOX mode (halves rotate together: the
//   converter does not permute Qwen's Q/K rows); linear RoPE scaling; dense SwiGLU of `feed_forward_length`.
//
// Tensors (GGUF names, ne order): token_embd [embd, vocab]; blk.N.{attn_norm, ffn_norm} [embd];
// blk.N.attn_{q,k,v}.weight/.bias, attn_output.weight; blk.N.ffn_{gate,up,down}; output_norm [embd];
// output [embd, vocab] (or tied to token_embd).
import Compute

/// Loader of `qwen2` files.
enum Qwen2 {
    /// - Throws: `ModelLoadError` for an unsupported variant (partial RoPE, non-linear RoPE scaling, head shape)
    ///   or a missing / mis-shaped tensor.
    static func load(_ c: inout ModelContext) throws -> Architecture {
        try PreNormBlocks(&c, attention: AttentionVariant(rope: .neox, qkvBias: true))
    }
}
