import CQuantize
import GGUF

/// What a synthetic model holds: GGUF metadata (without the tokenizer) and every tensor with its name, shape,
/// type and the distribution its random values are drawn from.
///
/// Shapes and metadata keys are those llama.cpp's `convert_hf_to_gguf.py` writes for `deepseek2` (the
/// `attn_k_b`/`attn_v_b` split MLA layout; see Tests/Fixtures/README.md "GGUF tensor names"), so llama.cpp loads
/// the file as it would a converted DeepSeek-V2-Lite.
struct SynthPlan {
    /// One tensor: GGUF name, ggml `ne` (fastest first), stored type, and N(mean, std²) for its values.
    struct Tensor {
        let name: String
        let dims: [Int]
        let type: GGMLType
        let mean: Float
        let std: Float
        /// Row length (`ne[0]`) and number of rows (product of the other dims).
        var cols: Int { dims[0] }
        var rows: Int { dims.dropFirst().reduce(1, *) }
    }

    /// Weight format of the file: `q4_k` mirrors llama.cpp's Q4_K_M choices, `q8_0` its Q8_0; the DeepSeek-R1
    /// "dynamic" low-bit recipes: `q2_k_dyn` (routed experts Q2_K, attention Q4_K, shared experts Q6_K, `output`
    /// Q6_K) and `iq1_s`, `iq1_m`, `iq2_xxs`, `iq2_xs` (routed experts in that type, everything else as `q4_k`).
    enum Variant: String, CaseIterable {
        case q4_k, q8_0, q2_k_dyn, iq1_s, iq1_m, iq2_xxs, iq2_xs
        /// `general.file_type` (llama_ftype): MOSTLY_Q4_K_M = 15, MOSTLY_Q8_0 = 7, MOSTLY_Q2_K = 10,
        /// MOSTLY_IQ1_S = 24, MOSTLY_IQ1_M = 31, MOSTLY_IQ2_XXS = 19, MOSTLY_IQ2_XS = 20.
        var fileType: UInt32 {
            switch self {
            case .q4_k: return 15
            case .q8_0: return 7
            case .q2_k_dyn: return 10
            case .iq1_s: return 24
            case .iq1_m: return 31
            case .iq2_xxs: return 19
            case .iq2_xs: return 20
            }
        }
        /// The routed experts' type of an i-quant recipe (nil for the others).
        var expertType: GGMLType? {
            switch self {
            case .q4_k, .q8_0, .q2_k_dyn: return nil
            case .iq1_s: return .iq1_s
            case .iq1_m: return .iq1_m
            case .iq2_xxs: return .iq2_xxs
            case .iq2_xs: return .iq2_xs
            }
        }
    }

    /// DeepSeek-V2-Lite hyper-parameters (HF config.json of deepseek-ai/DeepSeek-V2-Lite).
    struct DeepseekV2Shape {
        var layers = 27, embd = 2048, heads = 16, kvLora = 512, nope = 128, rope = 64, vHead = 128
        var leadingDense = 1, denseFFN = 10944, experts = 64, shared = 2, used = 6, expertFFN = 1408
        var vocab = 102_400, context = 163_840
        var yarnFactor: Float = 40, yarnOriginal = 4096, betaFast: Float = 32, betaSlow: Float = 1
        var mscaleAllDim: Float = 0.707
    }

    let metadata: [(String, GGUFValue)]
    let tensors: [Tensor]

