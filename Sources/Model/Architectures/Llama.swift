// The `llama` architecture (GGUF `general.architecture = llama`): Llama 1/2/3, SmolLM2, Mistral-style dense models,
// and Mixtral (`llama.expert_count > 0`: llama.cpp treats Mixtral as `llama` with experts).
//
// Papers: Touvron et al. 2023 (LLaMA) §2.2 (pre-norm RMSNorm, SwiGLU, RoPE); RoPE: Su et al. 2021 §3.4;
// GQA: Ainslie et al. 2023; Mixtral: Jiang et al. 2024 "Mixtral of Experts" §2.1 eq. 1–2 (softmax over the router
// logits, top-k, renormalised; no shared expert).
// References: llama.cpp src/models/llama.cpp (`build_moe_ffn` when the block has `ffn_gate_inp`); HF transformers
// models/llama/modeling_llama.py (LlamaDecoderLayer), models/mixtral/modeling_mixtral.py (MixtralSparseMoeBlock).
//
// Deltas from the shared pre-norm block (PreNormBlock.swift):
//   RoPE NORM mode (adjacent pairs: convert_hf_to_gguf.py permutes the Q/K rows of `llama` files); optional
//   Llama 3.1 `rope_freqs.weight` [headDim / 2] dividing the frequencies; linear RoPE scaling; no biases, no
//   q/k norm; dense SwiGLU of `feed_forward_length`, or (Mixtral) `expert_count` experts of
//   `expert_feed_forward_length` (default `feed_forward_length`).
//
// Tensors (GGUF names, ne order): token_embd [embd, vocab]; blk.N.{attn_norm, ffn_norm} [embd];
// blk.N.attn_{q,k,v,output}; blk.N.ffn_{gate,up,down} or ffn_gate_inp [embd, E] + ffn_{gate,up,down}_exps;
// output_norm [embd]; output [embd, vocab] (or tied to token_embd); rope_freqs [headDim / 2] (optional).
import Compute

/// Loader of `llama` files.
enum Llama {
    /// - Throws: `ModelLoadError` for an unsupported variant (partial RoPE, non-linear RoPE scaling, head shape)
    ///   or a missing / mis-shaped tensor.
    static func load(_ c: inout ModelContext) throws -> Architecture {
        let factors = try c.tensors.vector("rope_freqs.weight", count: c.keys.headDim / 2, if: c.tensors.has("rope_freqs.weight"))
        let moe = try c.keys.optionalInt("expert_count") ?? 0 > 0
            ? MoEShape(c.keys, normalizeByDefault: true, sharedFFN: 0) : nil
        return try PreNormBlocks(&c, attention: AttentionVariant(rope: .norm), ropeFactors: factors, moe: moe)
    }
}
