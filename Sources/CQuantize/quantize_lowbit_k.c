// Weight quantizers of the low-bit K-quants (q2_K, q3_K) and the non-linear 4-bit types (iq4_nl, iq4_xs), for
// synthetic models. The approach follows ggml/src/ggml-quants.c (quantize_row_q2_K_ref with make_qkx2_quants,
// quantize_row_q3_K_ref with make_q3_quants, quantize_row_iq4_nl_impl): a per-sub-block least-squares scale
// search over a few candidate inverse scales, then the sub-block scales themselves quantized against the block's
// largest one and the values re-rounded with the stored scales. Fewer candidates than ggml (speed of full-size
// synthetic files); the output is a valid block of the format, not ggml's bit pattern. Written independently.
#include "ck_quantize.h"
#include "ckernels.h"
#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

#if defined(__x86_64__) && defined(__clang__)
#define CKQ_LB_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CKQ_LB_CLONES
#endif

_Static_assert(sizeof(ckq_block_q2_K) == 84, "block_q2_K is 84 bytes");
_Static_assert(sizeof(ckq_block_q3_K) == 110, "block_q3_K is 110 bytes");
_Static_assert(sizeof(ckq_block_iq4_nl) == 18, "block_iq4_nl is 18 bytes");
_Static_assert(sizeof(ckq_block_iq4_xs) == 136, "block_iq4_xs is 136 bytes");

#define CKQ_LB_EPS 1e-15f

/// Round half away from zero is not needed: nearest even as ggml's nearest_int (|v| < 2^22).
static inline int lb_nearest(float v) {
    float val = v + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}
static inline int lb_clamp(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

/// Asymmetric fit of 16 values to scale·L − negMin, L in 0...3, negMin ≥ 0 (min ≤ 0 as ggml's q2_K): |x|-weighted
/// least squares over the candidate inverse scales (3 + 0.25k)/(max − min), k = −1...3, keeping the fit of least
/// weighted error (lb_affine_x16 below, 16 sub-blocks at a time).
/// Symmetric fit of n values to scale·L, L in −nmax...nmax−1, x²-weighted, over candidate inverse scales
/// −(nmax + 0.2k)/max, k = −3...3 (max the signed value of largest magnitude). Returns the (signed) scale.
static inline float lb_symmetric(int n, int nmax, const float *x) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (amax < CKQ_LB_EPS) return 0;
    float best = -1, bestScale = 0;
    for (int k = -3; k <= 3; k++) {
        const float iscale = -(nmax + 0.2f * k) / max;
        float slx = 0, sl2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = lb_clamp(lb_nearest(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            slx += w * x[i] * l; sl2 += w * l * l;
        }
        if (sl2 > 0 && slx * slx / sl2 > best) { best = slx * slx / sl2; bestScale = slx / sl2; }
    }
    return bestScale;
}

/// lb_affine for the 16 sub-blocks of 16 of one q2_K block side by side, one per lane: xt[i][j] is element i of
/// sub-block j, so every inner loop runs over j and vectorizes; each lane computes what lb_affine(16, 3, ...)
/// computes for its sub-block.
static inline __attribute__((always_inline)) void lb_affine_x16(const float xt[16][16], float scale[16], float negMin[16]) {
    float mn[16], mx[16], bestErr[16], bestScale[16], bestMin[16];
    for (int j = 0; j < 16; j++) { mn[j] = xt[0][j]; mx[j] = xt[0][j]; }
    for (int i = 1; i < 16; i++) {
        for (int j = 0; j < 16; j++) {
            mn[j] = xt[i][j] < mn[j] ? xt[i][j] : mn[j];
            mx[j] = xt[i][j] > mx[j] ? xt[i][j] : mx[j];
        }
    }
    for (int j = 0; j < 16; j++) {
        mn[j] = mn[j] > 0 ? 0 : mn[j];
        bestErr[j] = INFINITY; bestScale[j] = (mx[j] - mn[j]) / 3; bestMin[j] = mn[j];
    }
    for (int k = -1; k <= 3; k++) {
        float is[16], sw[16], swl[16], swl2[16], swx[16], swlx[16], sc[16], m[16], inv[16], err[16];
        for (int j = 0; j < 16; j++) {
            is[j] = mx[j] > mn[j] + CKQ_LB_EPS ? (3 + 0.25f * k) / (mx[j] - mn[j]) : 0;
            sw[j] = swl[j] = swl2[j] = swx[j] = swlx[j] = err[j] = 0;
        }
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 16; j++) {
                const float x = xt[i][j], w = fabsf(x);
                const float l = (float)lb_clamp(lb_nearest(is[j] * (x - mn[j])), 0, 3);
                sw[j] += w; swl[j] += w * l; swl2[j] += w * l * l; swx[j] += w * x; swlx[j] += w * l * x;
            }
        }
        for (int j = 0; j < 16; j++) {
            const float det = sw[j] * swl2[j] - swl[j] * swl[j];
            float a = det > 0 ? (sw[j] * swlx[j] - swl[j] * swx[j]) / det : 0;
            float b = det > 0 ? (swl2[j] * swx[j] - swl[j] * swlx[j]) / det : 0;
            if (b > 0) { b = 0; a = swl2[j] > 0 ? swlx[j] / swl2[j] : 0; }
            sc[j] = a; m[j] = b; inv[j] = a > 0 ? 1 / a : 0;
        }
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 16; j++) {
                const float x = xt[i][j];
                const float l = (float)lb_clamp(lb_nearest((x - m[j]) * inv[j]), 0, 3);
                const float e = sc[j] * l + m[j] - x;
                err[j] += fabsf(x) * e * e;
            }
        }
        for (int j = 0; j < 16; j++) {
            const int take = sc[j] > 0 && err[j] < bestErr[j];
            bestErr[j] = take ? err[j] : bestErr[j];
            bestScale[j] = take ? sc[j] : bestScale[j];
            bestMin[j] = take ? m[j] : bestMin[j];
        }
    }
    for (int j = 0; j < 16; j++) {
        const int flat = !(mx[j] > mn[j] + CKQ_LB_EPS);
        scale[j] = flat ? 0 : bestScale[j];
        negMin[j] = -bestMin[j];
    }
}

