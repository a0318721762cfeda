// Quantizers of the i-quant formats (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) for synthetic models.
// Not ggml's search (which weighs candidates by an importance matrix): a direct nearest-grid-point rounding that is
// fast enough for billions of weights. Per super-block of 256:
//   1. d (fp16) puts the block's largest value on the grid's largest value at the largest scale code; each scale
//      group (16 or 32 values) then tries the scale codes from three below to one above the one that puts its largest
//      value on the grid's largest, and keeps the one of least squared error after 2-3.
//   2. each value is rounded to the nearest magnitude level of the grid's alphabet (or, iq1, to {-1, 0, 1} after the
//      better of the two deltas ±0.125); the level pattern of 8 (iq3: 4) values is a lattice point, mapped to the
//      nearest row of the grid by a table built once (every lattice point against every grid row).
//   3. signs: the sign bits of x; where the format stores 7 of 8 (ksigns, even parity) the value of least magnitude
//      takes the parity flip.
// Formats and the w = d · ls · F · v form: CKernels include/ck_iquants.h and ref/iquants.c.
#include "ck_quantize.h"
#include "ckernels.h"
#include <math.h>
#include <pthread.h>
#include <string.h>

#pragma clang fp contract(off)

/// Nearest grid row for every lattice point: iq2 and iq1 (3 levels, 8 values: 3^8 points), iq3 (8 levels, 4 values).
static uint16_t near_iq2xxs[6561], near_iq2xs[6561], near_iq2s[6561], near_iq1s[6561];
static uint16_t near_iq3xxs[4096], near_iq3s[4096];
static pthread_once_t near_once = PTHREAD_ONCE_INIT;

static const int lv_iq2[3] = {8, 25, 43};
static const int lv_iq3xxs[8] = {4, 12, 20, 28, 36, 44, 52, 62};
static const int lv_iq3s[8] = {1, 3, 5, 7, 9, 11, 13, 15};
static const int lv_iq1[3] = {-1, 0, 1};

/// For every lattice point (base-`nl` digits, `dim` of them, digit j = value j) the grid row of least squared
/// distance; grid rows are `dim` bytes (int8 when `is_signed`) packed in `rows` uint64/uint32 entries.
static void build_near(uint16_t *out, const int *levels, int nl, int dim, const void *grid, int rows, int is_signed) {
    int points = 1;
    for (int j = 0; j < dim; j++) points *= nl;
    for (int p = 0; p < points; p++) {
        int v[8], c = p;
        for (int j = 0; j < dim; j++) { v[j] = levels[c % nl]; c /= nl; }
        int best = 0, bestErr = 1 << 30;
        for (int r = 0; r < rows; r++) {
            const uint64_t g = dim == 8 ? ((const uint64_t *)grid)[r] : ((const uint32_t *)grid)[r];
            int err = 0;
            for (int j = 0; j < dim; j++) {
                const int gv = is_signed ? (int)(int8_t)((g >> (8 * j)) & 0xff) : (int)((g >> (8 * j)) & 0xff);
                err += (gv - v[j]) * (gv - v[j]);
            }
            if (err < bestErr) { bestErr = err; best = r; }
        }
        out[p] = (uint16_t)best;
    }
}

static void build_all(void) {
    build_near(near_iq2xxs, lv_iq2, 3, 8, ck_iq2xxs_grid, 256, 0);
    build_near(near_iq2xs, lv_iq2, 3, 8, ck_iq2xs_grid, 512, 0);
    build_near(near_iq2s, lv_iq2, 3, 8, ck_iq2s_grid, 1024, 0);
    build_near(near_iq1s, lv_iq1, 3, 8, ck_iq1s_grid, 2048, 1);
    build_near(near_iq3xxs, lv_iq3xxs, 8, 4, ck_iq3xxs_grid, 256, 0);
    build_near(near_iq3s, lv_iq3s, 8, 4, ck_iq3s_grid, 512, 0);
}

/// Index of the level nearest to `a` among `nl` ascending levels.
static inline int nearest_level(float a, const int *levels, int nl) {
    int best = 0;
    float bestErr = fabsf(a - (float)levels[0]);
    for (int i = 1; i < nl; i++) {
        const float e = fabsf(a - (float)levels[i]);
        if (e < bestErr) { bestErr = e; best = i; }
    }
    return best;
}

