// Scalar reference attention over a paged KV cache (one query head: scores, then the weighted sum of V rows; the
// grouped-query forms head by head) and softmax — the `_ref` twins of ck_attn_scores_avx2, ck_attn_values_avx2,
// their _gqa forms and ck_softmax_avx2. With a bf16 cache the twins repeat the SIMD kernels' order of operations
// exactly (VDPBF16PS pair steps), so the kernels must give their bits.
#include "ckernels.h"
#include <math.h>

static inline const char *kv_row(const void *base, size_t slot_bytes, const int32_t *table, int64_t bs, int64_t p) {
    return (const char *)base + (size_t)((int64_t)table[p / bs] * bs + p % bs) * slot_bytes;
}

/// acc + a1·b1, then + a0·b0: one bf16 pair step of VDPBF16PS (Intel SDM, "VDPBF16PS": the odd element's product
/// first). Products of two bf16 values are exact in float, so each step rounds once, as an FMA does.
static inline float bf16_pair_step(float acc, float a0, float b0, float a1, float b1) {
#pragma clang fp contract(off)
    acc = acc + a1 * b1;
    return acc + a0 * b0;
}

/// The bf16 cache's scores: the query rounded to bf16; per position eight lane sums over the 16-element chunks (lane
/// j takes elements 2j + 1 then 2j of each chunk), added as t_j = l_j + l_{j+4}, then (t_0 + t_1) + (t_2 + t_3).
static void attn_scores_bf16_ref(const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                                 const int32_t *table, int64_t bs, int64_t n, float scale, float *s) {
#pragma clang fp contract(off)
    for (int64_t p = 0; p < n; p++) {
        const uint16_t *row = (const uint16_t *)kv_row(k_base, slot_bytes, table, bs, p);
        float lane[8] = {0};
        for (int64_t c = 0; c < d; c += 16)
            for (int j = 0; j < 8; j++) {
                const int64_t e = c + 2 * j;
                lane[j] = bf16_pair_step(lane[j], ck_bf16_to_fp32(ck_fp32_to_bf16(q[e])), ck_bf16_to_fp32(row[e]),
                                         ck_bf16_to_fp32(ck_fp32_to_bf16(q[e + 1])), ck_bf16_to_fp32(row[e + 1]));
            }
        float t[4];
        for (int j = 0; j < 4; j++) t[j] = lane[j] + lane[j + 4];
        s[p] = ((t[0] + t[1]) + (t[2] + t[3])) * scale;
    }
}

/// The bf16 cache's weighted sum: weights rounded to bf16; per column, positions in pairs (p + 1's product, then
/// p's), an odd last position paired with a zero weight on its own row.
static void attn_values_bf16_ref(const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                                 const int32_t *table, int64_t bs, int64_t n, float *out) {
    for (int64_t i = 0; i < d; i++) {
        float acc = 0.0f;
        for (int64_t p = 0; p < n; p += 2) {
            const uint16_t *r0 = (const uint16_t *)kv_row(v_base, slot_bytes, table, bs, p);
            const uint16_t *r1 = p + 1 < n ? (const uint16_t *)kv_row(v_base, slot_bytes, table, bs, p + 1) : r0;
            const float w1 = p + 1 < n ? ck_bf16_to_fp32(ck_fp32_to_bf16(w[p + 1])) : 0.0f;
            acc = bf16_pair_step(acc, ck_bf16_to_fp32(ck_fp32_to_bf16(w[p])), ck_bf16_to_fp32(r0[i]), w1,
                                 ck_bf16_to_fp32(r1[i]));
        }
        out[i] = acc;
    }
}

void ck_attn_scores_ref(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                        const int32_t *table, int64_t bs, int64_t n, float scale, float *s) {
    if (kv_type == CK_BF16) {
        attn_scores_bf16_ref(q, d, k_base, slot_bytes, table, bs, n, scale, s);
        return;
    }
    for (int64_t p = 0; p < n; p++) {
        const char *row = kv_row(k_base, slot_bytes, table, bs, p);
        float acc = 0.0f;
        for (int64_t i = 0; i < d; i++)
            acc += q[i] * (kv_type == CK_F16 ? ck_fp16_to_fp32(((const uint16_t *)row)[i]) : ((const float *)row)[i]);
        s[p] = acc * scale;
    }
}

void ck_attn_values_ref(int kv_type, const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                        const int32_t *table, int64_t bs, int64_t n, float *out) {
    if (kv_type == CK_BF16) {
        attn_values_bf16_ref(w, d, v_base, slot_bytes, table, bs, n, out);
        return;
    }
    for (int64_t i = 0; i < d; i++) out[i] = 0.0f;
    for (int64_t p = 0; p < n; p++) {
        const char *row = kv_row(v_base, slot_bytes, table, bs, p);
        if (kv_type == CK_F16) {
            const float wp = ck_fp16_to_fp32(ck_fp32_to_fp16(w[p]));
            for (int64_t i = 0; i < d; i++) out[i] += wp * ck_fp16_to_fp32(((const uint16_t *)row)[i]);
        } else {
            for (int64_t i = 0; i < d; i++) out[i] += w[p] * ((const float *)row)[i];
        }
    }
}

void ck_attn_scores_gqa_ref(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d, const void *k_base,
                            size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale, float *s,
                            int64_t s_stride) {
    for (int64_t h = 0; h < g; h++)
        ck_attn_scores_ref(kv_type, q + h * q_stride, d, k_base, slot_bytes, table, bs, n, scale, s + h * s_stride);
}

void ck_attn_values_gqa_ref(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d, const void *v_base,
                            size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out,
                            int64_t out_stride) {
    for (int64_t h = 0; h < g; h++)
        ck_attn_values_ref(kv_type, w + h * w_stride, d, v_base, slot_bytes, table, bs, n, out + h * out_stride);
}

// ---------------------------------------------------------------- RMSNorm

/// The sixteen lane sums (fmaf, as the AVX2 twin's FMAs), added in lane order from -0, then the tail's float products;
/// no contraction, so the compiler does not fuse what the twin keeps apart.
float ck_rms_norm_scale_ref(const float *lane16, const float *x, int64_t i, int64_t n, float eps) {
#pragma clang fp contract(off)
    float sum = -0.0f;
    for (int k = 0; k < 16; k++) sum += lane16[k];
    for (; i < n; i++) sum += x[i] * x[i];
    return 1.0f / sqrtf(sum / (float)n + eps);
}

void ck_rms_norm_ref(const float *x, const float *w, float eps, int64_t n, float *y) {
#pragma clang fp contract(off)
    float lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) lane[k] = fmaf(x[i + k], x[i + k], lane[k]);
    const float scale = ck_rms_norm_scale_ref(lane, x, i, n, eps);
    for (int64_t j = 0; j < n; j++) y[j] = x[j] * scale * w[j];
}

// ---------------------------------------------------------------- softmax

void ck_silu_mul_ref(const float *g, const float *u, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void ck_softmax_ref(float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}