    /// The plan of a `deepseek2` model of shape `s` in format `variant`; `seed` is recorded in the metadata
    /// (`sputnik.synth.*`) so `sputnik-tools synth --verify` can regenerate the values.
    static func deepseekV2(_ s: DeepseekV2Shape, variant: Variant, seed: UInt64) -> SynthPlan {
        func u32(_ v: Int) -> GGUFValue { .uint32(UInt32(v)) }
        let a = "deepseek2."
        var md: [(String, GGUFValue)] = [
            ("general.architecture", .string("deepseek2")),
            ("general.type", .string("model")),
            ("general.name", .string("DeepSeek V2 Lite (synthetic random weights)")),
            (a + "block_count", u32(s.layers)),
            (a + "context_length", u32(s.context)),
            (a + "embedding_length", u32(s.embd)),
            (a + "feed_forward_length", u32(s.denseFFN)),
            (a + "attention.head_count", u32(s.heads)),
            (a + "attention.head_count_kv", u32(1)),
            (a + "rope.scaling.type", .string("yarn")),
            (a + "rope.scaling.factor", .float32(s.yarnFactor)),
            (a + "rope.scaling.original_context_length", u32(s.yarnOriginal)),
            (a + "rope.scaling.yarn_beta_fast", .float32(s.betaFast)),
            (a + "rope.scaling.yarn_beta_slow", .float32(s.betaSlow)),
            (a + "rope.freq_base", .float32(10_000)),
            (a + "attention.layer_norm_rms_epsilon", .float32(1e-6)),
            (a + "expert_count", u32(s.experts)),
            (a + "expert_used_count", u32(s.used)),
            (a + "expert_gating_func", u32(1)),                         // softmax
            (a + "attention.key_length", u32(s.kvLora + s.rope)),       // MLA cache row: latent + shared rope part
            (a + "attention.value_length", u32(s.kvLora)),
            (a + "leading_dense_block_count", u32(s.leadingDense)),
            (a + "vocab_size", u32(s.vocab)),
            (a + "attention.kv_lora_rank", u32(s.kvLora)),
            (a + "attention.key_length_mla", u32(s.nope + s.rope)),
            (a + "attention.value_length_mla", u32(s.vHead)),
            (a + "expert_feed_forward_length", u32(s.expertFFN)),
            (a + "expert_shared_count", u32(s.shared)),
            (a + "expert_weights_scale", .float32(1)),
            (a + "rope.dimension_count", u32(s.rope)),
            // The converter's legacy encoding: 0.1 · mscale_all_dim (llama.cpp divides by 0.1 again).
            (a + "rope.scaling.yarn_log_multiplier", .float32(0.1 * s.mscaleAllDim)),
        ]
        // llama.cpp treats 26/27-layer deepseek2 files as V2-Lite and needs the q_lora_rank key otherwise
        // (a real V2-Lite GGUF has no such key; 0 = no query compression).
        if s.layers != 26 && s.layers != 27 { md.append((a + "attention.q_lora_rank", u32(0))) }
        md.append(("sputnik.synth.seed", .uint64(seed)))
        md.append(("sputnik.synth.variant", .string(variant.rawValue)))

        var t: [Tensor] = []
        /// A weight matrix of ne `dims` with fan-in `fanIn`: N(0, 1/fanIn), quantized per `quantType`.
        func matrix(_ name: String, _ dims: [Int], fanIn: Int, layer: Int?, down: Bool = false) {
            t.append(Tensor(name: name, dims: dims, type: quantType(name, cols: dims[0], layer: layer, down: down),
                            mean: 0, std: 1 / Float(fanIn).squareRoot()))
        }
        func norm(_ name: String, _ n: Int) { t.append(Tensor(name: name, dims: [n], type: .f32, mean: 1, std: 0.05)) }
        func quantType(_ name: String, cols: Int, layer: Int?, down: Bool) -> GGMLType {
            switch variant {
            case .q8_0: return .q8_0
            case .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs:
                // Routed experts (`*_exps`) in the i-quant; their rows that are not whole 256-blocks (V2-Lite's
                // ffn_down_exps, 1,408 columns) fall back to IQ4_NL, as llama.cpp's quantizer does for every
                // i-quant below 4 bits (llama-quant.cpp, the "not divisible by 256" fallback).
                if name.hasSuffix("_exps.weight") { return cols % 256 == 0 ? variant.expertType! : .iq4_nl }
                fallthrough
            case .q4_k:
                // llama.cpp Q4_K_M: output Q6_K; ffn_down* Q6_K in the first/last eighth and every third layer
                // between (use_more_bits); the rest Q4_K. Rows that are not whole 256-blocks fall back as
                // llama.cpp does: Q4_K → Q5_0, Q6_K → Q8_0.
                var want: GGMLType = .q4_K
                if name == "output.weight" { want = .q6_K }
                if down, let l = layer {
                    let n = s.layers
                    if l < n / 8 || l >= 7 * n / 8 || (l - n / 8) % 3 == 2 { want = .q6_K }
                }
                if cols % 256 == 0 { return want }
                return want == .q6_K ? .q8_0 : .q5_0
            case .q2_k_dyn:
                // Routed experts 2-bit, everything else 4–6-bit (the published R1 dynamic quants); rows that are
                // not whole 256-blocks fall back as llama.cpp does: Q2_K → IQ4_NL, Q4_K → Q5_0, Q6_K → Q8_0.
                let want: GGMLType = name.contains("_exps.") ? .q2_K
                    : name.contains("_shexp.") || name == "output.weight" ? .q6_K : .q4_K
                if cols % 256 == 0 { return want }
                switch want {
                case .q2_K: return .iq4_nl
                case .q6_K: return .q8_0
                default: return .q5_0
                }
            }
        }

        let qHead = s.nope + s.rope
        t.append(Tensor(name: "token_embd.weight", dims: [s.embd, s.vocab],
                        type: variant == .q8_0 ? .q8_0 : .q4_K, mean: 0, std: 1))
        for l in 0..<s.layers {
            let p = "blk.\(l)."
            norm(p + "attn_norm.weight", s.embd)
            matrix(p + "attn_q.weight", [s.embd, s.heads * qHead], fanIn: s.embd, layer: l)
            matrix(p + "attn_kv_a_mqa.weight", [s.embd, s.kvLora + s.rope], fanIn: s.embd, layer: l)
            norm(p + "attn_kv_a_norm.weight", s.kvLora)
            matrix(p + "attn_k_b.weight", [s.nope, s.kvLora, s.heads], fanIn: s.kvLora, layer: l)
            matrix(p + "attn_v_b.weight", [s.kvLora, s.vHead, s.heads], fanIn: s.kvLora, layer: l)
            matrix(p + "attn_output.weight", [s.heads * s.vHead, s.embd], fanIn: s.heads * s.vHead, layer: l)
            norm(p + "ffn_norm.weight", s.embd)
            if l < s.leadingDense {
                matrix(p + "ffn_gate.weight", [s.embd, s.denseFFN], fanIn: s.embd, layer: l)
                matrix(p + "ffn_up.weight", [s.embd, s.denseFFN], fanIn: s.embd, layer: l)
                matrix(p + "ffn_down.weight", [s.denseFFN, s.embd], fanIn: s.denseFFN, layer: l, down: true)
            } else {
                t.append(Tensor(name: p + "ffn_gate_inp.weight", dims: [s.embd, s.experts], type: .f32,
                                mean: 0, std: 1 / Float(s.embd).squareRoot()))
                matrix(p + "ffn_gate_exps.weight", [s.embd, s.expertFFN, s.experts], fanIn: s.embd, layer: l)
                matrix(p + "ffn_up_exps.weight", [s.embd, s.expertFFN, s.experts], fanIn: s.embd, layer: l)
                matrix(p + "ffn_down_exps.weight", [s.expertFFN, s.embd, s.experts], fanIn: s.expertFFN, layer: l, down: true)
                let sh = s.shared * s.expertFFN
                matrix(p + "ffn_gate_shexp.weight", [s.embd, sh], fanIn: s.embd, layer: l)
                matrix(p + "ffn_up_shexp.weight", [s.embd, sh], fanIn: s.embd, layer: l)
                matrix(p + "ffn_down_shexp.weight", [sh, s.embd], fanIn: sh, layer: l, down: true)
            }
        }
        norm("output_norm.weight", s.embd)
        matrix("output.weight", [s.embd, s.vocab], fanIn: s.embd, layer: nil)
        return SynthPlan(metadata: md, tensors: t)
    }

    /// The random-stream id of row `row` of the tensor named `name` (FNV-1a of the name, mixed with the row).
    static func stream(name: String, row: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h &+ UInt64(row) &* 0x9E37_79B9_7F4A_7C15
    }

    /// Fills `out[0..<t.cols]` with the float values of row `row` of tensor `t` for `seed`.
    static func fillRow(_ t: Tensor, row: Int, seed: UInt64, into out: UnsafeMutablePointer<Float>) {
        ckq_fill_normal(seed, stream(name: t.name, row: row), t.mean, t.std, out, Int64(t.cols))
    }
}
