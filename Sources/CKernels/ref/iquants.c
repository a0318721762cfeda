// Scalar reference kernels of the i-quant formats (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M):
// dequantizers and dot products with q8_K activations — the `_ref` twins of x86/avx2_iquants.c. Formats:
// ggml/src/ggml-common.h (block_iq*); semantics: gguf-py gguf/quants.py (IQ*.dequantize_blocks) and ggml's
// dequantize_row_iq* / ggml_vec_dot_iq*_q8_K_generic. Written independently.
//
// Every type decodes to the same shape: per super-block a float d, 16 integer scales ls[k] (one per 16 values) and
// 256 signed integer values v, with w = d * ls[k] * F * v for a per-type power of two F (iq_factor). That form is
// exact: d * ls is one rounding, F a power of two and v an integer (iq1_*: v = 8·grid ± 1 for grid ± 0.125), so
// the dequantization is bit-identical with gguf's d * (0.5 + s) * 0.25 * grid * sign and the dot products can run
// in integers until one float multiply per super-block.
#include "ckernels.h"
#include "ck_iquants.h"
#include "../internal.h"
#include <string.h>

_Static_assert(sizeof(ck_block_iq2_xxs) == 66, "iq2_xxs block must be 66 bytes like ggml");
_Static_assert(sizeof(ck_block_iq2_xs) == 74, "iq2_xs block must be 74 bytes like ggml");
_Static_assert(sizeof(ck_block_iq2_s) == 82, "iq2_s block must be 82 bytes like ggml");
_Static_assert(sizeof(ck_block_iq3_xxs) == 98, "iq3_xxs block must be 98 bytes like ggml");
_Static_assert(sizeof(ck_block_iq3_s) == 110, "iq3_s block must be 110 bytes like ggml");
_Static_assert(sizeof(ck_block_iq1_s) == 50, "iq1_s block must be 50 bytes like ggml");
_Static_assert(sizeof(ck_block_iq1_m) == 56, "iq1_m block must be 56 bytes like ggml");

static inline uint32_t iq_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t iq_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

int ck_is_iquant(int type) {
    switch (type) {
    case CK_IQ2_XXS: case CK_IQ2_XS: case CK_IQ2_S: case CK_IQ3_XXS: case CK_IQ3_S: case CK_IQ1_S: case CK_IQ1_M:
        return 1;
    default: return 0;
    }
}

/// Bytes of one super-block of an i-quant type (0 for another type).
static size_t iq_block_bytes(int type) {
    switch (type) {
    case CK_IQ2_XXS: return sizeof(ck_block_iq2_xxs);
    case CK_IQ2_XS: return sizeof(ck_block_iq2_xs);
    case CK_IQ2_S: return sizeof(ck_block_iq2_s);
    case CK_IQ3_XXS: return sizeof(ck_block_iq3_xxs);
    case CK_IQ3_S: return sizeof(ck_block_iq3_s);
    case CK_IQ1_S: return sizeof(ck_block_iq1_s);
    case CK_IQ1_M: return sizeof(ck_block_iq1_m);
    default: return 0;
    }
}

/// The power of two F in w = d * ls * F * v (see the file header).
static float iq_factor(int type) {
    switch (type) {
    case CK_IQ3_S: return 1.0f;
    case CK_IQ3_XXS: return 0.25f;
    default: return 0.125f;
    }
}

uint16_t ck_iq1_m_d(const ck_block_iq1_m *b) {
    const uint16_t s0 = iq_u16(b->scales), s1 = iq_u16(b->scales + 2), s2 = iq_u16(b->scales + 4), s3 = iq_u16(b->scales + 6);
    return (uint16_t)((s0 >> 12) | ((s1 >> 8) & 0x00f0) | ((s2 >> 4) & 0x0f00) | (s3 & 0xf000));
}

/// Values 8i...8i+7 of v: the magnitudes of grid row `g` (one byte each) with the signs of bits 0-7 of `signs`.
static inline void iq_put8(int8_t *v, uint64_t g, unsigned signs) {
    for (int j = 0; j < 8; j++) {
        const int m = (int)((g >> (8 * j)) & 0xff);
        v[j] = (int8_t)((signs >> j) & 1 ? -m : m);
    }
}

