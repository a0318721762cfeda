// The 8-bit MLA latent cache's scores and values (layout and arithmetic in include/ckernels.h, "8-bit MLA latent
// cache") on VPDPBUSD with 256-bit vectors and AVX512-VL's 32 registers: per 32-bit lane four u8 × s8 products
// summed into an int32 (Intel SDM, VPDPBUSD). The scores put a tile's 16 positions in the lanes of two vectors (the
// K layout's 4 values of one token per lane), eight heads per pass sharing each K load; the values put 16 latent values
// in two vectors (the V layout's 4 tokens of one value per lane), up to eight heads sharing each V load. The float
// steps are the scalar twins' (ref/mla_q8.c) lane by lane, so the results are the same bits.
#include "ckernels.h"
#include "../internal.h"
#include <immintrin.h>
#include <string.h>

#define MQ_FN __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))
#define MQ_INLINE static inline __attribute__((always_inline, target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))

/// The 32-bit word at p (no alignment needed), broadcast to every lane.
MQ_INLINE __m256i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/// absmax / 127 of x[0..<n] (n % 4 == 0) and the bytes round(x / scale) + 128 into u: one part of the scalar twins'
/// quantize_query (ref/mla_q8.c) in vectors (maxima are exact, VCVTPS2DQ rounds to nearest even as nearbyintf does:
/// the same bytes).
MQ_INLINE float quantize_part_u8(const float *x, int64_t n, uint8_t *u) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    for (int64_t j = i; j < n; j++) {
        const float a = x[j] < 0 ? -x[j] : x[j];
        amax = a > amax ? a : amax;
    }
    if (amax == 0.0f) {
        memset(u, 128, (size_t)n);
        return 0.0f;
    }
    const __m256 inv = _mm256_set1_ps(127.0f / amax);
    const __m256i off = _mm256_set1_epi32(128);
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv)), off);
        _mm_storel_epi64((__m128i *)(u + i), _mm256_cvtepi32_epi8(r));
    }
    for (; i < n; i += 4) {
        const __m128i r = _mm_add_epi32(_mm_cvtps_epi32(_mm_mul_ps(_mm_loadu_ps(x + i), _mm256_castps256_ps128(inv))),
                                        _mm256_castsi256_si128(off));
        const uint32_t w = (uint32_t)_mm_cvtsi128_si32(_mm_cvtepi32_epi8(r));
        memcpy(u + i, &w, 4);
    }
    return amax / 127.0f;
}

/// ia[h][0..1] = the integer sums over K chunks [c0, c1) (four values each) of H heads' query bytes (qu, d apart)
/// times the tile's 16 tokens (two vectors of eight), hinting the same lines of the next tile `pf` (or NULL) into L2.
MQ_INLINE void scores_chunks(const uint8_t *qu, const int H, int64_t d, const int8_t *K, int64_t c0, int64_t c1,
                             const char *pf, __m256i ia[8][2]) {
    for (int h = 0; h < H; h++) ia[h][0] = ia[h][1] = _mm256_setzero_si256();
    for (int64_t c = c0; c < c1; c++) {
        if (pf) _mm_prefetch(pf + c * 64, _MM_HINT_T1);
        const __m256i k0 = _mm256_loadu_si256((const __m256i *)(K + c * 64));
        const __m256i k1 = _mm256_loadu_si256((const __m256i *)(K + c * 64 + 32));
        for (int h = 0; h < H; h++) {
            const __m256i qb = bcast32(qu + h * d + c * 4);
            ia[h][0] = _mm256_dpbusd_epi32(ia[h][0], qb, k0);
            ia[h][1] = _mm256_dpbusd_epi32(ia[h][1], qb, k1);
        }
    }
}

