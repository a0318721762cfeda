// The 8-bit MLA latent cache (layout and arithmetic in include/ckernels.h, "8-bit MLA latent cache"): the store, the
// row loader, and the scalar reference twins of the scores and values kernels, whose float operations the SIMD
// build (x86/avx512vnni_mla_q8.c) repeats lane by lane.
#include "ckernels.h"
#include "../internal.h"
#include <math.h>
#include <string.h>

size_t ck_mla_q8_tile_bytes(int64_t dl, int64_t dr) { return ck_mla_q8_off_vs(dl, dr) + 64; }

/// absmax / 127 of x[0..<n], and the values round(x / scale) into q (all 0 for an all-zero x).
static float quantize_part(const float *x, int64_t n, int8_t *q) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    if (amax == 0.0f) {
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    const float inv = 127.0f / amax;
    for (int64_t i = 0; i < n; i++) {
        float r = nearbyintf(x[i] * inv);
        q[i] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
    }
    return amax / 127.0f;
}

void ck_mla_q8_store(const float *row, int64_t dl, int64_t dr, void *base, size_t slot_bytes, int64_t slot) {
#pragma clang fp contract(off)
    int t;
    char *tile = ck_mla_q8_slot_tile(base, slot_bytes, slot, &t);
    const int64_t d = dl + dr, nl = (dl + 63) / 64;
    int8_t k[CK_MLA_Q8_MAX_D];
    float *ks = (float *)(tile + ck_mla_q8_off_ks(dl, dr)), *kb = (float *)(tile + ck_mla_q8_off_kb(dl, dr));
    float bias_lat = 0.0f;
    for (int64_t b = 0; b <= nl; b++) {
        const int64_t i0 = b < nl ? b * 64 : dl, len = b < nl ? (dl - i0 < 64 ? dl - i0 : 64) : dr;
        const float sc = quantize_part(row + i0, len, k + i0);
        int32_t sum = 0;
        for (int64_t i = i0; i < i0 + len; i++) sum += k[i];
        ks[b * 16 + t] = sc;
        const float corr = 128.0f * (sc * (float)sum);
        if (b < nl) bias_lat += corr;
        else kb[16 + t] = corr;
    }
    kb[t] = bias_lat;
    int8_t *K = (int8_t *)tile;
    for (int64_t i = 0; i < d; i++) K[(i / 4) * 64 + t * 4 + i % 4] = k[i];
    int8_t v[CK_MLA_Q8_MAX_D];
    ((float *)(tile + ck_mla_q8_off_vs(dl, dr)))[t] = quantize_part(row, dl, v);
    int8_t *V = (int8_t *)(tile + ck_mla_q8_off_v(dl, dr)) + (t / 4) * dl * 4 + t % 4;
    for (int64_t i = 0; i < dl; i++) V[i * 4] = v[i];
}

void ck_mla_q8_load_row(const void *base, size_t slot_bytes, int64_t slot, int64_t dl, int64_t dr, float *out) {
    int t;
    const char *tile = ck_mla_q8_slot_tile(base, slot_bytes, slot, &t);
    const int8_t *K = (const int8_t *)tile;
    const float *ks = (const float *)(tile + ck_mla_q8_off_ks(dl, dr));
    for (int64_t i = 0; i < dl + dr; i++) {
        const int64_t b = i < dl ? i / 64 : (dl + 63) / 64;
        out[i] = (float)K[(i / 4) * 64 + t * 4 + i % 4] * ks[b * 16 + t];
    }
}

/// A query head's bytes for the scores: qu[i] = round(q_i / sq) + 128 with sq[0] = absmax / 127 over the dl latent
/// values and sq[1] over the dr RoPE values (0 and all 128 for an all-zero part); the SIMD build has its vector form.
static void quantize_query(const float *q, int64_t dl, int64_t dr, uint8_t *qu, float *sq) {
    int8_t tmp[CK_MLA_Q8_MAX_D];
    sq[0] = quantize_part(q, dl, tmp);
    sq[1] = quantize_part(q + dl, dr, tmp + dl);
    for (int64_t i = 0; i < dl + dr; i++) qu[i] = (uint8_t)(tmp[i] + 128);
}

void ck_mla_q8_scores_ref(const float *q, int64_t q_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                          size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale, float *s,
                          int64_t s_stride) {
#pragma clang fp contract(off)
    const int64_t nl = (dl + 63) / 64;
    uint8_t qu[CK_MLA_Q8_MAX_D];
    for (int64_t h = 0; h < g; h++) {
        float sq[2];
        quantize_query(q + h * q_stride, dl, dr, qu, sq);
        for (int64_t p = 0; p < n; p++) {
            int t;
            const char *tile = ck_mla_q8_tile(base, slot_bytes, table, bs, p, &t);
            const int8_t *K = (const int8_t *)tile;
            const float *ks = (const float *)(tile + ck_mla_q8_off_ks(dl, dr));
            const float *kb = (const float *)(tile + ck_mla_q8_off_kb(dl, dr));
            float fl = 0.0f;
            for (int64_t b = 0; b < nl; b++) {
                int32_t acc = 0;
                for (int64_t i = b * 64; i < b * 64 + 64 && i < dl; i++) acc += (int32_t)qu[i] * K[(i / 4) * 64 + t * 4 + i % 4];
                fl = fmaf((float)acc, ks[b * 16 + t], fl);
            }
            float r = (fl - kb[t]) * sq[0];
            int32_t acc = 0;
            for (int64_t i = dl; i < dl + dr; i++) acc += (int32_t)qu[i] * K[(i / 4) * 64 + t * 4 + i % 4];
            const float fr = (float)acc * ks[nl * 16 + t] - kb[16 + t];
            r = fmaf(fr, sq[1], r);
            s[h * s_stride + p] = r * scale;
        }
    }
}

void ck_mla_q8_values_ref(const float *w, int64_t w_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                          size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out,
                          int64_t out_stride) {
#pragma clang fp contract(off)
    for (int64_t h = 0; h < g; h++) {
        const float *wh = w + h * w_stride;
        float *o = out + h * out_stride;
        for (int64_t i = 0; i < dl; i++) o[i] = 0.0f;
        for (int64_t p0 = 0; p0 < n; p0 += 64) {
            const int64_t p1 = p0 + 64 < n ? p0 + 64 : n;
            float x[64], m = 0.0f;
            const int8_t *vp[64];   // each position's first V byte (value i at + 4 i): one tile lookup per position
            for (int64_t p = p0; p < p1; p++) {
                int t;
                const char *tile = ck_mla_q8_tile(base, slot_bytes, table, bs, p, &t);
                vp[p - p0] = (const int8_t *)(tile + ck_mla_q8_off_v(dl, dr)) + (t / 4) * dl * 4 + t % 4;
                x[p - p0] = wh[p] * ((const float *)(tile + ck_mla_q8_off_vs(dl, dr)))[t];
                m = fmaxf(m, x[p - p0]);
            }
            if (m == 0.0f) continue;
            const float inv = 255.0f / m, sw = m / 255.0f;
            int32_t u[64];
            for (int64_t p = p0; p < p1; p++) {
                float r = nearbyintf(x[p - p0] * inv);
                u[p - p0] = (int32_t)(r > 255.0f ? 255.0f : r < 0.0f ? 0.0f : r);
            }
            for (int64_t i = 0; i < dl; i++) {
                int32_t acc = 0;
                for (int64_t p = p0; p < p1; p++) acc += u[p - p0] * vp[p - p0][i * 4];
                o[i] = fmaf((float)acc, sw, o[i]);
            }
        }
    }
}
