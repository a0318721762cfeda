// Weight quantizers for synthetic models. Written from the algorithms of ggml/src/ggml-quants.c (reference
// quantizers `quantize_row_*_ref`, `make_qkx2_quants`, `make_qx_quants`); see ck_quantize.h for the formats.
#include "ck_quantize.h"
#include "ckernels.h"
#include <math.h>
#include <string.h>

// Results must not depend on the CPU: no FMA contraction, so the AVX2 clones below compute exactly what the
// baseline code computes (and what ggml's reference does).
#pragma clang fp contract(off)

/// The hot K-quant row quantizers are compiled twice, for AVX2 and for baseline x86-64, and chosen at load time
/// (ifunc); both give bit-identical output.
#if defined(__x86_64__) && defined(__clang__)
#define CKQ_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CKQ_CLONES
#endif

_Static_assert(sizeof(ckq_block_q8_0) == 34, "block_q8_0 is 34 bytes");
_Static_assert(sizeof(ckq_block_q5_0) == 22, "block_q5_0 is 22 bytes");
_Static_assert(sizeof(ckq_block_q4_K) == 144, "block_q4_K is 144 bytes");
_Static_assert(sizeof(ckq_block_q6_K) == 210, "block_q6_K is 210 bytes");

/// Smallest group maximum treated as non-zero (ggml GROUP_MAX_EPS).
#define CKQ_GROUP_MAX_EPS 1e-15f

/// Round to nearest, ties to even, for |v| < 2^22 (as ggml's `nearest_int`): adding 1.5·2^23 leaves the
/// rounded integer in the low mantissa bits. Inline arithmetic instead of a libm call.
static inline int ckq_nearest_int(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007FFFFF) - 0x00400000;
}
static inline int ckq_clamp(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

void ckq_q4_K_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    // NOTE: 12 bytes hold eight 6-bit scales and eight 6-bit mins:
    //   bytes 0-3:  sc[0..3] (bits 0-5), high 2 bits of sc[4..7] (bits 6-7)
    //   bytes 4-7:  m[0..3]  (bits 0-5), high 2 bits of m[4..7]  (bits 6-7)
    //   bytes 8-11: low 4 bits of sc[4..7] (bits 0-3), low 4 bits of m[4..7] (bits 4-7)
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void ckq_quantize_row_q8_0(const float *x, void *vy, int64_t n) {
    ckq_block_q8_0 *y = vy;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = ck_fp32_to_fp16(d);
        for (int i = 0; i < 32; i++) y[b].qs[i] = (int8_t)roundf(x[i] * id);
    }
}

void ckq_quantize_row_q5_0(const float *x, void *vy, int64_t n) {
    ckq_block_q5_0 *y = vy;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0, max = 0;                 // largest magnitude and its signed value
        for (int i = 0; i < 32; i++) {
            if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
        }
        const float d = max / -16.0f, id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = ck_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = (int)(int8_t)(x[j] * id + 16.5f), q1 = (int)(int8_t)(x[j + 16] * id + 16.5f);
            q0 = q0 > 31 ? 31 : q0;
            q1 = q1 > 31 ? 31 : q1;
            y[b].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        for (int k = 0; k < 4; k++) y[b].qh[k] = (uint8_t)(qh >> (8 * k));
    }
}