/// Scores of H heads (quantized rows qu, d bytes apart; scales sq [H][2]) for the 16 tokens of a tile (two vectors
/// of eight positions, each query word serving both): res[h * 16 + j] = scale · score of token j. `pf` (or NULL):
/// the next tile, whose K bytes and scales this pass hints into L2 (one line per chunk: a tile from memory takes
/// longer than its products without it).
MQ_INLINE void scores_tile(const uint8_t *qu, const float *sq, const int H, int64_t dl, int64_t dr,
                           const char *tile, float scale, float *res, const char *pf) {
    const int64_t d = dl + dr, nl = (dl + 63) / 64;
    const int8_t *K = (const int8_t *)tile;
    const float *ks = (const float *)(tile + ck_mla_q8_off_ks(dl, dr));
    const float *kb = (const float *)(tile + ck_mla_q8_off_kb(dl, dr));
    __m256 fl[8][2];
    __m256i ia[8][2];
    for (int h = 0; h < H; h++) fl[h][0] = fl[h][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nl; b++) {
        scores_chunks(qu, H, d, K, b * 16, b * 16 + 16 < dl / 4 ? b * 16 + 16 : dl / 4, pf, ia);
        const __m256 s0 = _mm256_loadu_ps(ks + b * 16), s1 = _mm256_loadu_ps(ks + b * 16 + 8);
        for (int h = 0; h < H; h++) {
            fl[h][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h][0]), s0, fl[h][0]);
            fl[h][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h][1]), s1, fl[h][1]);
        }
    }
    if (pf)
        for (size_t o = ck_mla_q8_off_ks(dl, dr); o < ck_mla_q8_off_vs(dl, dr); o += 64) _mm_prefetch(pf + o, _MM_HINT_T1);
    scores_chunks(qu, H, d, K, dl / 4, d / 4, pf, ia);
    const __m256 vscale = _mm256_set1_ps(scale);
    for (int g2 = 0; g2 < 2; g2++) {
        const __m256 kbl = _mm256_loadu_ps(kb + 8 * g2), kbr = _mm256_loadu_ps(kb + 16 + 8 * g2), skr = _mm256_loadu_ps(ks + nl * 16 + 8 * g2);
        for (int h = 0; h < H; h++) {
            __m256 r = _mm256_mul_ps(_mm256_sub_ps(fl[h][g2], kbl), _mm256_set1_ps(sq[2 * h]));
            const __m256 fr = _mm256_sub_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ia[h][g2]), skr), kbr);
            r = _mm256_fmadd_ps(fr, _mm256_set1_ps(sq[2 * h + 1]), r);
            _mm256_storeu_ps(res + h * 16 + 8 * g2, _mm256_mul_ps(r, vscale));
        }
    }
}

MQ_FN void ck_mla_q8_scores_avx512vnni(const float *q, int64_t q_stride, int64_t g, int64_t dl, int64_t dr,
                                       const void *base, size_t slot_bytes, const int32_t *table, int64_t bs,
                                       int64_t n, float scale, float *s, int64_t s_stride) {
    const int64_t d = dl + dr;
    __attribute__((aligned(32))) uint8_t qu[16 * CK_MLA_Q8_MAX_D];
    float sq[32];
    __attribute__((aligned(32))) float res[128];
    for (int64_t hb = 0; hb < g; hb += 16) {
        const int64_t G = g - hb < 16 ? g - hb : 16;
        for (int64_t h = 0; h < G; h++) {
            sq[2 * h] = quantize_part_u8(q + (hb + h) * q_stride, dl, qu + h * d);
            sq[2 * h + 1] = quantize_part_u8(q + (hb + h) * q_stride + dl, dr, qu + h * d + dl);
        }
        // Tiles outside, up to 16 heads inside (eight per pass): each tile is read from memory once.
        for (int64_t p0 = 0; p0 < n; p0 += 16) {
            int row, next_row;   // (p0 is a tile's first position: row 0)
            const char *tile = ck_mla_q8_tile(base, slot_bytes, table, bs, p0, &row);
            const char *pf = p0 + 16 < n ? ck_mla_q8_tile(base, slot_bytes, table, bs, p0 + 16, &next_row) : NULL;
            const int64_t m = n - p0 < 16 ? n - p0 : 16;
            for (int64_t h0 = 0; h0 < G; h0 += 8) {
                const int H = G - h0 < 8 ? (int)(G - h0) : 8;
                const uint8_t *qh = qu + h0 * d;
                const float *sh = sq + 2 * h0;
                const char *hint = h0 == 0 ? pf : NULL;
                switch (H) {
                case 8: scores_tile(qh, sh, 8, dl, dr, tile, scale, res, hint); break;
                case 7: scores_tile(qh, sh, 7, dl, dr, tile, scale, res, hint); break;
                case 6: scores_tile(qh, sh, 6, dl, dr, tile, scale, res, hint); break;
                case 5: scores_tile(qh, sh, 5, dl, dr, tile, scale, res, hint); break;
                case 4: scores_tile(qh, sh, 4, dl, dr, tile, scale, res, hint); break;
                case 3: scores_tile(qh, sh, 3, dl, dr, tile, scale, res, hint); break;
                case 2: scores_tile(qh, sh, 2, dl, dr, tile, scale, res, hint); break;
                default: scores_tile(qh, sh, 1, dl, dr, tile, scale, res, hint); break;
                }
                for (int h = 0; h < H; h++) memcpy(s + (hb + h0 + h) * s_stride + p0, res + h * 16, (size_t)m * 4);
            }
        }
    }
}

