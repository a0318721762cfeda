// The grouped-query attention kernels over a paged f16 / f32 KV cache (the scores and the values of the query heads
// that share one KV head), included once per build, each time with:
//   AT_NAME(f)   the entry points' names (f ## _avx2, f ## _avx512);
//   AT_FN        the attribute of a function compiled for the build (target features);
//   AT_INLINE    the same for an always-inlined helper;
//   AT_WIDE      if defined, the build has 32 vector registers (AVX512-VL): the scores pass takes four query heads at
//                a time (then three, two, one) and the values pass up to 8 columns for three heads or 6 for four,
//                so each K / V row is loaded and converted for more heads at once; every (head, position) keeps its
//                accumulators and order of operations, so both builds give the same bits (1.2× on scores, 1.1–1.25× on
//                values, one thread: BENCHMARKS.md, "2026-12-06 20:15–20:40").
// The scalar twins are ck_attn_scores_gqa_ref / ck_attn_values_gqa_ref (ref/attention.c).
#if defined(__x86_64__)
#include "avx2_common.h"

AT_INLINE __m256 load8_kv(int kv_type, const char *row, int64_t i) {
    return kv_type == CK_F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)))
                             : _mm256_loadu_ps((const float *)row + i);
}

/// Positions per chunk of the grouped kernels: the chunk's K/V rows (d elements of esize bytes each) take at most
/// 128 KiB, so the passes over one chunk (head groups in the scores, column groups in the values) read them from
/// L2 instead of L3 — MLA's 576-wide latent rows at 4k positions are 4.7 MB per layer. A multiple of 16 in
/// [16, 512] (512 for heads of up to 128 f16 values).
AT_INLINE int64_t attn_chunk(int64_t d, int64_t esize) {
    int64_t c = ((int64_t)128 << 10) / (d * esize) / 16 * 16;
    return c < 16 ? 16 : c > 512 ? 512 : c;
}

/// Positions ahead of the one being read at which the scores kernel prefetches K rows.
#ifndef ATTN_PF
#define ATTN_PF 8
#endif

/// Prefetches into L2 every line of position p's row (`bytes` from its start); nothing when p ≥ n. Used by the
/// scores kernel's first pass over a chunk: MLA decode at 4,096 positions 8.0 → 8.7 t/s on DeepSeek-V2-Lite
/// (BENCHMARKS.md, "2026-12-05 22:05–22:27"; the values kernel, which reads rows the scores just read, lost by it).
AT_INLINE void attn_prefetch_row(const void *base, size_t slot_bytes, const int32_t *table, int64_t bs, int64_t p,
                                 int64_t n, size_t bytes) {
    if (p < n) ck_prefetch_range((const char *)base + (size_t)((int64_t)table[p / bs] * bs + p % bs) * slot_bytes, bytes, 1);
}