/// Asymmetric quantization of the 8 sub-blocks of 32 values of one q4_K super-block to 0...15, each minimising
/// Σ w·(scale·L + min − x)² over its first guess and 21 candidate inverse scales (15 − 1 + 0.1·k)/(max − min),
/// k = 0...20 (ggml `make_qkx2_quants(32, 15, x, w, L, &min, Laux, -1, 0.1, 20, false)`).
///
/// NOTE: the 8 sub-blocks are computed side by side, one per lane: `xt[i][j]` is element i of sub-block j, so
/// every inner loop runs over j and vectorizes, while each lane's sums are accumulated in ggml's element order,
/// so the result is bit-identical to the one-sub-block-at-a-time reference.
/// Outputs: Lt[i][j] codes, scale[j], negMin[j] = −min (min ≤ 0).
static inline __attribute__((always_inline)) void ckq_qkx2_x8(const float xt[32][8], const float wt[32][8], uint8_t Lt[32][8], float scale[8], float negMin[8]) {
    enum { N = 32, NMAX = 15, NSTEP = 20 };
    const float rmin = -1.0f, rdelta = 0.1f;
    float mn[8], mx[8], sumW[8], sumX[8], best[8], range[8], iscale[8];
    int laux[32][8];
    for (int j = 0; j < 8; j++) {
        mn[j] = mx[j] = xt[0][j];
        sumW[j] = wt[0][j];
        sumX[j] = wt[0][j] * xt[0][j];
    }
    for (int i = 1; i < N; i++) {
        for (int j = 0; j < 8; j++) {
            const float v = xt[i][j], w = wt[i][j];
            mn[j] = v < mn[j] ? v : mn[j];
            mx[j] = v > mx[j] ? v : mx[j];
            sumW[j] += w;
            sumX[j] += w * v;
        }
    }
    for (int j = 0; j < 8; j++) {
        if (mn[j] > 0) mn[j] = 0;
        range[j] = mx[j] - mn[j];
        iscale[j] = range[j] != 0 ? NMAX / range[j] : 0;
        scale[j] = range[j] != 0 ? 1 / iscale[j] : 0;
        best[j] = 0;
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 8; j++) {
            const int l = ckq_clamp(ckq_nearest_int(iscale[j] * (xt[i][j] - mn[j])), 0, NMAX);
            Lt[i][j] = (uint8_t)l;
            const float diff = scale[j] * l + mn[j] - xt[i][j], diff2 = diff * diff;
            best[j] += wt[i][j] * diff2;
        }
    }
    for (int st = 0; st <= NSTEP; st++) {
        float sumL[8] = {0}, sumL2[8] = {0}, sumXL[8] = {0}, thisScale[8], thisMin[8], err[8];
        int ok[8], take[8];
        // as ggml: the candidate range uses the current (possibly improved) min
        for (int j = 0; j < 8; j++) iscale[j] = range[j] != 0 ? (rmin + rdelta * st + NMAX) / (mx[j] - mn[j]) : 0;
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < 8; j++) {
                const int l = ckq_clamp(ckq_nearest_int(iscale[j] * (xt[i][j] - mn[j])), 0, NMAX);
                laux[i][j] = l;
                const float w = wt[i][j];
                sumL[j] += w * l;
                sumL2[j] += w * l * l;
                sumXL[j] += w * l * xt[i][j];
            }
        }
        for (int j = 0; j < 8; j++) {
            const float D = sumW[j] * sumL2[j] - sumL[j] * sumL[j];
            ok[j] = D > 0 && range[j] != 0;
            const float Ds = ok[j] ? D : 1;
            thisScale[j] = (sumW[j] * sumXL[j] - sumX[j] * sumL[j]) / Ds;
            thisMin[j] = (sumL2[j] * sumX[j] - sumL[j] * sumXL[j]) / Ds;
            if (thisMin[j] > 0) {
                thisMin[j] = 0;
                thisScale[j] = sumL2[j] != 0 ? sumXL[j] / sumL2[j] : 0;
            }
            err[j] = 0;
        }
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < 8; j++) {
                const float diff = thisScale[j] * laux[i][j] + thisMin[j] - xt[i][j], diff2 = diff * diff;
                err[j] += wt[i][j] * diff2;
            }
        }
        for (int j = 0; j < 8; j++) {
            take[j] = ok[j] && err[j] < best[j];
            if (take[j]) {
                best[j] = err[j];
                scale[j] = thisScale[j];
                mn[j] = thisMin[j];
            }
        }
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < 8; j++) Lt[i][j] = take[j] ? (uint8_t)laux[i][j] : Lt[i][j];
        }
    }
    for (int j = 0; j < 8; j++) {
        if (range[j] == 0) {                     // constant sub-block: all codes 0, the offset carries the value
            for (int i = 0; i < N; i++) Lt[i][j] = 0;
            scale[j] = 0;
        }
        negMin[j] = -mn[j];
    }
}