CKQ_LB_CLONES void ckq_quantize_row_q2_K(const float *x, void *vy, int64_t n) {
    ckq_block_q2_K *y = vy;
    float xt[16][16];
    for (int64_t b = 0; b < n / CKQ_QK_K; b++, x += CKQ_QK_K) {
        float scale[16], negMin[16], maxScale = 0, maxMin = 0;
        for (int k = 0; k < 16; k++) for (int i = 0; i < 16; i++) xt[i][k] = x[16 * k + i];
        lb_affine_x16(xt, scale, negMin);
        for (int k = 0; k < 16; k++) {
            maxScale = scale[k] > maxScale ? scale[k] : maxScale;
            maxMin = negMin[k] > maxMin ? negMin[k] : maxMin;
        }
        memset(&y[b], 0, sizeof y[b]);
        const float d = maxScale / 15, dm = maxMin / 15;
        y[b].d = ck_fp32_to_fp16(d);
        y[b].dmin = ck_fp32_to_fp16(dm);
        const float ds = ck_fp16_to_fp32(y[b].d), dms = ck_fp16_to_fp32(y[b].dmin);
        for (int k = 0; k < 16; k++) {
            const int sq = d > 0 ? lb_clamp(lb_nearest(scale[k] / d), 0, 15) : 0;
            const int mq = dm > 0 ? lb_clamp(lb_nearest(negMin[k] / dm), 0, 15) : 0;
            y[b].scales[k] = (uint8_t)(sq | (mq << 4));
            const float dl = ds * sq, ml = dms * mq;
            for (int i = 0; i < 16; i++) {
                const int e = 16 * k + i;
                const int l = dl > 0 ? lb_clamp(lb_nearest((x[e] + ml) / dl), 0, 3) : 0;
                y[b].qs[32 * (e >> 7) + (e & 31)] |= (uint8_t)(l << (2 * ((e >> 5) & 3)));
            }
        }
    }
}

CKQ_LB_CLONES void ckq_quantize_row_q3_K(const float *x, void *vy, int64_t n) {
    ckq_block_q3_K *y = vy;
    for (int64_t b = 0; b < n / CKQ_QK_K; b++, x += CKQ_QK_K) {
        float scale[16], maxScale = 0, amax = 0;
        for (int k = 0; k < 16; k++) {
            scale[k] = lb_symmetric(16, 4, x + 16 * k);
            if (fabsf(scale[k]) > amax) { amax = fabsf(scale[k]); maxScale = scale[k]; }
        }
        memset(&y[b], 0, sizeof y[b]);
        if (amax < CKQ_LB_EPS) continue;
        const float iscale = -32 / maxScale;
        int sq[16];
        for (int k = 0; k < 16; k++) {
            sq[k] = lb_clamp(lb_nearest(iscale * scale[k]), -32, 31);
            const int s = sq[k] + 32;   // 6 bits: layout as ck_q3_K_scale reads it
            if (k < 8) y[b].scales[k] |= (uint8_t)(s & 15); else y[b].scales[k - 8] |= (uint8_t)((s & 15) << 4);
            y[b].scales[8 + (k & 3)] |= (uint8_t)((s >> 4) << (2 * (k >> 2)));
        }
        y[b].d = ck_fp32_to_fp16(1 / iscale);
        const float d = ck_fp16_to_fp32(y[b].d);
        for (int e = 0; e < CKQ_QK_K; e++) {
            const float dl = d * sq[e / 16];
            const int l = dl != 0 ? lb_clamp(lb_nearest(x[e] / dl), -4, 3) + 4 : 4;   // 0...7 = value + 4
            const int h = e >> 7, g = (e >> 5) & 3, ln = e & 31;
            y[b].qs[32 * h + ln] |= (uint8_t)((l & 3) << (2 * g));
            if (l >> 2) y[b].hmask[ln] |= (uint8_t)(1 << (4 * h + g));
        }
    }
}