/// One type's parameters.
typedef struct {
    int type;
    int group;          // values per scale (16 or 32)
    int smax;           // largest scale code (15, or 7 for iq1)
    float f;            // the power of two F in w = d · (2s + 1) · F · v
    float vmax;         // largest |v|
    int dim;            // values per grid row (8, or 4 for iq3)
    int nl;             // levels of the lattice
    const int *levels;  // level values (magnitudes; iq1: grid values)
    const uint16_t *near;
    const void *grid;   // the grid rows (uint64 for dim 8, uint32 for dim 4)
    int parity;         // 1: the format stores 7 sign bits per 8 values (ksigns, even parity)
} iq_params;

/// fp16 d of a super-block (0 when all zero): the largest group's maximum lands on the largest grid value at s = smax.
static uint16_t iq_d(const iq_params *p, const float *x) {
    float amax = 0.0f;
    for (int i = 0; i < 256; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / (p->vmax * p->f) / (float)(2 * p->smax + 1);
    return ck_fp16_to_fp32(ck_fp32_to_fp16(d)) > 0.0f ? ck_fp32_to_fp16(d) : 0;
}

/// Grid byte j of row r.
static inline int grid_val(const iq_params *p, int r, int j) {
    const uint64_t g = p->dim == 8 ? ((const uint64_t *)p->grid)[r] : ((const uint32_t *)p->grid)[r];
    const uint8_t b = (uint8_t)((g >> (8 * j)) & 0xff);
    return p->type == CK_IQ1_S || p->type == CK_IQ1_M ? (int)(int8_t)b : (int)b;
}

/// 8 values v of a magnitude grid (iq2_*, iq3_*) at w = db · v: grid rows idx[0..<8/dim], sign byte *sg; returns the
/// squared error.
static float chunk_mag(const iq_params *p, const float *v, float db, int *idx, uint8_t *sg) {
    unsigned bits = 0;
    int minj = 0;
    for (int j = 0; j < 8; j++) {
        if (v[j] < 0) bits |= 1u << j;
        if (fabsf(v[j]) < fabsf(v[minj])) minj = j;
    }
    if (p->parity && __builtin_popcount(bits) % 2) bits ^= 1u << minj;
    *sg = (uint8_t)bits;
    float err = 0.0f;
    for (int h = 0; h < 8 / p->dim; h++) {
        int code = 0, mul = 1;
        for (int j = 0; j < p->dim; j++) {
            code += mul * nearest_level(fabsf(v[p->dim * h + j]) / db, p->levels, p->nl);
            mul *= p->nl;
        }
        idx[h] = p->near[code];
        for (int j = 0; j < p->dim; j++) {
            const int e = p->dim * h + j;
            const float w = db * (float)grid_val(p, idx[h], j) * ((bits >> e) & 1 ? -1.0f : 1.0f);
            err += (v[e] - w) * (v[e] - w);
        }
    }
    return err;
}

/// 8 values v of iq1 at w = dl · (g + delta): grid row *idx; returns the squared error.
static float chunk_iq1(const iq_params *p, const float *v, float dl, float delta, int *idx) {
    int code = 0, mul = 1;
    for (int j = 0; j < 8; j++) {
        float g = rintf(v[j] / dl - delta);
        g = g < -1 ? -1 : (g > 1 ? 1 : g);
        code += mul * ((int)g + 1);
        mul *= 3;
    }
    *idx = near_iq1s[code];
    float err = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float w = dl * ((float)grid_val(p, *idx, j) + delta);
        err += (v[j] - w) * (v[j] - w);
    }
    return err;
}