/// Values of a grid row of int8 {-1, 0, 1} (iq1s) as 8·g + delta, delta = ±1.
static inline void iq1_put8(int8_t *v, uint64_t g, int delta) {
    for (int j = 0; j < 8; j++) v[j] = (int8_t)(8 * (int8_t)((g >> (8 * j)) & 0xff) + delta);
}

/// Decodes super-block `blk` of `type`: *d (float), ls[16] (scale of values 16k...16k+15), v[256].
static void iq_decode(int type, const uint8_t *blk, float *d, int ls[16], int8_t v[256]) {
    switch (type) {
    case CK_IQ2_XXS: {
        *d = ck_fp16_to_fp32(iq_u16(blk));
        const uint8_t *q = blk + 2;
        for (int g = 0; g < 8; g++) {
            const uint32_t a = iq_u32(q + 8 * g), b = iq_u32(q + 8 * g + 4);
            ls[2 * g] = ls[2 * g + 1] = 2 * (int)(b >> 28) + 1;
            for (int l = 0; l < 4; l++)
                iq_put8(v + 32 * g + 8 * l, ck_iq2xxs_grid[(a >> (8 * l)) & 0xff], ck_iq_ksigns[(b >> (7 * l)) & 0x7f]);
        }
        return;
    }
    case CK_IQ2_XS: {
        const ck_block_iq2_xs *x = (const ck_block_iq2_xs *)blk;
        *d = ck_fp16_to_fp32(x->d);
        for (int i = 0; i < 32; i++) {
            const uint16_t qi = iq_u16(blk + 2 + 2 * i);
            iq_put8(v + 8 * i, ck_iq2xs_grid[qi & 511], ck_iq_ksigns[qi >> 9]);
        }
        for (int k = 0; k < 16; k++) ls[k] = 2 * ((x->scales[k / 2] >> (4 * (k % 2))) & 15) + 1;
        return;
    }
    case CK_IQ2_S: {
        const ck_block_iq2_s *x = (const ck_block_iq2_s *)blk;
        *d = ck_fp16_to_fp32(x->d);
        for (int i = 0; i < 32; i++) {
            const int idx = x->qs[i] | (((x->qh[i / 4] >> (2 * (i % 4))) & 3) << 8);
            iq_put8(v + 8 * i, ck_iq2s_grid[idx], x->qs[32 + i]);
        }
        for (int k = 0; k < 16; k++) ls[k] = 2 * ((x->scales[k / 2] >> (4 * (k % 2))) & 15) + 1;
        return;
    }
    case CK_IQ3_XXS: {
        const ck_block_iq3_xxs *x = (const ck_block_iq3_xxs *)blk;
        *d = ck_fp16_to_fp32(x->d);
        for (int g = 0; g < 8; g++) {
            const uint32_t b = iq_u32(x->qs + 64 + 4 * g);
            ls[2 * g] = ls[2 * g + 1] = 2 * (int)(b >> 28) + 1;
            for (int l = 0; l < 4; l++) {
                const uint64_t row = (uint64_t)ck_iq3xxs_grid[x->qs[8 * g + 2 * l]] |
                                     (uint64_t)ck_iq3xxs_grid[x->qs[8 * g + 2 * l + 1]] << 32;
                iq_put8(v + 32 * g + 8 * l, row, ck_iq_ksigns[(b >> (7 * l)) & 0x7f]);
            }
        }
        return;
    }
    case CK_IQ3_S: {
        const ck_block_iq3_s *x = (const ck_block_iq3_s *)blk;
        *d = ck_fp16_to_fp32(x->d);
        for (int i = 0; i < 32; i++) {
            const int i0 = x->qs[2 * i] | (((x->qh[i / 4] >> (2 * (i % 4))) & 1) << 8);
            const int i1 = x->qs[2 * i + 1] | (((x->qh[i / 4] >> (2 * (i % 4) + 1)) & 1) << 8);
            iq_put8(v + 8 * i, (uint64_t)ck_iq3s_grid[i0] | (uint64_t)ck_iq3s_grid[i1] << 32, x->signs[i]);
        }
        for (int k = 0; k < 16; k++) ls[k] = 2 * ((x->scales[k / 4] >> (4 * ((k / 2) % 2))) & 15) + 1;
        return;
    }
    case CK_IQ1_S: {
        const ck_block_iq1_s *x = (const ck_block_iq1_s *)blk;
        *d = ck_fp16_to_fp32(x->d);
        for (int k = 0; k < 8; k++) {
            const uint16_t h = iq_u16(blk + 34 + 2 * k);
            ls[2 * k] = ls[2 * k + 1] = 2 * ((h >> 12) & 7) + 1;
            const int delta = h & 0x8000 ? -1 : 1;
            for (int l = 0; l < 4; l++) {
                const int idx = x->qs[4 * k + l] | (((h >> (3 * l)) & 7) << 8);
                iq1_put8(v + 32 * k + 8 * l, ck_iq1s_grid[idx], delta);
            }
        }
        return;
    }
    case CK_IQ1_M: {
        const ck_block_iq1_m *x = (const ck_block_iq1_m *)blk;
        *d = ck_fp16_to_fp32(ck_iq1_m_d(x));
        for (int i = 0; i < 32; i++) {
            const int nib = (x->qh[i / 2] >> (4 * (i % 2))) & 15;
            iq1_put8(v + 8 * i, ck_iq1s_grid[x->qs[i] | ((nib & 7) << 8)], nib & 8 ? -1 : 1);
        }
        for (int k = 0; k < 16; k++) ls[k] = 2 * ((iq_u16(x->scales + 2 * (k / 4)) >> (3 * (k % 4))) & 7) + 1;
        return;
    }
    default: return;
    }
}