CKQ_CLONES void ckq_quantize_row_q4_K(const float *x, void *vy, int64_t n) {
    ckq_block_q4_K *y = vy;
    uint8_t L[CKQ_QK_K];
    float scales[8], mins[8];
    for (int64_t b = 0; b < n / CKQ_QK_K; b++, x += CKQ_QK_K) {
        float xt[32][8], wt[32][8];
        uint8_t Lt[32][8];
        for (int j = 0; j < 8; j++) {
            const float *xs = x + 32 * j;
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            const float avX = sqrtf(sumX2 / 32);
            for (int l = 0; l < 32; l++) {
                xt[l][j] = xs[l];
                wt[l][j] = avX + fabsf(xs[l]);        // ggml's q4_K weights: rms + |x|
            }
        }
        ckq_qkx2_x8(xt, wt, Lt, scales, mins);
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            for (int l = 0; l < 32; l++) L[32 * j + l] = Lt[l][j];
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        const float invScale = maxScale > 0 ? 63.0f / maxScale : 0, invMin = maxMin > 0 ? 63.0f / maxMin : 0;
        memset(y[b].scales, 0, sizeof y[b].scales);
        for (int j = 0; j < 8; j++) {
            const int ls = ckq_clamp(ckq_nearest_int(invScale * scales[j]), 0, 63);
            const int lm = ckq_clamp(ckq_nearest_int(invMin * mins[j]), 0, 63);
            if (j < 4) {
                y[b].scales[j] = (uint8_t)ls;
                y[b].scales[j + 4] = (uint8_t)lm;
            } else {
                y[b].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[b].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[b].scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[b].d = ck_fp32_to_fp16(maxScale / 63.0f);
        y[b].dmin = ck_fp32_to_fp16(maxMin / 63.0f);
        const float d = ck_fp16_to_fp32(y[b].d), dmin = ck_fp16_to_fp32(y[b].dmin);
        for (int j = 0; j < 8; j++) {               // requantize with the rounded 6-bit scales
            uint8_t sc, m;
            ckq_q4_K_scale_min(j, y[b].scales, &sc, &m);
            const float ds = d * sc, dm = dmin * m;
            if (ds == 0) continue;
            for (int l = 0; l < 32; l++) {
                L[32 * j + l] = (uint8_t)ckq_clamp(ckq_nearest_int((x[32 * j + l] + dm) / ds), 0, 15);
            }
        }
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
            }
        }
    }
}