/// out rows (os apart) of H heads += the weighted sums over nq quads (V pointers vq) of the 16 latent values from i0:
/// per head the integer sums of pu (the quads' quantized weights, [quad][16 heads] words) times V, times sw[h];
/// heads with skip[h] untouched. `pq` (or NULL): the next 64 positions' 16 quad pointers, whose line for these
/// latent values is hinted into L2.
MQ_INLINE void values_heads(const uint32_t *pu, const float *sw, const uint8_t *skip, const int H, int64_t nq,
                            const int8_t *const *vq, int64_t i0, float *out, int64_t os, const int8_t *const *pq) {
    if (pq)
        for (int j = 0; j < 16; j++) _mm_prefetch((const char *)(pq[j] + i0 * 4), _MM_HINT_T1);
    __m256i ia[8][2];
    for (int h = 0; h < H; h++) ia[h][0] = ia[h][1] = _mm256_setzero_si256();
    for (int64_t j = 0; j < nq; j++) {
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)(vq[j] + i0 * 4));
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(vq[j] + i0 * 4 + 32));
        for (int h = 0; h < H; h++) {
            const __m256i pb = _mm256_set1_epi32((int32_t)pu[j * 16 + h]);
            ia[h][0] = _mm256_dpbusd_epi32(ia[h][0], pb, v0);
            ia[h][1] = _mm256_dpbusd_epi32(ia[h][1], pb, v1);
        }
    }
    for (int h = 0; h < H; h++) {
        if (skip[h]) continue;
        float *o = out + h * os + i0;
        const __m256 s = _mm256_set1_ps(sw[h]);
        _mm256_storeu_ps(o, _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h][0]), s, _mm256_loadu_ps(o)));
        _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h][1]), s, _mm256_loadu_ps(o + 8)));
    }
}

