// Scalar reference kernels of the low-bit K-quants (q2_K, q3_K) and the non-linear 4-bit types (iq4_nl, iq4_xs):
// dequantizers and dot products, the `_ref` twins of x86/avx2_lowbit_k.c. Formats: ggml/src/ggml-common.h
// (block_q2_K, block_q3_K, block_iq4_nl, block_iq4_xs, kvalues_iq4nl); semantics: ggml/src/ggml-quants.c
// (dequantize_row_q2_K / _q3_K / _iq4_nl / _iq4_xs). Written independently.
#include "ckernels.h"
#include "../internal.h"
#include <string.h>

// Dequantization must round exactly like gguf-py's reference (separate multiply and subtract).
#pragma clang fp contract(off)

_Static_assert(sizeof(ck_block_q2_K) == 84, "q2_K block must be 84 bytes like ggml");
_Static_assert(sizeof(ck_block_q3_K) == 110, "q3_K block must be 110 bytes like ggml");
_Static_assert(sizeof(ck_block_iq4_nl) == 18, "iq4_nl block must be 18 bytes like ggml");
_Static_assert(sizeof(ck_block_iq4_xs) == 136, "iq4_xs block must be 136 bytes like ggml");

const int8_t ck_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// NOTE: the 12 scale bytes of q3_K hold sixteen 6-bit scales s[0..15]:
//   low 4 bits of s[k]: bytes 0-7, low nibble for k < 8 (byte k), high nibble for k ≥ 8 (byte k - 8)
//   high 2 bits of s[k]: bits 2(k/4)...2(k/4)+1 of byte 8 + k%4
int ck_q3_K_scale(int k, const uint8_t *s) {
    const int lo = k < 8 ? (s[k] & 0x0f) : (s[k - 8] >> 4);
    const int hi = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
    return lo | (hi << 4);
}

/// The 2-bit values 0...3 of a q2_K / q3_K `qs[64]`, in element order.
static inline void q2_values(const uint8_t *qs, int v[256]) {
    for (int e = 0; e < 256; e++) {
        const int h = e >> 7, g = (e >> 5) & 3, l = e & 31;
        v[e] = (qs[32 * h + l] >> (2 * g)) & 3;
    }
}

/// The signed 3-bit values −4...3 of one q3_K block, in element order.
static inline void q3_values(const ck_block_q3_K *x, int v[256]) {
    q2_values(x->qs, v);
    for (int e = 0; e < 256; e++) {
        const int h = e >> 7, g = (e >> 5) & 3, l = e & 31;
        if (!((x->hmask[l] >> (4 * h + g)) & 1)) v[e] -= 4;
    }
}

/// The 6-bit scale of sub-block j (0...7) of an iq4_xs block.
static inline int iq4_xs_scale(const ck_block_iq4_xs *x, int j) {
    return ((x->scales_l[j / 2] >> (4 * (j & 1))) & 0x0f) | (((x->scales_h >> (2 * j)) & 3) << 4);
}

/// The levels of 32 iq4 nibbles (q4_0 order: byte j holds element j low, j+16 high).
static inline void iq4_values(const uint8_t *qs, int v[32]) {
    for (int j = 0; j < 16; j++) {
        v[j] = ck_iq4nl_values[qs[j] & 0x0f];
        v[j + 16] = ck_iq4nl_values[qs[j] >> 4];
    }
}