/// Symmetric quantization of `n` values to −nmax...nmax−1 with x²-weighted least squares over 19 candidate
/// scales around −nmax/max (ggml `make_qx_quants`, rmse_type 1). Stores L = q + nmax; returns the scale.
static inline __attribute__((always_inline)) float ckq_qx(int n, int nmax, const float *x, uint8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    }
    if (amax < CKQ_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    float iscale = -nmax / max, sumLX = 0, sumL2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = ckq_clamp(ckq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (uint8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumLX += w * x[i] * l;
        sumL2 += w * l * l;
    }
    float scale = sumL2 != 0 ? sumLX / sumL2 : 0, best = scale * sumLX;
    for (int s = -9; s <= 9; s++) {
        if (s == 0) continue;
        iscale = -(nmax + 0.1f * s) / max;
        sumLX = sumL2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = ckq_clamp(ckq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }
        if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
            for (int i = 0; i < n; i++) {
                L[i] = (uint8_t)(nmax + ckq_clamp(ckq_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            }
            scale = sumLX / sumL2;
            best = scale * sumLX;
        }
    }
    return scale;
}

CKQ_CLONES void ckq_quantize_row_q6_K(const float *x, void *vy, int64_t n) {
    ckq_block_q6_K *y = vy;
    uint8_t L[CKQ_QK_K];
    float scales[16];
    for (int64_t b = 0; b < n / CKQ_QK_K; b++, x += CKQ_QK_K) {
        float maxScale = 0, maxAbsScale = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = ckq_qx(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > maxAbsScale) { maxAbsScale = fabsf(scales[j]); maxScale = scales[j]; }
        }
        if (maxAbsScale < CKQ_GROUP_MAX_EPS) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -128.0f / maxScale;
        y[b].d = ck_fp32_to_fp16(1 / iscale);
        for (int j = 0; j < 16; j++) {
            const int s = ckq_nearest_int(iscale * scales[j]);
            y[b].scales[j] = (int8_t)(s > 127 ? 127 : s);
        }
        const float d0 = ck_fp16_to_fp32(y[b].d);
        for (int j = 0; j < 16; j++) {             // requantize with the rounded 8-bit scales
            const float d = d0 * y[b].scales[j];
            if (d == 0) continue;
            for (int l = 0; l < 16; l++) {
                L[16 * j + l] = (uint8_t)(ckq_clamp(ckq_nearest_int(x[16 * j + l] / d), -32, 31) + 32);
            }
        }
        // NOTE: per 128-element half h: ql[64h + l] = low4(e[l]) | low4(e[l+64]) << 4,
        //       ql[64h + 32 + l] = low4(e[l+32]) | low4(e[l+96]) << 4,
        //       qh[32h + l] = hi2(e[l]) | hi2(e[l+32]) << 2 | hi2(e[l+64]) << 4 | hi2(e[l+96]) << 6   (l < 32)
        for (int h = 0; h < 2; h++) {
            const uint8_t *e = L + 128 * h;
            uint8_t *ql = y[b].ql + 64 * h, *qh = y[b].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((e[l] & 0xF) | ((e[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((e[l + 32] & 0xF) | ((e[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((e[l] >> 4) | ((e[l + 32] >> 4) << 2) | ((e[l + 64] >> 4) << 4) | ((e[l + 96] >> 4) << 6));
            }
        }
    }
}

int ckq_dequantize_row(int type, const void *vx, float *y, int64_t n) {
    switch (type) {
    case CK_Q8_0: {
        const ckq_block_q8_0 *x = vx;
        for (int64_t b = 0; b < n / 32; b++) {
            const float d = ck_fp16_to_fp32(x[b].d);
            for (int i = 0; i < 32; i++) y[32 * b + i] = d * x[b].qs[i];
        }
        return 0;
    }
    case 6: {
        const ckq_block_q5_0 *x = vx;
        for (int64_t b = 0; b < n / 32; b++) {
            const float d = ck_fp16_to_fp32(x[b].d);
            const uint32_t qh = (uint32_t)x[b].qh[0] | (uint32_t)x[b].qh[1] << 8 | (uint32_t)x[b].qh[2] << 16 |
                                (uint32_t)x[b].qh[3] << 24;
            for (int j = 0; j < 16; j++) {
                const int q0 = (x[b].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
                const int q1 = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                y[32 * b + j] = d * (q0 - 16);
                y[32 * b + j + 16] = d * (q1 - 16);
            }
        }
        return 0;
    }
    case 12: {
        const ckq_block_q4_K *x = vx;
        for (int64_t b = 0; b < n / CKQ_QK_K; b++) {
            const float d = ck_fp16_to_fp32(x[b].d), dmin = ck_fp16_to_fp32(x[b].dmin);
            float *yb = y + CKQ_QK_K * b;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                ckq_q4_K_scale_min(j, x[b].scales, &sc, &m);
                const uint8_t *q = x[b].qs + 32 * (j / 2);
                for (int l = 0; l < 32; l++) {
                    const int v = (j & 1) ? (q[l] >> 4) : (q[l] & 0xF);
                    yb[32 * j + l] = d * sc * v - dmin * m;
                }
            }
        }
        return 0;
    }
    case 14: {
        const ckq_block_q6_K *x = vx;
        for (int64_t b = 0; b < n / CKQ_QK_K; b++) {
            const float d = ck_fp16_to_fp32(x[b].d);
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
                const int8_t *sc = x[b].scales + 8 * h;
                float *yh = y + CKQ_QK_K * b + 128 * h;
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    yh[l] = d * sc[is] * (((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
                    yh[l + 32] = d * sc[is + 2] * (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    yh[l + 64] = d * sc[is + 4] * (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    yh[l + 96] = d * sc[is + 6] * (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }
        }
        return 0;
    }
    case CK_Q2_K: case CK_Q3_K: case CK_IQ4_NL: case CK_IQ4_XS:
    case CK_Q4_0:   // and the i-quants: the run-time kernels' dequantizers
        ck_dequantize_row(type, vx, y, n);
        return 0;
    default:
        if (!ck_is_iquant(type)) return -1;
        ck_dequantize_row_iq(type, vx, y, n);
        return 0;
    }
}

int64_t ckq_quantize_rows(int type, const float *x, void *vy, int64_t nrows, int64_t ncols) {
    void (*fn)(const float *, void *, int64_t);
    int64_t block, bytes;
    switch (type) {
    case CK_F32: fn = NULL; block = 1; bytes = 4; break;
    case CK_Q8_0: fn = ckq_quantize_row_q8_0; block = 32; bytes = 34; break;
    case 6: fn = ckq_quantize_row_q5_0; block = 32; bytes = 22; break;
    case 12: fn = ckq_quantize_row_q4_K; block = CKQ_QK_K; bytes = 144; break;
    case 14: fn = ckq_quantize_row_q6_K; block = CKQ_QK_K; bytes = 210; break;
    case CK_Q2_K: fn = ckq_quantize_row_q2_K; block = CKQ_QK_K; bytes = 84; break;
    case CK_Q3_K: fn = ckq_quantize_row_q3_K; block = CKQ_QK_K; bytes = 110; break;
    case CK_IQ4_NL: fn = ckq_quantize_row_iq4_nl; block = 32; bytes = 18; break;
    case CK_IQ4_XS: fn = ckq_quantize_row_iq4_xs; block = CKQ_QK_K; bytes = 136; break;
    case CK_Q4_0: fn = ckq_quantize_row_q4_0; block = 32; bytes = 18; break;
    default:   // the i-quants (quantize_iq.c)
        if (!ck_is_iquant(type) || ncols % CKQ_QK_K != 0) return -1;
        for (int64_t r = 0; r < nrows; r++)
            ckq_quantize_row_iq(type, x + r * ncols, (uint8_t *)vy + r * (int64_t)ck_row_size(type, ncols), ncols);
        return nrows * (int64_t)ck_row_size(type, ncols);
    }
    if (ncols % block != 0) return -1;
    const int64_t rowBytes = ncols / block * bytes;
    uint8_t *y = vy;
    for (int64_t r = 0; r < nrows; r++) {
        if (fn) fn(x + r * ncols, y + r * rowBytes, ncols);
        else memcpy(y + r * rowBytes, x + r * ncols, (size_t)rowBytes);
    }
    return nrows * rowBytes;
}

static inline uint64_t ckq_splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ckq_fill_normal(uint64_t seed, uint64_t stream, float mean, float std, float *y, int64_t n) {
    uint64_t s = ckq_splitmix64(seed ^ ckq_splitmix64(stream));
    if (s == 0) s = 1;
    // Sum of four uniform u16: mean 131070, standard deviation 65536/sqrt(3).
    const float k = std * 1.7320508f / 65536.0f;
    for (int64_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        const uint64_t r = s * 0x2545F4914F6CDD1Dull;
        const int64_t sum = (int64_t)(r & 0xFFFF) + (int64_t)((r >> 16) & 0xFFFF) + (int64_t)((r >> 32) & 0xFFFF) +
                            (int64_t)(r >> 48);
        y[i] = mean + k * (float)(sum - 131070);
    }
}