/// One to four heads (four: AT_WIDE builds only) of the grouped scores kernel (H constant after inlining) over positions [p0, p1), two positions
/// at a time: each K row is loaded and converted once for the H queries, each query vector once for both rows
/// (the loads, not the FMAs, bound this loop: four heads of one position loaded ten vectors per eight FMAs, two
/// heads of two positions load eight; 1.2–1.3x). Per (head, position) the two accumulators (elements i mod 16 < 8
/// and ≥ 8) and the order of operations are those of ck_attn_scores_avx2, so results do not depend on H or the
/// pairing. Positions are walked block by block (one table read per block, no division per position).
AT_INLINE void attn_scores_heads(int kv_type, const float *q, int64_t qs, const int H, int64_t d, const void *k_base,
                                 size_t slot_bytes, const int32_t *table, int64_t bs, int64_t p0, int64_t p1,
                                 float scale, float *s, int64_t ss, int64_t pf_n) {
    const size_t row_bytes = (size_t)d * (kv_type == CK_F16 ? 2 : 4);
    for (int64_t blk = p0 / bs, p = p0; p < p1; blk++) {
        const int64_t first = p % bs;
        const char *base = (const char *)k_base + (size_t)((int64_t)table[blk] * bs + first) * slot_bytes;
        const int64_t m = p1 - p < bs - first ? p1 - p : bs - first;
        for (int64_t o = 0; o < m; o += 2) {
            if (pf_n) {   // the chunk's first pass reads its rows from L3 or DRAM: fetch ATTN_PF positions ahead
                attn_prefetch_row(k_base, slot_bytes, table, bs, p + o + ATTN_PF, pf_n, row_bytes);
                attn_prefetch_row(k_base, slot_bytes, table, bs, p + o + ATTN_PF + 1, pf_n, row_bytes);
            }
            // A block's odd last position pairs with itself; only its first result is stored.
            const int two = o + 1 < m;
            const char *r0 = base + (size_t)o * slot_bytes, *r1 = two ? r0 + slot_bytes : r0;
            __m256 a0[4][2], a1[4][2];
            for (int h = 0; h < H; h++) a0[h][0] = a0[h][1] = a1[h][0] = a1[h][1] = _mm256_setzero_ps();
            int64_t i = 0;
            for (; i + 16 <= d; i += 16) {
                const __m256 k00 = load8_kv(kv_type, r0, i), k10 = load8_kv(kv_type, r1, i);
                for (int h = 0; h < H; h++) {
                    const __m256 qv = _mm256_loadu_ps(q + h * qs + i);
                    a0[h][0] = _mm256_fmadd_ps(qv, k00, a0[h][0]);
                    a0[h][1] = _mm256_fmadd_ps(qv, k10, a0[h][1]);
                }
                const __m256 k01 = load8_kv(kv_type, r0, i + 8), k11 = load8_kv(kv_type, r1, i + 8);
                for (int h = 0; h < H; h++) {
                    const __m256 qv = _mm256_loadu_ps(q + h * qs + i + 8);
                    a1[h][0] = _mm256_fmadd_ps(qv, k01, a1[h][0]);
                    a1[h][1] = _mm256_fmadd_ps(qv, k11, a1[h][1]);
                }
            }
            for (; i < d; i += 8) {
                const __m256 k0 = load8_kv(kv_type, r0, i), k1 = load8_kv(kv_type, r1, i);
                for (int h = 0; h < H; h++) {
                    const __m256 qv = _mm256_loadu_ps(q + h * qs + i);
                    a0[h][0] = _mm256_fmadd_ps(qv, k0, a0[h][0]);
                    a0[h][1] = _mm256_fmadd_ps(qv, k1, a0[h][1]);
                }
            }
            for (int h = 0; h < H; h++) {
                s[h * ss + p + o] = ck_hsum_ps(_mm256_add_ps(a0[h][0], a1[h][0])) * scale;
                if (two) s[h * ss + p + o + 1] = ck_hsum_ps(_mm256_add_ps(a0[h][1], a1[h][1])) * scale;
            }
        }
        p += m;
    }
}

/// d % 8 == 0. Positions in chunks (attn_chunk); within a chunk, heads two at a time, the last one alone. Every
/// score is its own dot product, so the order of the loops changes no result.
AT_FN void AT_NAME(ck_attn_scores_gqa)(int kv_type, const float *q, int64_t qs, int64_t g, int64_t d, const void *k_base,
                                     size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale,
                                     float *s, int64_t ss) {
    const int64_t chunk = attn_chunk(d, kv_type == CK_F16 ? 2 : 4);
    for (int64_t p0 = 0; p0 < n; p0 += chunk) {
        const int64_t p1 = n - p0 < chunk ? n : p0 + chunk;
        // The first head pair's pass over a chunk prefetches its rows; the later passes find them in L2.
        int64_t h = 0;
#ifdef AT_WIDE
        for (; h + 4 <= g; h += 4)
            attn_scores_heads(kv_type, q + h * qs, qs, 4, d, k_base, slot_bytes, table, bs, p0, p1, scale, s + h * ss, ss,
                              h == 0 ? n : 0);
        if (g - h == 3) {
            attn_scores_heads(kv_type, q + h * qs, qs, 3, d, k_base, slot_bytes, table, bs, p0, p1, scale, s + h * ss, ss,
                              h == 0 ? n : 0);
            h += 3;
        }
#endif
        for (; h + 2 <= g; h += 2)
            attn_scores_heads(kv_type, q + h * qs, qs, 2, d, k_base, slot_bytes, table, bs, p0, p1, scale, s + h * ss, ss,
                              h == 0 ? n : 0);
        if (h < g)
            attn_scores_heads(kv_type, q + h * qs, qs, 1, d, k_base, slot_bytes, table, bs, p0, p1, scale, s + h * ss, ss,
                              h == 0 ? n : 0);
    }
}

