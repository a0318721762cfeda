// Run-time kernel selection. Every kernel with a scalar `_ref` twin (ref/) and an AVX2 + FMA + F16C variant
// (x86/) appears in one table per instruction set (two more are the AVX2 one with the AVX-VNNI or the AVX512-VNNI
// eight-row GEMMs in place of its own, where the CPU has those); the table is chosen once at load by CPUID
// (__builtin_cpu_supports), and the unsuffixed public entry points of include/ckernels.h call through it.
// ck_force_reference switches to the reference table (tests, benchmarks).
#include "ckernels.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>

/// Table size: ggml type ids 0...CK_BF16.
#define CK_TYPE_COUNT (CK_BF16 + 1)

/// The kernels of one instruction set.
typedef struct {
    void (*quantize_row_q8_0)(const float *x, void *y, int64_t n);
    void (*quantize_row_q8_1)(const float *x, void *y, int64_t n);
    void (*quantize_row_q8_K)(const float *x, void *y, int64_t n);
    /// Weight-row · activation-row dot products by weight type (activations in ck_activation_type(type));
    /// NULL for types without one.
    ck_dot_fn dot[CK_TYPE_COUNT];
    float (*dot_f16_f32)(int64_t n, const uint16_t *x, const float *y);
    float (*dot_bf16_f32)(int64_t n, const uint16_t *x, const float *y);
    float (*dot_f32)(int64_t n, const float *x, const float *y);
    void (*axpy_f16)(int64_t n, float a, const uint16_t *x, float *y);
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    /// A whole row-range matmul for the types that have one (returns 0 for the others, which then run the generic
    /// driver over `dot`); NULL when the set has none.
    int (*matmul_rows)(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                       const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
    void (*matmul_q4_1_x8)(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                           int64_t ncols, float *y, int64_t y_stride);
    void (*matmul_q8_0_x8)(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                           int64_t ncols, float *y, int64_t y_stride);
    /// The K-quant prefill GEMM (ck_gemm_kquant).
    void (*gemm_kquant)(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
    /// The 32-element-block prefill GEMM (ck_gemm_block32).
    void (*gemm_block32)(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                         const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
    void (*attn_scores_gqa)(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d, const void *k_base,
                            size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale,
                            float *s, int64_t s_stride);
    void (*attn_values_gqa)(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d, const void *v_base,
                            size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                            int64_t out_stride);
    /// The 8-bit MLA latent cache's kernels (ck_mla_q8_scores / _values).
    void (*mla_q8_scores)(const float *q, int64_t q_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                          size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale,
                          float *s, int64_t s_stride);
    void (*mla_q8_values)(const float *w, int64_t w_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                          size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                          int64_t out_stride);
    void (*softmax)(float *x, int64_t n);
    void (*silu_mul)(const float *g, const float *u, float *out, int64_t n);
    void (*rms_norm)(const float *x, const float *w, float eps, int64_t n, float *y);
    void (*fp16_round_row)(float *x, int64_t n);
    void (*fp32_to_fp16_row)(const float *x, uint16_t *y, int64_t n);
} ck_kernel_table;

// The f16 / bf16 / f32 dot products in the void-pointer shape of ck_dot_fn.
static float dot_f16_ref(int64_t n, const void *x, const void *y) { return ck_dot_f16_f32_ref(n, x, y); }
static float dot_f16_avx2(int64_t n, const void *x, const void *y) { return ck_dot_f16_f32_avx2(n, x, y); }
static float dot_bf16_ref(int64_t n, const void *x, const void *y) { return ck_dot_bf16_f32_ref(n, x, y); }
static float dot_bf16_avx2(int64_t n, const void *x, const void *y) { return ck_dot_bf16_f32_avx2(n, x, y); }
static float dot_f32_ref(int64_t n, const void *x, const void *y) { return ck_dot_f32_ref(n, x, y); }
static float dot_f32_avx2(int64_t n, const void *x, const void *y) { return ck_dot_f32_avx2(n, x, y); }

/// The scalar reference kernels (ref/).
static const ck_kernel_table ck_ref_kernels = {
    .quantize_row_q8_0 = ck_quantize_row_q8_0_ref,
    .quantize_row_q8_1 = ck_quantize_row_q8_1_ref,
    .quantize_row_q8_K = ck_quantize_row_q8_K_ref,
    .dot = {
        [CK_F32] = dot_f32_ref, [CK_F16] = dot_f16_ref, [CK_BF16] = dot_bf16_ref,
        [CK_Q4_0] = ck_dot_q4_0_q8_0_ref, [CK_Q4_1] = ck_dot_q4_1_q8_1_ref, [CK_Q8_0] = ck_dot_q8_0_q8_0_ref,
        [CK_Q5_0] = ck_dot_q5_0_q8_0_ref, [CK_Q5_1] = ck_dot_q5_1_q8_1_ref,
        [CK_Q4_K] = ck_dot_q4_K_q8_K_ref, [CK_Q5_K] = ck_dot_q5_K_q8_K_ref, [CK_Q6_K] = ck_dot_q6_K_q8_K_ref,
        [CK_Q2_K] = ck_dot_q2_K_q8_K_ref, [CK_Q3_K] = ck_dot_q3_K_q8_K_ref,
        [CK_IQ4_NL] = ck_dot_iq4_nl_q8_0_ref, [CK_IQ4_XS] = ck_dot_iq4_xs_q8_K_ref,
        // i-quants (ref/iquants.c)
        [CK_IQ2_XXS] = ck_dot_iq2_xxs_q8_K_ref, [CK_IQ2_XS] = ck_dot_iq2_xs_q8_K_ref, [CK_IQ2_S] = ck_dot_iq2_s_q8_K_ref,
        [CK_IQ3_XXS] = ck_dot_iq3_xxs_q8_K_ref, [CK_IQ3_S] = ck_dot_iq3_s_q8_K_ref,
        [CK_IQ1_S] = ck_dot_iq1_s_q8_K_ref, [CK_IQ1_M] = ck_dot_iq1_m_q8_K_ref,
    },
    .dot_f16_f32 = ck_dot_f16_f32_ref,
    .dot_bf16_f32 = ck_dot_bf16_f32_ref,
    .dot_f32 = ck_dot_f32_ref,
    .axpy_f16 = ck_axpy_f16_ref,
    .axpy_f32 = ck_axpy_f32_ref,
    .matmul_rows = NULL,
    .matmul_q4_1_x8 = ck_matmul_q4_1_x8_ref,
    .matmul_q8_0_x8 = ck_matmul_q8_0_x8_ref,
    .gemm_kquant = ck_gemm_kquant_ref,
    .gemm_block32 = ck_gemm_block32_ref,
    .attn_scores_gqa = ck_attn_scores_gqa_ref,
    .attn_values_gqa = ck_attn_values_gqa_ref,
    .mla_q8_scores = ck_mla_q8_scores_ref,
    .mla_q8_values = ck_mla_q8_values_ref,
    .softmax = ck_softmax_ref,
    .silu_mul = ck_silu_mul_ref,
    .rms_norm = ck_rms_norm_ref,
    .fp16_round_row = ck_fp16_round_row_ref,
    .fp32_to_fp16_row = ck_fp32_to_fp16_row_ref,
};

/// The AVX2 + FMA + F16C kernels (x86/).
static const ck_kernel_table ck_avx2_kernels = {
    .quantize_row_q8_0 = ck_quantize_row_q8_0_avx2,
    .quantize_row_q8_1 = ck_quantize_row_q8_1_avx2,
    .quantize_row_q8_K = ck_quantize_row_q8_K_avx2,
    .dot = {
        [CK_F32] = dot_f32_avx2, [CK_F16] = dot_f16_avx2, [CK_BF16] = dot_bf16_avx2,
        [CK_Q4_0] = ck_dot_q4_0_q8_0_avx2, [CK_Q4_1] = ck_dot_q4_1_q8_1_avx2, [CK_Q8_0] = ck_dot_q8_0_q8_0_avx2,
        [CK_Q5_0] = ck_dot_q5_0_q8_0_avx2, [CK_Q5_1] = ck_dot_q5_1_q8_1_avx2,
        [CK_Q4_K] = ck_dot_q4_K_q8_K_avx2, [CK_Q5_K] = ck_dot_q5_K_q8_K_avx2, [CK_Q6_K] = ck_dot_q6_K_q8_K_avx2,
        [CK_Q2_K] = ck_dot_q2_K_q8_K_avx2, [CK_Q3_K] = ck_dot_q3_K_q8_K_avx2,
        [CK_IQ4_NL] = ck_dot_iq4_nl_q8_0_avx2, [CK_IQ4_XS] = ck_dot_iq4_xs_q8_K_avx2,
        // i-quants (x86/avx2_iquants.c)
        [CK_IQ2_XXS] = ck_dot_iq2_xxs_q8_K_avx2, [CK_IQ2_XS] = ck_dot_iq2_xs_q8_K_avx2, [CK_IQ2_S] = ck_dot_iq2_s_q8_K_avx2,
        [CK_IQ3_XXS] = ck_dot_iq3_xxs_q8_K_avx2, [CK_IQ3_S] = ck_dot_iq3_s_q8_K_avx2,
        [CK_IQ1_S] = ck_dot_iq1_s_q8_K_avx2, [CK_IQ1_M] = ck_dot_iq1_m_q8_K_avx2,
    },
    .dot_f16_f32 = ck_dot_f16_f32_avx2,
    .dot_bf16_f32 = ck_dot_bf16_f32_avx2,
    .dot_f32 = ck_dot_f32_avx2,
    .axpy_f16 = ck_axpy_f16_avx2,
    .axpy_f32 = ck_axpy_f32_avx2,
    .matmul_rows = ck_matmul_rows_avx2,
    .matmul_q4_1_x8 = ck_matmul_q4_1_x8_avx2,
    .matmul_q8_0_x8 = ck_matmul_q8_0_x8_avx2,
    .gemm_kquant = ck_gemm_kquant_avx2,
    .gemm_block32 = ck_gemm_block32_avx2,
    .attn_scores_gqa = ck_attn_scores_gqa_avx2,
    .attn_values_gqa = ck_attn_values_gqa_avx2,
    // Without VPDPBUSD the 8-bit MLA cache runs the scalar twins (VPMADDUBSW's 16-bit sums saturate).
    .mla_q8_scores = ck_mla_q8_scores_ref,
    .mla_q8_values = ck_mla_q8_values_ref,
    .softmax = ck_softmax_avx2,
    .silu_mul = ck_silu_mul_avx2,
    .rms_norm = ck_rms_norm_avx2,
    .fp16_round_row = ck_fp16_round_row_avx2,
    .fp32_to_fp16_row = ck_fp32_to_fp16_row_avx2,
};

/// The AVX2 kernels with the AVX-VNNI eight-row GEMMs (x86/avxvnni_gemm_x8.c) and K-quant and 32-element-block GEMMs
/// in place of theirs; filled in at load.
static ck_kernel_table ck_avxvnni_kernels;
/// The AVX2 kernels with the AVX512-VNNI eight-row GEMMs (x86/avx512vnni_gemm_x8.c), K-quant and 32-element-block
/// GEMMs and few-row kernels (x86/avx512vnni_rows.c) and the AVX512-VL attention kernels (x86/avx512_attention.c);
/// filled in at load.
static ck_kernel_table ck_avx512vnni_kernels;

// ---------------------------------------------------------------- CPU features

/// The kernel sets by level (see ck_kernel_level).
static const ck_kernel_table *const ck_levels[4] = {&ck_ref_kernels, &ck_avx2_kernels, &ck_avxvnni_kernels,
                                                    &ck_avx512vnni_kernels};
/// Which levels this CPU runs (level 0 always). AVX-VNNI and AVX512-VNNI are independent: Zen 4 and Ice Lake have
/// only the second, Alder Lake client parts only the first.
static int g_cpu_runs[4] = {1, 0, 0, 0};
/// The table in use.
static const ck_kernel_table *g_kernels = &ck_ref_kernels;
/// The cap SPUTNIK_KERNELS set at load (3: none); ck_force_reference(0) returns to it.
static int g_max_level = 3;
/// The names of the levels, as SPUTNIK_KERNELS takes them.
static const char *const ck_level_names[4] = {"reference", "avx2", "avxvnni", "avx512vnni"};
/// SPUTNIK_KERNELS when it names no level (no cap applied), else NULL.
static const char *g_cap_ignored = NULL;

/// Whether the CPU has AVX512-BF16 besides the AVX512-VNNI set.
static int g_avx512bf16 = 0;

int ck_cpu_has_avx512bf16(void) { return g_avx512bf16; }

int ck_set_kernel_level(int max_level) {
    int level = max_level > 3 ? 3 : max_level;
    while (level > 0 && !g_cpu_runs[level]) level--;
    if (level < 0) level = 0;
    g_kernels = ck_levels[level];
    return level;
}

__attribute__((constructor)) static void ck_init(void) {
    ck_avxvnni_kernels = ck_avx2_kernels;
    ck_avxvnni_kernels.matmul_q4_1_x8 = ck_matmul_q4_1_x8_avxvnni;
    ck_avxvnni_kernels.matmul_q8_0_x8 = ck_matmul_q8_0_x8_avxvnni;
    ck_avxvnni_kernels.gemm_kquant = ck_gemm_kquant_avxvnni;
    ck_avxvnni_kernels.gemm_block32 = ck_gemm_block32_avxvnni;
    ck_avx512vnni_kernels = ck_avx2_kernels;
    ck_avx512vnni_kernels.matmul_q4_1_x8 = ck_matmul_q4_1_x8_avx512vnni;
    ck_avx512vnni_kernels.matmul_q8_0_x8 = ck_matmul_q8_0_x8_avx512vnni;
    ck_avx512vnni_kernels.gemm_kquant = ck_gemm_kquant_avx512vnni;
    ck_avx512vnni_kernels.gemm_block32 = ck_gemm_block32_avx512vnni;
    ck_avx512vnni_kernels.matmul_rows = ck_matmul_rows_avx512vnni;
    ck_avx512vnni_kernels.attn_scores_gqa = ck_attn_scores_gqa_avx512;
    ck_avx512vnni_kernels.attn_values_gqa = ck_attn_values_gqa_avx512;
    ck_avx512vnni_kernels.mla_q8_scores = ck_mla_q8_scores_avx512vnni;
    ck_avx512vnni_kernels.mla_q8_values = ck_mla_q8_values_avx512vnni;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        g_cpu_runs[1] = 1;
        g_cpu_runs[2] = __builtin_cpu_supports("avxvnni");
        g_cpu_runs[3] = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
        g_avx512bf16 = g_cpu_runs[3] && __builtin_cpu_supports("avx512bf16");
    }
    if (g_avx512bf16) {
        ck_avx512vnni_kernels.attn_scores_gqa = ck_attn_scores_gqa_avx512bf16;
        ck_avx512vnni_kernels.attn_values_gqa = ck_attn_values_gqa_avx512bf16;
    }
#endif
    const char *cap = getenv("SPUTNIK_KERNELS");
    if (cap) g_cap_ignored = cap;
    for (int level = 0; cap && level < 4; level++)
        if (strcmp(cap, ck_level_names[level]) == 0) {
            g_max_level = level;
            g_cap_ignored = NULL;
        }
    ck_set_kernel_level(g_max_level);
}

const char *ck_kernel_level_name(int level) { return level >= 0 && level < 4 ? ck_level_names[level] : NULL; }
const char *ck_kernel_cap_ignored(void) { return g_cap_ignored; }

int ck_has_avx2(void) { return g_kernels != &ck_ref_kernels; }
int ck_kernel_level(void) {
    for (int level = 3; level > 0; level--)
        if (g_kernels == ck_levels[level]) return level;
    return 0;
}
int ck_cpu_runs_kernel_level(int level) { return level >= 0 && level < 4 && g_cpu_runs[level]; }
void ck_force_reference(int on) { ck_set_kernel_level(on ? 0 : g_max_level); }

void ck_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// ---------------------------------------------------------------- activation quantizers

void ck_quantize_row_q8_0(const float *x, void *y, int64_t n) { g_kernels->quantize_row_q8_0(x, y, n); }
void ck_quantize_row_q8_1(const float *x, void *y, int64_t n) { g_kernels->quantize_row_q8_1(x, y, n); }
void ck_quantize_row_q8_K(const float *x, void *y, int64_t n) { g_kernels->quantize_row_q8_K(x, y, n); }

void ck_quantize_activation_row(int weight_type, const float *x, void *y, int64_t n) {
    switch (ck_activation_type(weight_type)) {
    case CK_Q8_0: ck_quantize_row_q8_0(x, y, n); break;
    case CK_Q8_1: ck_quantize_row_q8_1(x, y, n); break;
    case CK_Q8_K: ck_quantize_row_q8_K(x, y, n); break;
    case CK_F32: memcpy(y, x, (size_t)n * 4); break;
    default: break;
    }
}

// ---------------------------------------------------------------- dot products and axpy

float ck_dot_q4_0_q8_0(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q4_0](n, x, y); }
float ck_dot_q4_1_q8_1(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q4_1](n, x, y); }
float ck_dot_q8_0_q8_0(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q8_0](n, x, y); }
float ck_dot_q5_0_q8_0(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q5_0](n, x, y); }
float ck_dot_q5_1_q8_1(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q5_1](n, x, y); }
float ck_dot_q4_K_q8_K(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q4_K](n, x, y); }
float ck_dot_q5_K_q8_K(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q5_K](n, x, y); }
float ck_dot_q6_K_q8_K(int64_t n, const void *x, const void *y) { return g_kernels->dot[CK_Q6_K](n, x, y); }
float ck_dot_f16_f32(int64_t n, const uint16_t *x, const float *y) { return g_kernels->dot_f16_f32(n, x, y); }
float ck_dot_bf16_f32(int64_t n, const uint16_t *x, const float *y) { return g_kernels->dot_bf16_f32(n, x, y); }
float ck_dot_f32(int64_t n, const float *x, const float *y) { return g_kernels->dot_f32(n, x, y); }
void ck_axpy_f16(int64_t n, float a, const uint16_t *x, float *y) { g_kernels->axpy_f16(n, a, x, y); }
void ck_axpy_f32(int64_t n, float a, const float *x, float *y) { g_kernels->axpy_f32(n, a, x, y); }