int ck_dequantize_row_lowbit_k(int type, const void *vx, float *y, int64_t n) {
    switch (type) {
    case CK_Q2_K: {
        const ck_block_q2_K *x = vx;
        for (int64_t b = 0; b < n / CK_QK_K; b++, y += CK_QK_K) {
            const float d = ck_fp16_to_fp32(x[b].d), dmin = ck_fp16_to_fp32(x[b].dmin);
            int v[256];
            q2_values(x[b].qs, v);
            for (int k = 0; k < 16; k++) {
                const float dl = d * (float)(x[b].scales[k] & 0x0f), ml = dmin * (float)(x[b].scales[k] >> 4);
                for (int i = 0; i < 16; i++) y[16 * k + i] = dl * (float)v[16 * k + i] - ml;
            }
        }
        return 1;
    }
    case CK_Q3_K: {
        const ck_block_q3_K *x = vx;
        for (int64_t b = 0; b < n / CK_QK_K; b++, y += CK_QK_K) {
            const float d = ck_fp16_to_fp32(x[b].d);
            int v[256];
            q3_values(&x[b], v);
            for (int k = 0; k < 16; k++) {
                const float dl = d * (float)(ck_q3_K_scale(k, x[b].scales) - 32);
                for (int i = 0; i < 16; i++) y[16 * k + i] = dl * (float)v[16 * k + i];
            }
        }
        return 1;
    }
    case CK_IQ4_NL: {
        const ck_block_iq4_nl *x = vx;
        for (int64_t b = 0; b < n / CK_QK; b++, y += CK_QK) {
            const float d = ck_fp16_to_fp32(x[b].d);
            int v[32];
            iq4_values(x[b].qs, v);
            for (int j = 0; j < 32; j++) y[j] = d * (float)v[j];
        }
        return 1;
    }
    case CK_IQ4_XS: {
        const ck_block_iq4_xs *x = vx;
        for (int64_t b = 0; b < n / CK_QK_K; b++) {
            const float d = ck_fp16_to_fp32(x[b].d);
            for (int j = 0; j < 8; j++, y += 32) {
                const float dl = d * (float)(iq4_xs_scale(&x[b], j) - 32);
                int v[32];
                iq4_values(x[b].qs + 16 * j, v);
                for (int i = 0; i < 32; i++) y[i] = dl * (float)v[i];
            }
        }
        return 1;
    }
    default: return 0;
    }
}

// ---------------------------------------------------------------- reference dot products

float ck_dot_q2_K_q8_K_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q2_K *x = vx; const ck_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        int v[256], sumq = 0, summ = 0;
        q2_values(x[b].qs, v);
        for (int k = 0; k < 16; k++) {
            int acc = 0;
            for (int i = 0; i < 16; i++) acc += v[16 * k + i] * y[b].qs[16 * k + i];
            sumq += (x[b].scales[k] & 0x0f) * acc;
            summ += (x[b].scales[k] >> 4) * y[b].bsums[k];
        }
        sum += y[b].d * (ck_fp16_to_fp32(x[b].d) * (float)sumq - ck_fp16_to_fp32(x[b].dmin) * (float)summ);
    }
    return sum;
}

float ck_dot_q3_K_q8_K_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q3_K *x = vx; const ck_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        int v[256], sumq = 0;
        q3_values(&x[b], v);
        for (int k = 0; k < 16; k++) {
            int acc = 0;
            for (int i = 0; i < 16; i++) acc += v[16 * k + i] * y[b].qs[16 * k + i];
            sumq += (ck_q3_K_scale(k, x[b].scales) - 32) * acc;
        }
        sum += y[b].d * ck_fp16_to_fp32(x[b].d) * (float)sumq;
    }
    return sum;
}

float ck_dot_iq4_nl_q8_0_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_iq4_nl *x = vx; const ck_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        int v[32], acc = 0;
        iq4_values(x[b].qs, v);
        for (int j = 0; j < 32; j++) acc += v[j] * y[b].qs[j];
        sum += ck_fp16_to_fp32(x[b].d) * ck_fp16_to_fp32(y[b].d) * (float)acc;
    }
    return sum;
}

float ck_dot_iq4_xs_q8_K_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_iq4_xs *x = vx; const ck_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        int sumq = 0;
        for (int j = 0; j < 8; j++) {
            int v[32], acc = 0;
            iq4_values(x[b].qs + 16 * j, v);
            for (int i = 0; i < 32; i++) acc += v[i] * y[b].qs[32 * j + i];
            sumq += (iq4_xs_scale(&x[b], j) - 32) * acc;
        }
        sum += y[b].d * ck_fp16_to_fp32(x[b].d) * (float)sumq;
    }
    return sum;
}