/// Quantizes scale group k (p->group values at x) for every scale code and keeps the best: s[k], grid rows
/// idx[] (8/dim per 8 values), sign bytes sg[] (magnitude grids) or delta signs neg[] (iq1, per `dgroup` values).
static void iq_group(const iq_params *p, const float *x, float d, int *s, int *idx, uint8_t *sg, int *neg, int dgroup) {
    const int chunks = p->group / 8, rows = 8 / p->dim;
    // Candidates: from the code that puts the group's largest value on the grid's largest one, three below and
    // one above (the least-squares scale of a Gaussian-like group is below its max-matching one).
    float amax = 0.0f;
    for (int i = 0; i < p->group; i++) amax = fmaxf(amax, fabsf(x[i]));
    int c0 = (int)lrintf((amax / (p->vmax * p->f) / d - 1.0f) * 0.5f);
    c0 = c0 < 0 ? 0 : (c0 > p->smax ? p->smax : c0);
    const int clo = c0 - 3 < 0 ? 0 : c0 - 3, chi = c0 + 1 > p->smax ? p->smax : c0 + 1;
    float best = INFINITY;
    for (int c = clo; c <= chi; c++) {
        const float dl = d * (float)(2 * c + 1) * p->f;
        int ti[8], tn[4];
        uint8_t ts[4];
        float err = 0.0f;
        if (p->type == CK_IQ1_S || p->type == CK_IQ1_M) {
            const float unit = 8.0f * dl;   // v = 8·g ± 1 at dl → g ± 0.125 at 8·dl
            for (int gi = 0; gi < p->group / dgroup; gi++) {
                float e2[2] = {0, 0};
                int i2[2][4];
                for (int sgn = 0; sgn < 2; sgn++)
                    for (int q = 0; q < dgroup / 8; q++)
                        e2[sgn] += chunk_iq1(p, x + dgroup * gi + 8 * q, unit, sgn ? -0.125f : 0.125f, &i2[sgn][q]);
                tn[gi] = e2[1] < e2[0];
                for (int q = 0; q < dgroup / 8; q++) ti[dgroup / 8 * gi + q] = i2[tn[gi]][q];
                err += e2[tn[gi]];
            }
        } else {
            for (int q = 0; q < chunks; q++) err += chunk_mag(p, x + 8 * q, dl, ti + rows * q, ts + q);
        }
        if (err < best) {
            best = err;
            *s = c;
            memcpy(idx, ti, sizeof(int) * (size_t)(chunks * rows));
            if (sg) memcpy(sg, ts, (size_t)chunks);
            if (neg) memcpy(neg, tn, sizeof(int) * (size_t)(p->group / dgroup));
        }
    }
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/// Quantizes one super-block x[256] of `type` into `out`.
static void iq_quantize_block(int type, const float *x, uint8_t *out) {
    iq_params p;
    switch (type) {
    case CK_IQ2_XXS: p = (iq_params){type, 32, 15, 0.125f, 43, 8, 3, lv_iq2, near_iq2xxs, ck_iq2xxs_grid, 1}; break;
    case CK_IQ2_XS: p = (iq_params){type, 16, 15, 0.125f, 43, 8, 3, lv_iq2, near_iq2xs, ck_iq2xs_grid, 1}; break;
    case CK_IQ2_S: p = (iq_params){type, 16, 15, 0.125f, 43, 8, 3, lv_iq2, near_iq2s, ck_iq2s_grid, 0}; break;
    case CK_IQ3_XXS: p = (iq_params){type, 32, 15, 0.25f, 62, 4, 8, lv_iq3xxs, near_iq3xxs, ck_iq3xxs_grid, 1}; break;
    case CK_IQ3_S: p = (iq_params){type, 32, 15, 1.0f, 15, 4, 8, lv_iq3s, near_iq3s, ck_iq3s_grid, 0}; break;
    case CK_IQ1_S: p = (iq_params){type, 32, 7, 0.125f, 9, 8, 3, lv_iq1, near_iq1s, ck_iq1s_grid, 0}; break;
    default: p = (iq_params){type, 16, 7, 0.125f, 9, 8, 3, lv_iq1, near_iq1s, ck_iq1s_grid, 0}; break;   // CK_IQ1_M
    }
    const size_t bytes = ck_row_size(type, 256);
    memset(out, 0, bytes);
    const uint16_t d16 = iq_d(&p, x);
    if (!d16) return;   // all zero: d = 0
    const float d = ck_fp16_to_fp32(d16);
    const int ng = 256 / p.group, rpg = p.group / p.dim, dgroup = type == CK_IQ1_S ? 32 : 8;
    int s[16], idx[64], neg[32];
    uint8_t sg[32];
    const int iq1 = type == CK_IQ1_S || type == CK_IQ1_M;
    for (int k = 0; k < ng; k++)
        iq_group(&p, x + p.group * k, d, &s[k], idx + rpg * k, iq1 ? NULL : sg + p.group / 8 * k,
                 iq1 ? neg + p.group / dgroup * k : NULL, dgroup);
    switch (type) {
    case CK_IQ1_S:
        put16(out, d16);
        for (int i = 0; i < 32; i++) out[2 + i] = (uint8_t)(idx[i] & 255);
        for (int k = 0; k < 8; k++) {
            uint16_t h = (uint16_t)(s[k] << 12 | neg[k] << 15);
            for (int l = 0; l < 4; l++) h |= (uint16_t)((idx[4 * k + l] >> 8) << (3 * l));
            put16(out + 34 + 2 * k, h);
        }
        return;
    case CK_IQ1_M:
        for (int i = 0; i < 32; i++) {
            out[i] = (uint8_t)(idx[i] & 255);
            out[32 + i / 2] |= (uint8_t)(((idx[i] >> 8) | neg[i] << 3) << (4 * (i % 2)));
        }
        for (int q = 0; q < 4; q++) {
            uint16_t sc = (uint16_t)(((d16 >> (4 * q)) & 0xf) << 12);
            for (int t = 0; t < 4; t++) sc |= (uint16_t)(s[4 * q + t] << (3 * t));
            put16(out + 48 + 2 * q, sc);
        }
        return;
    case CK_IQ2_XXS:
        put16(out, d16);
        for (int g = 0; g < 8; g++) {
            uint32_t a = 0, b = (uint32_t)s[g] << 28;
            for (int l = 0; l < 4; l++) {
                a |= (uint32_t)idx[4 * g + l] << (8 * l);
                b |= (uint32_t)(sg[4 * g + l] & 127) << (7 * l);
            }
            put32(out + 2 + 8 * g, a);
            put32(out + 6 + 8 * g, b);
        }
        return;
    case CK_IQ2_XS:
        put16(out, d16);
        for (int i = 0; i < 32; i++) put16(out + 2 + 2 * i, (uint16_t)(idx[i] | (sg[i] & 127) << 9));
        for (int g = 0; g < 8; g++) out[66 + g] = (uint8_t)(s[2 * g] | s[2 * g + 1] << 4);
        return;
    case CK_IQ2_S:
        put16(out, d16);
        for (int i = 0; i < 32; i++) {
            out[2 + i] = (uint8_t)(idx[i] & 255);
            out[66 + i / 4] |= (uint8_t)((idx[i] >> 8) << (2 * (i % 4)));
            out[34 + i] = sg[i];
        }
        for (int g = 0; g < 8; g++) out[74 + g] = (uint8_t)(s[2 * g] | s[2 * g + 1] << 4);
        return;
    case CK_IQ3_XXS:
        put16(out, d16);
        for (int i = 0; i < 64; i++) out[2 + i] = (uint8_t)idx[i];
        for (int g = 0; g < 8; g++) {
            uint32_t b = (uint32_t)s[g] << 28;
            for (int l = 0; l < 4; l++) b |= (uint32_t)(sg[4 * g + l] & 127) << (7 * l);
            put32(out + 66 + 4 * g, b);
        }
        return;
    default:   // CK_IQ3_S
        put16(out, d16);
        for (int i = 0; i < 64; i++) {
            out[2 + i] = (uint8_t)(idx[i] & 255);
            out[66 + i / 8] |= (uint8_t)((idx[i] >> 8) << (i % 8));
        }
        for (int e = 0; e < 32; e++) out[74 + e] = sg[e];
        for (int g = 0; g < 8; g++) out[106 + g / 2] |= (uint8_t)(s[g] << (4 * (g % 2)));
        return;
    }
}

int64_t ckq_quantize_row_iq(int type, const float *x, void *vy, int64_t n) {
    if (!ck_is_iquant(type) || n % 256 != 0) return -1;
    pthread_once(&near_once, build_all);
    const size_t bytes = ck_row_size(type, 256);
    uint8_t *y = vy;
    for (int64_t b = 0; b < n / 256; b++) iq_quantize_block(type, x + 256 * b, y + (size_t)b * bytes);
    return (int64_t)(n / 256 * (int64_t)bytes);
}

void ckq_quantize_row_q4_0(const float *x, void *vy, int64_t n) {
    ck_block_q4_0 *y = vy;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < 32; i++) if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
        const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ck_fp32_to_fp16(d);
        for (int i = 0; i < 16; i++) {
            const int q0 = (int)(x[i] * id + 8.5f), q1 = (int)(x[i + 16] * id + 8.5f);
            y[b].qs[i] = (uint8_t)((q0 > 15 ? 15 : q0) | (q1 > 15 ? 15 : q1) << 4);
        }
    }
}