// ---------------------------------------------------------------- matmul

/// The generic driver over `k`'s dot product for `weight_type`; nothing for a type without one.
static void matmul_generic(const ck_kernel_table *k, int weight_type, const void *w, size_t w_row_bytes, int64_t n,
                           int64_t r0, int64_t r1, const void *x, size_t x_row_bytes, int64_t ncols, float *y,
                           int64_t y_stride) {
    if (weight_type < 0 || weight_type >= CK_TYPE_COUNT || !k->dot[weight_type]) return;
    ck_matmul_rows_generic(k->dot[weight_type], w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_matmul_rows(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                    const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    const ck_kernel_table *k = g_kernels;
    if (k->matmul_rows && k->matmul_rows(weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride))
        return;
    matmul_generic(k, weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_matmul_rows_gemm(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                         const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    if (g_kernels != &ck_ref_kernels) {   // every SIMD set has the GEMMs (the K-quant one per set)
        switch (weight_type) {
        case CK_Q2_K:   // q4_K / q5_K / q6_K: the row kernels give the GEMM's bits (ck_matmul_rows below)
            g_kernels->gemm_kquant(weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
            return;
        case CK_Q4_0: case CK_Q5_0: case CK_Q8_0: case CK_IQ4_NL:
            g_kernels->gemm_block32(weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
            return;
        default: break;
        }
    }
    ck_matmul_rows(weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_matmul_rows_ref(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    matmul_generic(&ck_ref_kernels, weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_gemm_kquant(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                    const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    g_kernels->gemm_kquant(weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_gemm_block32(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                     const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    g_kernels->gemm_block32(weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_matmul_q4_1_x8(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                       int64_t ncols, float *y, int64_t y_stride) {
    g_kernels->matmul_q4_1_x8(wp, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_matmul_q8_0_x8(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                       int64_t ncols, float *y, int64_t y_stride) {
    g_kernels->matmul_q8_0_x8(wp, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

// ---------------------------------------------------------------- attention and softmax

// The AVX2 attention kernels need the head size to be a multiple of 8; other sizes run the reference.
void ck_attn_scores_gqa(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d, const void *k_base,
                        size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale, float *s,
                        int64_t s_stride) {
    const ck_kernel_table *k = d % 8 == 0 ? g_kernels : &ck_ref_kernels;
    k->attn_scores_gqa(kv_type, q, q_stride, g, d, k_base, slot_bytes, table, bs, n, scale, s, s_stride);
}

void ck_attn_values_gqa(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d, const void *v_base,
                        size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out,
                        int64_t out_stride) {
    const ck_kernel_table *k = d % 8 == 0 ? g_kernels : &ck_ref_kernels;
    k->attn_values_gqa(kv_type, w, w_stride, g, d, v_base, slot_bytes, table, bs, n, out, out_stride);
}

void ck_mla_q8_scores(const float *q, int64_t q_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                      size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale, float *s,
                      int64_t s_stride) {
    g_kernels->mla_q8_scores(q, q_stride, g, dl, dr, base, slot_bytes, table, bs, n, scale, s, s_stride);
}

void ck_mla_q8_values(const float *w, int64_t w_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                      size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out, int64_t out_stride) {
    g_kernels->mla_q8_values(w, w_stride, g, dl, dr, base, slot_bytes, table, bs, n, out, out_stride);
}

void ck_softmax(float *x, int64_t n) { g_kernels->softmax(x, n); }

void ck_silu_mul(const float *g, const float *u, float *out, int64_t n) { g_kernels->silu_mul(g, u, out, n); }
void ck_rms_norm(const float *x, const float *w, float eps, int64_t n, float *y) { g_kernels->rms_norm(x, w, eps, n, y); }

void ck_fp16_round_row(float *x, int64_t n) { g_kernels->fp16_round_row(x, n); }
void ck_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n) { g_kernels->fp32_to_fp16_row(x, y, n); }
