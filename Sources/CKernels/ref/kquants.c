// Scalar reference kernels of the 5-bit, K-quant and bf16 formats: dequantizers, the q8_K activation quantizer
// and dot products — the `_ref` twins of x86/avx2_quants.c and x86/avx2_kquants.c. Formats:
// ggml/src/ggml-common.h (block_q5_0, block_q5_1, block_q4_K, block_q5_K, block_q6_K, block_q8_K); semantics:
// ggml/src/ggml-quants.c (dequantize_row_*, quantize_row_q8_K_ref, get_scale_min_k4) and ggml-cpu/quants.c
// (ggml_vec_dot_*_generic). Written independently.
#include "ckernels.h"
#include "../internal.h"
#include <math.h>
#include <string.h>

static inline uint32_t load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/// The 5-bit values 0...31 of one q5_0 / q5_1 block, in element order.
static inline void q5_values(const uint8_t *qs, const uint8_t *qh4, int v[32]) {
    const uint32_t qh = load_u32(qh4);
    for (int j = 0; j < 16; j++) {
        v[j] = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
        v[j + 16] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
    }
}

/// The 6-bit values 0...63 of one q6_K block, in element order.
static inline void q6_values(const ck_block_q6_K *b, int v[256]) {
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = b->ql + 64 * half, *qh = b->qh + 32 * half;
        int *o = v + 128 * half;
        for (int l = 0; l < 32; l++) {
            o[l]      = (ql[l] & 0x0f)      | (((qh[l] >> 0) & 3) << 4);
            o[l + 32] = (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4);
            o[l + 64] = (ql[l] >> 4)        | (((qh[l] >> 4) & 3) << 4);
            o[l + 96] = (ql[l + 32] >> 4)   | (((qh[l] >> 6) & 3) << 4);
        }
    }
}

/// The 4- or 5-bit values of one q4_K / q5_K block (qh NULL for q4_K), in element order.
static inline void k_values(const uint8_t *qs, const uint8_t *qh, int v[256]) {
    for (int p = 0; p < 4; p++) {           // sub-block pair p: elements 64p ... 64p+63
        for (int l = 0; l < 32; l++) {
            int lo = qs[32 * p + l] & 0x0f, hi = qs[32 * p + l] >> 4;
            if (qh) {
                lo |= ((qh[l] >> (2 * p)) & 1) << 4;
                hi |= ((qh[l] >> (2 * p + 1)) & 1) << 4;
            }
            v[64 * p + l] = lo;
            v[64 * p + 32 + l] = hi;
        }
    }
}

void ck_dequantize_row_more(int type, const void *vx, float *y, int64_t n) {
    switch (type) {
    case CK_BF16: {
        const uint16_t *x = vx;
        for (int64_t i = 0; i < n; i++) y[i] = ck_bf16_to_fp32(x[i]);
        return;
    }
    case CK_Q5_0: case CK_Q5_1: {
        const int is1 = type == CK_Q5_1;
        const size_t bs = is1 ? sizeof(ck_block_q5_1) : sizeof(ck_block_q5_0);
        for (int64_t b = 0; b < n / CK_QK; b++, y += CK_QK) {
            const uint8_t *blk = (const uint8_t *)vx + (size_t)b * bs;
            int v[32];
            if (is1) {
                const ck_block_q5_1 *x = (const ck_block_q5_1 *)blk;
                q5_values(x->qs, x->qh, v);
                const float d = ck_fp16_to_fp32(x->d), m = ck_fp16_to_fp32(x->m);
                for (int j = 0; j < 32; j++) y[j] = d * (float)v[j] + m;
            } else {
                const ck_block_q5_0 *x = (const ck_block_q5_0 *)blk;
                q5_values(x->qs, x->qh, v);
                const float d = ck_fp16_to_fp32(x->d);
                for (int j = 0; j < 32; j++) y[j] = d * (float)(v[j] - 16);
            }
        }
        return;
    }
    case CK_Q4_K: case CK_Q5_K: {
        for (int64_t b = 0; b < n / CK_QK_K; b++, y += CK_QK_K) {
            const uint8_t *qs, *qh = NULL, *scales;
            uint16_t d16, dmin16;
            if (type == CK_Q4_K) {
                const ck_block_q4_K *x = (const ck_block_q4_K *)vx + b;
                qs = x->qs; scales = x->scales; d16 = x->d; dmin16 = x->dmin;
            } else {
                const ck_block_q5_K *x = (const ck_block_q5_K *)vx + b;
                qs = x->qs; qh = x->qh; scales = x->scales; d16 = x->d; dmin16 = x->dmin;
            }
            const float d = ck_fp16_to_fp32(d16), dmin = ck_fp16_to_fp32(dmin16);
            int v[256];
            k_values(qs, qh, v);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, mn;
                ck_k_scale_min(j, scales, &sc, &mn);
                const float d1 = d * sc, m1 = dmin * mn;
                for (int l = 0; l < 32; l++) y[32 * j + l] = d1 * (float)v[32 * j + l] - m1;
            }
        }
        return;
    }
    case CK_Q6_K: {
        for (int64_t b = 0; b < n / CK_QK_K; b++, y += CK_QK_K) {
            const ck_block_q6_K *x = (const ck_block_q6_K *)vx + b;
            const float d = ck_fp16_to_fp32(x->d);
            int v[256];
            q6_values(x, v);
            for (int i = 0; i < 256; i++) y[i] = d * (float)x->scales[i / 16] * (float)(v[i] - 32);
        }
        return;
    }
    default:
        if (!ck_dequantize_row_lowbit_k(type, vx, y, n)) ck_dequantize_row_iq(type, vx, y, n);
        return;
    }
}

