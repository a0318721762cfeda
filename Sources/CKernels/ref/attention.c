// Scalar reference attention over a paged KV cache (one query head: scores, then the weighted sum of V rows; the
// grouped-query forms head by head) and softmax — the `_ref` twins of ck_attn_scores_avx2, ck_attn_values_avx2,
// their _gqa forms and ck_softmax_avx2.
#include "ckernels.h"
#include <math.h>

static inline const char *kv_row(const void *base, size_t slot_bytes, const int32_t *table, int64_t bs, int64_t p) {
    return (const char *)base + (size_t)((int64_t)table[p / bs] * bs + p % bs) * slot_bytes;
}

void ck_attn_scores_ref(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                        const int32_t *table, int64_t bs, int64_t n, float scale, float *s) {
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