/// Most positions per chunk of the grouped values kernel (the chunk is attn_chunk's): the weights of up to four
/// heads, rounded once, stay in L1.
enum { ATTN_VALUES_CHUNK = 512 };

/// H heads (≤ 4) × V eight-float columns (H · V ≤ 9 accumulators, V ≤ 8), dimensions [i0, i0 + 8V), positions
/// [p0, p0 + m): w holds the chunk's weights (already rounded for an f16 cache), ATTN_VALUES_CHUNK apart per head.
/// The sums start from zero at p0 = 0 and otherwise continue from `out`, so per lane the products are added over
/// positions in order, as in ck_attn_values_avx2.
AT_INLINE void attn_values_heads(int kv_type, const float *w, const int H, const int V, int64_t i0, const void *v_base,
                                 size_t slot_bytes, const int32_t *table, int64_t bs, int64_t p0, int64_t m,
                                 float *out, int64_t os) {
    __m256 acc[4][8];
    for (int h = 0; h < H; h++)
        for (int k = 0; k < V; k++)
            acc[h][k] = p0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out + h * os + i0 + 8 * k);
    int64_t blk = p0 / bs, o = p0 % bs;
    const char *base = (const char *)v_base + (size_t)((int64_t)table[blk] * bs) * slot_bytes;
    for (int64_t j = 0; j < m; j++) {
        if (o == bs) {
            o = 0;
            base = (const char *)v_base + (size_t)((int64_t)table[++blk] * bs) * slot_bytes;
        }
        const char *row = base + (size_t)o++ * slot_bytes;
        __m256 wv[4];
        for (int h = 0; h < H; h++) wv[h] = _mm256_broadcast_ss(w + h * ATTN_VALUES_CHUNK + j);
        for (int k = 0; k < V; k++) {
            const __m256 v = load8_kv(kv_type, row, i0 + 8 * k);
            for (int h = 0; h < H; h++) acc[h][k] = _mm256_fmadd_ps(wv[h], v, acc[h][k]);
        }
    }
    for (int h = 0; h < H; h++)
        for (int k = 0; k < V; k++) _mm256_storeu_ps(out + h * os + i0 + 8 * k, acc[h][k]);
}

/// H heads over all d / 8 columns for positions [p0, p0 + m), V columns per pass: 8 for one head (a 64-wide head
/// in one pass, as ck_attn_values_avx2), 4 for two, 3 for three, 2 for four (H·V accumulators, H broadcast
/// weights and a V row within the 16 registers: four heads × three columns spilled the accumulators to the
/// stack, 1.4x slower on MLA rows); the remainder one column at a time. Per lane the order of operations does not depend on V.
AT_INLINE void attn_values_group(int kv_type, const float *w, const int H, int64_t d, const void *v_base,
                                 size_t slot_bytes, const int32_t *table, int64_t bs, int64_t p0, int64_t m,
                                 float *out, int64_t os) {
    const int64_t cols = d / 8;
    int64_t c = 0;
    switch (H) {
    case 1: for (; c + 8 <= cols; c += 8) attn_values_heads(kv_type, w, 1, 8, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os); break;
#ifdef AT_WIDE   // H·V ≤ 24 accumulators, H broadcasts and a row within 32 registers
    case 2: for (; c + 8 <= cols; c += 8) attn_values_heads(kv_type, w, 2, 8, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os); break;
    case 3: for (; c + 8 <= cols; c += 8) attn_values_heads(kv_type, w, 3, 8, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os); break;
    default:
        for (; c + 6 <= cols; c += 6) attn_values_heads(kv_type, w, 4, 6, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os);
        for (; c + 2 <= cols; c += 2) attn_values_heads(kv_type, w, 4, 2, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os);
        break;
#else
    case 2: for (; c + 4 <= cols; c += 4) attn_values_heads(kv_type, w, 2, 4, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os); break;
    case 3: for (; c + 3 <= cols; c += 3) attn_values_heads(kv_type, w, 3, 3, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os); break;
    default: for (; c + 2 <= cols; c += 2) attn_values_heads(kv_type, w, 4, 2, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os); break;
#endif
    }
    for (; c < cols; c++) attn_values_heads(kv_type, w, H, 1, 8 * c, v_base, slot_bytes, table, bs, p0, m, out, os);
}