void ck_dequantize_row_iq(int type, const void *vx, float *y, int64_t n) {
    const size_t bytes = iq_block_bytes(type);
    if (!bytes) return;
    const float f = iq_factor(type);
    for (int64_t b = 0; b < n / CK_QK_K; b++, y += CK_QK_K) {
        float d;
        int ls[16];
        int8_t v[256];
        iq_decode(type, (const uint8_t *)vx + (size_t)b * bytes, &d, ls, v);
        for (int k = 0; k < 16; k++) {
            const float dl = d * (float)ls[k] * f;
            for (int i = 0; i < 16; i++) y[16 * k + i] = dl * (float)v[16 * k + i];
        }
    }
}

/// Σ over super-blocks of d · dy · F · Σ_k ls[k] · Σ_{16} v·q (integer sums within a super-block).
static float iq_dot_ref(int type, int64_t n, const void *vx, const void *vy) {
    const ck_block_q8_K *y = vy;
    const size_t bytes = iq_block_bytes(type);
    const float f = iq_factor(type);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        float d;
        int ls[16];
        int8_t v[256];
        iq_decode(type, (const uint8_t *)vx + (size_t)b * bytes, &d, ls, v);
        int32_t isum = 0;
        for (int k = 0; k < 16; k++) {
            int32_t acc = 0;
            for (int i = 0; i < 16; i++) acc += v[16 * k + i] * y[b].qs[16 * k + i];
            isum += ls[k] * acc;
        }
        sum += d * y[b].d * f * (float)isum;
    }
    return sum;
}

float ck_dot_iq2_xxs_q8_K_ref(int64_t n, const void *x, const void *y) { return iq_dot_ref(CK_IQ2_XXS, n, x, y); }
float ck_dot_iq2_xs_q8_K_ref(int64_t n, const void *x, const void *y) { return iq_dot_ref(CK_IQ2_XS, n, x, y); }
float ck_dot_iq2_s_q8_K_ref(int64_t n, const void *x, const void *y) { return iq_dot_ref(CK_IQ2_S, n, x, y); }
float ck_dot_iq3_xxs_q8_K_ref(int64_t n, const void *x, const void *y) { return iq_dot_ref(CK_IQ3_XXS, n, x, y); }
float ck_dot_iq3_s_q8_K_ref(int64_t n, const void *x, const void *y) { return iq_dot_ref(CK_IQ3_S, n, x, y); }
float ck_dot_iq1_s_q8_K_ref(int64_t n, const void *x, const void *y) { return iq_dot_ref(CK_IQ1_S, n, x, y); }
float ck_dot_iq1_m_q8_K_ref(int64_t n, const void *x, const void *y) { return iq_dot_ref(CK_IQ1_M, n, x, y); }