MQ_FN void ck_mla_q8_values_avx512vnni(const float *w, int64_t w_stride, int64_t g, int64_t dl, int64_t dr,
                                       const void *base, size_t slot_bytes, const int32_t *table, int64_t bs,
                                       int64_t n, float *out, int64_t out_stride) {
    for (int64_t h = 0; h < g; h++) memset(out + h * out_stride, 0, (size_t)dl * 4);
    for (int64_t hb = 0; hb < g; hb += 16) {
        const int64_t G = g - hb < 16 ? g - hb : 16;
        for (int64_t p0 = 0; p0 < n; p0 += 64) {
            const int64_t np = n - p0 < 64 ? n - p0 : 64, nq = (np + 3) / 4;
            const int8_t *vq[16];
            static const float none[1];
            const float *vs[4] = {none, none, none, none};   // (subtiles past n: their loads are fully masked)
            for (int64_t j = 0; j < nq; j++) {
                int row;
                const char *tile = ck_mla_q8_tile(base, slot_bytes, table, bs, p0 + 4 * j, &row);
                vq[j] = (const int8_t *)(tile + ck_mla_q8_off_v(dl, dr)) + (row / 4) * dl * 4;
                if (j % 4 == 0) vs[j / 4] = (const float *)(tile + ck_mla_q8_off_vs(dl, dr));
            }
            // The weights times vs, quantized per head: pu [quad][head] words of four bytes.
            __attribute__((aligned(32))) uint32_t pu[16 * 16];
            float sw[16];
            uint8_t skip[16];
            for (int64_t h = 0; h < G; h++) {
                const float *wh = w + (hb + h) * w_stride + p0;
                __m256 x[8], mx = _mm256_setzero_ps();
                for (int k = 0; k < 8; k++) {
                    const int64_t left = np - 8 * k;
                    const __mmask8 mask = left >= 8 ? 0xff : left <= 0 ? 0 : (__mmask8)((1u << left) - 1);
                    x[k] = _mm256_mul_ps(_mm256_maskz_loadu_ps(mask, wh + 8 * k),
                                         _mm256_maskz_loadu_ps(mask, vs[k / 2] + 8 * (k % 2)));
                    mx = _mm256_max_ps(mx, x[k]);
                }
                __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
                m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
                m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
                const float m = _mm_cvtss_f32(m4);
                skip[h] = m == 0.0f;
                sw[h] = m / 255.0f;
                const __m256 inv = _mm256_set1_ps(skip[h] ? 0.0f : 255.0f / m);
                for (int k = 0; k < 8; k++) {
                    const __m128i b = _mm256_cvtusepi32_epi8(_mm256_cvtps_epi32(_mm256_mul_ps(x[k], inv)));
                    pu[(2 * k) * 16 + h] = (uint32_t)_mm_extract_epi32(b, 0);
                    pu[(2 * k + 1) * 16 + h] = (uint32_t)_mm_extract_epi32(b, 1);
                }
            }
            // The next 64 positions' quads (a full chunk), for the hints.
            const int8_t *next[16];
            const int pf = p0 + 128 <= n;
            for (int64_t j = 0; pf && j < 16; j++) {
                int row;
                const char *tile = ck_mla_q8_tile(base, slot_bytes, table, bs, p0 + 64 + 4 * j, &row);
                next[j] = (const int8_t *)(tile + ck_mla_q8_off_v(dl, dr)) + (row / 4) * dl * 4;
            }
            // Latent values outside, heads inside: both head groups read the same V lines while they are in L1.
            for (int64_t i0 = 0; i0 < dl; i0 += 16) {
                for (int64_t h0 = 0; h0 < G; h0 += 8) {
                    const int H = G - h0 < 8 ? (int)(G - h0) : 8;
                    const int8_t *const *pq = pf && h0 == 0 ? next : NULL;
                    float *o = out + (hb + h0) * out_stride;
                    switch (H) {
                    case 8: values_heads(pu + h0, sw + h0, skip + h0, 8, nq, vq, i0, o, out_stride, pq); break;
                    case 7: values_heads(pu + h0, sw + h0, skip + h0, 7, nq, vq, i0, o, out_stride, pq); break;
                    case 6: values_heads(pu + h0, sw + h0, skip + h0, 6, nq, vq, i0, o, out_stride, pq); break;
                    case 5: values_heads(pu + h0, sw + h0, skip + h0, 5, nq, vq, i0, o, out_stride, pq); break;
                    case 4: values_heads(pu + h0, sw + h0, skip + h0, 4, nq, vq, i0, o, out_stride, pq); break;
                    case 3: values_heads(pu + h0, sw + h0, skip + h0, 3, nq, vq, i0, o, out_stride, pq); break;
                    case 2: values_heads(pu + h0, sw + h0, skip + h0, 2, nq, vq, i0, o, out_stride, pq); break;
                    default: values_heads(pu + h0, sw + h0, skip + h0, 1, nq, vq, i0, o, out_stride, pq); break;
                    }
                }
            }
        }
    }
}