/// d % 8 == 0. Heads four at a time, the rest three, two or one; positions in chunks (attn_chunk, at most
/// ATTN_VALUES_CHUNK) whose weights are first copied (rounded to f16 for an f16 cache, once instead of once per
/// column pass). Each output lane adds its products over positions in order whatever the chunk size.
AT_FN void AT_NAME(ck_attn_values_gqa)(int kv_type, const float *w, int64_t ws, int64_t g, int64_t d, const void *v_base,
                                     size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out,
                                     int64_t os) {
    __attribute__((aligned(32))) float wc[4 * ATTN_VALUES_CHUNK];
    if (n <= 0) {
        for (int64_t h = 0; h < g; h++)
            for (int64_t i = 0; i < d; i++) out[h * os + i] = 0.0f;
        return;
    }
    const int64_t chunk = attn_chunk(d, kv_type == CK_F16 ? 2 : 4);
    for (int64_t h0 = 0; h0 < g; h0 += 4) {
        const int H = g - h0 < 4 ? (int)(g - h0) : 4;
        for (int64_t p0 = 0; p0 < n; p0 += chunk) {
            const int64_t m = n - p0 < chunk ? n - p0 : chunk;
            for (int h = 0; h < H; h++) {
                const float *src = w + (h0 + h) * ws + p0;
                float *dst = wc + h * ATTN_VALUES_CHUNK;
                int64_t j = 0;
                if (kv_type == CK_F16) {
                    for (; j + 8 <= m; j += 8)
                        _mm256_store_ps(dst + j, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(src + j), 0)));
                    for (; j < m; j++) dst[j] = _cvtsh_ss(_cvtss_sh(src[j], 0));
                } else {
                    for (; j < m; j++) dst[j] = src[j];
                }
            }
            float *o = out + h0 * os;
            switch (H) {
            case 4: attn_values_group(kv_type, wc, 4, d, v_base, slot_bytes, table, bs, p0, m, o, os); break;
            case 3: attn_values_group(kv_type, wc, 3, d, v_base, slot_bytes, table, bs, p0, m, o, os); break;
            case 2: attn_values_group(kv_type, wc, 2, d, v_base, slot_bytes, table, bs, p0, m, o, os); break;
            default: attn_values_group(kv_type, wc, 1, d, v_base, slot_bytes, table, bs, p0, m, o, os); break;
            }
        }
    }
}

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
void AT_NAME(ck_attn_scores_gqa)(int kv_type, const float *q, int64_t qs, int64_t g, int64_t d, const void *k_base,
                                 size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale, float *s,
                                 int64_t ss) {
    ck_attn_scores_gqa_ref(kv_type, q, qs, g, d, k_base, slot_bytes, table, bs, n, scale, s, ss);
}
void AT_NAME(ck_attn_values_gqa)(int kv_type, const float *w, int64_t ws, int64_t g, int64_t d, const void *v_base,
                                 size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out, int64_t os) {
    ck_attn_values_gqa_ref(kv_type, w, ws, g, d, v_base, slot_bytes, table, bs, n, out, os);
}
#endif