/// lb_iq4_floor[k + 128] = the index of the largest iq4 level ≤ k (0 below the smallest), k = −128...127.
static uint8_t lb_iq4_floor[256];

__attribute__((constructor)) static void lb_iq4_init(void) {
    for (int k = -128; k < 128; k++) {
        int i = 0;
        while (i < 15 && ck_iq4nl_values[i + 1] <= k) i++;
        lb_iq4_floor[k + 128] = (uint8_t)i;
    }
}

/// Index of the iq4 level nearest to t (ties to the lower one): the level at or below ⌊t⌋, or the next one up.
static inline int lb_iq4_index(float t) {
    const int8_t *v = ck_iq4nl_values;
    if (!(t > v[0])) return 0;          // also NaN
    if (t >= v[15]) return 15;
    const int i = lb_iq4_floor[(int)floorf(t) + 128];
    return t - v[i] <= v[i + 1] - t ? i : i + 1;
}

/// Fits 32 values to d·levels[L]: x²-weighted least squares over candidate inverse scales (−127 + k)/max,
/// k = −2...2 (max the signed extreme; the widest level is −127). Writes L; returns d.
static inline float lb_iq4_fit(const float *x, uint8_t L[32]) {
    float amax = 0, max = 0;
    for (int i = 0; i < 32; i++) if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    memset(L, 8, 32);   // level 1: the one nearest zero
    if (amax < CKQ_LB_EPS) return 0;
    float best = -1, bestD = 0;
    for (int k = -2; k <= 2; k++) {
        const float id = (ck_iq4nl_values[0] + k) / max;
        float sqx = 0, sq2 = 0;
        for (int i = 0; i < 32; i++) {
            const int l = lb_iq4_index(id * x[i]);
            const float w = x[i] * x[i], q = ck_iq4nl_values[l];
            sqx += w * q * x[i]; sq2 += w * q * q;
        }
        if (sq2 > 0 && sqx * sqx / sq2 > best) { best = sqx * sqx / sq2; bestD = sqx / sq2; }
    }
    return bestD;
}

/// Packs the 32 level indices of a sub-block at ax into q4_0 nibble order for scale dl (indices re-rounded).
static inline void lb_iq4_pack(const float *x, float dl, uint8_t qs[16]) {
    const float id = dl != 0 ? 1 / dl : 0;
    for (int j = 0; j < 16; j++) {
        const int a = dl != 0 ? lb_iq4_index(id * x[j]) : 8, c = dl != 0 ? lb_iq4_index(id * x[j + 16]) : 8;
        qs[j] = (uint8_t)(a | (c << 4));
    }
}

CKQ_LB_CLONES void ckq_quantize_row_iq4_nl(const float *x, void *vy, int64_t n) {
    ckq_block_iq4_nl *y = vy;
    uint8_t L[32];
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        y[b].d = ck_fp32_to_fp16(lb_iq4_fit(x, L));
        lb_iq4_pack(x, ck_fp16_to_fp32(y[b].d), y[b].qs);
    }
}

CKQ_LB_CLONES void ckq_quantize_row_iq4_xs(const float *x, void *vy, int64_t n) {
    ckq_block_iq4_xs *y = vy;
    uint8_t L[32];
    for (int64_t b = 0; b < n / CKQ_QK_K; b++, x += CKQ_QK_K) {
        float scale[8], amax = 0, maxScale = 0;
        for (int j = 0; j < 8; j++) {
            scale[j] = lb_iq4_fit(x + 32 * j, L);
            if (fabsf(scale[j]) > amax) { amax = fabsf(scale[j]); maxScale = scale[j]; }
        }
        memset(&y[b], 0, sizeof y[b]);
        const float d = -maxScale / 32, id = d != 0 ? 1 / d : 0;
        y[b].d = ck_fp32_to_fp16(d);
        const float ds = ck_fp16_to_fp32(y[b].d);
        uint16_t sh = 0;
        for (int j = 0; j < 8; j++) {
            const int l = lb_clamp(lb_nearest(id * scale[j]), -32, 31) + 32;
            y[b].scales_l[j / 2] |= (uint8_t)((l & 15) << (4 * (j & 1)));
            sh |= (uint16_t)((l >> 4) << (2 * j));
            lb_iq4_pack(x + 32 * j, ds * (l - 32), y[b].qs + 16 * j);
        }
        y[b].scales_h = sh;
    }
}
