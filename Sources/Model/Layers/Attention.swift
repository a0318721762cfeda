// Grouped-query self-attention over the paged KV cache, with the options the GGUF architectures switch on:
// q/k/v biases (Qwen2: HF `q_proj(bias=True)`), per-head RMSNorm of q and k before RoPE (Gemma 3 §2, Qwen3
// report §2: QK-Norm), RoPE layout (NORM for `llama`, whose converter permutes Q/K rows; NEOX otherwise), a sliding
// window per layer (Gemma 3 local layers) and the softmax scale.
// Sources: Vaswani et al. 2017 §3.2; GQA: Ainslie et al. 2023; llama.cpp src/llama-graph.cpp `build_attn` and
// src/models/{llama,qwen2,qwen3moe,gemma3}.cpp; HF modeling_llama.py `LlamaAttention`.
//
//   q, k, v = x·W_qᵀ (+b_q), x·W_kᵀ (+b_k), x·W_vᵀ (+b_v)     q [n, H·hd], k/v [n, KV·hd]
//   q, k    = RMSNorm_head(q)·q_norm, RMSNorm_head(k)·k_norm   (qkNorm)
//   q, k    = RoPE(q), RoPE(k);  cache[slots] ← k, v
//   out     = softmax(q·Kᵀ·scale) V · W_oᵀ                      [n, embd]
import Compute

/// The switches of one GQA variant.
struct AttentionVariant {
    /// RoPE pair layout.
    let rope: Ops.RopeMode
    /// `attn_q.bias`, `attn_k.bias`, `attn_v.bias` present and added.
    var qkvBias = false
    /// `attn_q_norm.weight`, `attn_k_norm.weight` `[headDim]` present and applied per head.
    var qkNorm = false
}

/// Weights of one GQA block (GGUF `blk.N.attn_*`).
struct AttentionWeights {
    let wq: WeightMatrix                 // [H * hd, embd]
    let wk: WeightMatrix                 // [KV * hd, embd]
    let wv: WeightMatrix                 // [KV * hd, embd]
    let bq: UnsafePointer<Float>?        // [H * hd]
    let bk: UnsafePointer<Float>?        // [KV * hd]
    let bv: UnsafePointer<Float>?        // [KV * hd]
    let qNorm: UnsafePointer<Float>?     // [hd]
    let kNorm: UnsafePointer<Float>?     // [hd]
    let wo: WeightMatrix                 // [embd, H * hd]

    /// Loads `blk.<layer>.attn_*` with the shapes of the common keys; the variant's optional tensors are required.
    /// - Throws: `ModelLoadError` for a missing tensor, wrong shape or unsupported type.
    init(_ c: inout ModelContext, layer: Int, variant v: AttentionVariant) throws {
        let k = c.keys, p = "blk.\(layer).", qw = k.numHeads * k.headDim, kvw = k.numKVHeads * k.headDim
        wq = try c.tensors.weight(p + "attn_q.weight", rows: qw, cols: k.embd)
        wk = try c.tensors.weight(p + "attn_k.weight", rows: kvw, cols: k.embd)
        wv = try c.tensors.weight(p + "attn_v.weight", rows: kvw, cols: k.embd)
        bq = try c.tensors.vector(p + "attn_q.bias", count: qw, if: v.qkvBias)
        bk = try c.tensors.vector(p + "attn_k.bias", count: kvw, if: v.qkvBias)
        bv = try c.tensors.vector(p + "attn_v.bias", count: kvw, if: v.qkvBias)
        qNorm = try c.tensors.vector(p + "attn_q_norm.weight", count: k.headDim, if: v.qkNorm)
        kNorm = try c.tensors.vector(p + "attn_k_norm.weight", count: k.headDim, if: v.qkNorm)
        wo = try c.tensors.weight(p + "attn_output.weight", rows: k.embd, cols: qw)
    }
}

/// Runs GQA blocks with per-step scratch sized at load (shared by all layers of a model).
final class GQAAttention {
    let variant: AttentionVariant
    let numHeads: Int
    let numKVHeads: Int
    let headDim: Int
    let eps: Float
    private let matmul: RoundingMatmul
    private let paged: PagedAttention
    private let q: ScratchBuffer         // [T, H * hd]
    private let k: ScratchBuffer         // [T, KV * hd]
    private let v: ScratchBuffer         // [T, KV * hd]
    private let attnOut: ScratchBuffer   // [T, H * hd]

    /// Scratch for `c.maxTokens` tokens; `scale` multiplies q·k (default 1/√headDim).
    init(_ c: ModelContext, variant: AttentionVariant, scale: Float? = nil) {
        let k = c.keys, T = c.maxTokens
        self.variant = variant
        numHeads = k.numHeads
        numKVHeads = k.numKVHeads
        headDim = k.headDim
        eps = k.eps
        matmul = c.matmul
        paged = PagedAttention(numHeads: k.numHeads, numKVHeads: k.numKVHeads, headDim: k.headDim,
                               maxContext: c.initialContext, threads: c.matmul.pool.threadCount, scale: scale)
        q = ScratchBuffer(count: T * k.numHeads * k.headDim)
        self.k = ScratchBuffer(count: T * k.numKVHeads * k.headDim)
        v = ScratchBuffer(count: T * k.numKVHeads * k.headDim)
        attnOut = ScratchBuffer(count: T * k.numHeads * k.headDim)
    }

    /// See `Architecture.reserve`.
    func reserve(contextLength: Int) { paged.reserve(contextLength: contextLength) }

    /// out `[n, embd]` = attention output of layer `layer` for the normed input x `[n, embd]` (out may alias x);
    /// K/V of the chunk are written to the cache first. `window` > 0: sliding window of that many positions.
    func callAsFunction(_ w: AttentionWeights, layer: Int, x: UnsafePointer<Float>, rope: RopeTable, window: Int = 0,
                        _ s: Step, out: UnsafeMutablePointer<Float>) {
        let n = s.n, hd = headDim, H = numHeads, KV = numKVHeads
        let q = q.pointer, k = k.pointer, v = v.pointer
        matmul(x, numTokens: n, w.wq, q, w.wk, k, w.wv, v)                            // q [n, H*hd], k/v [n, KV*hd]
        if let bq = w.bq, let bk = w.bk, let bv = w.bv {
            for t in 0..<n {
                Ops.add(bq, into: q + t * H * hd, n: H * hd)
                Ops.add(bk, into: k + t * KV * hd, n: KV * hd)
                Ops.add(bv, into: v + t * KV * hd, n: KV * hd)
            }
        }
        if let qn = w.qNorm, let kn = w.kNorm {                                         // per head
            Ops.rmsNorm(q, weight: qn, eps: eps, n: hd, count: n * H, out: q)
            Ops.rmsNorm(k, weight: kn, eps: eps, n: hd, count: n * KV, out: k)
        }
        for t in 0..<n {
            rope.rotate(q + t * H * hd, numHeads: H, token: t, mode: variant.rope)
            rope.rotate(k + t * KV * hd, numHeads: KV, token: t, mode: variant.rope)
        }
        paged.store(layer: layer, cache: s.cache, k: k, v: v, slots: s.slots, count: n)
        paged.run(layer: layer, cache: s.cache, q: q, positions: s.positions, tables: s.tables, tableStart: s.tableStart,
                  count: n, out: attnOut.pointer, pool: matmul.pool, window: window)   // [n, H*hd]
        matmul(attnOut.pointer, numTokens: n, w.wo, out)                               // [n, embd]
    }
}