// ---------------------------------------------------------------- q8_K quantizer

void ck_quantize_row_q8_K_ref(const float *x, void *vy, int64_t n) {
    ck_block_q8_K *y = vy;
    for (int64_t b = 0; b < n / CK_QK_K; b++, x += CK_QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < CK_QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.0f) {
            y[b].d = 0.0f;
            memset(y[b].qs, 0, sizeof(y[b].qs));
            memset(y[b].bsums, 0, sizeof(y[b].bsums));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < CK_QK_K; j++) {
            const long v = lrintf(iscale * x[j]);   // round half to even, as ggml's nearest_int
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int k = 0; k < CK_QK_K / 16; k++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += y[b].qs[16 * k + i];
            y[b].bsums[k] = (int16_t)s;
        }
        y[b].d = 1.0f / iscale;
    }
}

// ---------------------------------------------------------------- reference dot products

float ck_dot_q5_0_q8_0_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q5_0 *x = vx; const ck_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        int v[32], acc = 0;
        q5_values(x[b].qs, x[b].qh, v);
        for (int j = 0; j < 32; j++) acc += (v[j] - 16) * y[b].qs[j];
        sum += (float)acc * ck_fp16_to_fp32(x[b].d) * ck_fp16_to_fp32(y[b].d);
    }
    return sum;
}

float ck_dot_q5_1_q8_1_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q5_1 *x = vx; const ck_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        int v[32], acc = 0;
        q5_values(x[b].qs, x[b].qh, v);
        for (int j = 0; j < 32; j++) acc += v[j] * y[b].qs[j];
        sum += (float)acc * ck_fp16_to_fp32(x[b].d) * ck_fp16_to_fp32(y[b].d)
             + ck_fp16_to_fp32(x[b].m) * ck_fp16_to_fp32(y[b].s);
    }
    return sum;
}

/// Shared q4_K / q5_K product: sum_j d·sc_j·Σ(q·a) − dmin·mn_j·Σa over the eight sub-blocks of each block.
static float dot_k45_ref(int64_t n, const void *vx, const void *vy, int five) {
    const ck_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        const uint8_t *qs, *qh = NULL, *scales;
        uint16_t d16, dmin16;
        if (five) {
            const ck_block_q5_K *x = (const ck_block_q5_K *)vx + b;
            qs = x->qs; qh = x->qh; scales = x->scales; d16 = x->d; dmin16 = x->dmin;
        } else {
            const ck_block_q4_K *x = (const ck_block_q4_K *)vx + b;
            qs = x->qs; scales = x->scales; d16 = x->d; dmin16 = x->dmin;
        }
        int v[256];
        k_values(qs, qh, v);
        int sumq = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            ck_k_scale_min(j, scales, &sc, &mn);
            int acc = 0;
            for (int l = 0; l < 32; l++) acc += v[32 * j + l] * y[b].qs[32 * j + l];
            sumq += sc * acc;
            summ += mn * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        sum += y[b].d * (ck_fp16_to_fp32(d16) * (float)sumq - ck_fp16_to_fp32(dmin16) * (float)summ);
    }
    return sum;
}

float ck_dot_q4_K_q8_K_ref(int64_t n, const void *x, const void *y) { return dot_k45_ref(n, x, y, 0); }
float ck_dot_q5_K_q8_K_ref(int64_t n, const void *x, const void *y) { return dot_k45_ref(n, x, y, 1); }

float ck_dot_q6_K_q8_K_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q6_K *x = vx; const ck_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        int v[256], sumq = 0;
        q6_values(&x[b], v);
        for (int k = 0; k < 16; k++) {
            int acc = 0;
            for (int i = 0; i < 16; i++) acc += (v[16 * k + i] - 32) * y[b].qs[16 * k + i];
            sumq += x[b].scales[k] * acc;
        }
        sum += ck_fp16_to_fp32(x[b].d) * y[b].d * (float)sumq;
    }
    return sum;
}

float ck_dot_bf16_f32_ref(int64_t n, const uint16_t *x, const float *y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)ck_bf16_to_fp32(x[i]) * (double)y[i];
    return (float)sum;
}
