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
#include <string.h>

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

/// Most positions per chunk of the grouped values kernels (the chunk is attn_chunk's): the weights of up to four heads
/// (eight with a bf16 cache), rounded once, stay in L1.
enum { ATTN_VALUES_CHUNK = 512 };

// ---------------------------------------------------------------- bf16 cache
// The kernels below run the bf16 pair steps of VDPBF16PS (per float lane: acc + a1·b1, then + a0·b0, products exact),
// natively in AT_BF16 builds and as two FMAs on the widened pair elsewhere, so every build gives the bits of the
// scalar twins (ref/attention.c). d % 16 == 0 and d ≤ CK_ATTN_BF16_MAX_D.

/// Most query heads one bf16 pass takes: eight (16 accumulators for two positions) with 32 registers, else four
/// (the emulated pair step is two dependent FMAs: eight chains keep both FMA pipes busy).
#if defined(AT_BF16) || defined(AT_WIDE)
#define ATTN_BF16_HEADS 8
#else
#define ATTN_BF16_HEADS 4
#endif

/// Eight floats rounded to bf16 with ck_fp32_to_bf16's bits, in the low half of each 32-bit lane.
AT_INLINE __m256i bf16_round8(__m256 x) {
    const __m256i u = _mm256_castps_si256(x);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd)), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
}

/// The query rows of H heads (qs apart) rounded to bf16, d per head, in the layout the scores pass reads: the bf16
/// values in order (AT_BF16), else per 16-element chunk the eight odd elements then the eight even ones as floats.
AT_INLINE void bf16_queries(const float *q, int64_t qs, int64_t H, int64_t d, void *dst) {
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < d; i += 16) {
            __attribute__((aligned(32))) uint32_t r[16];
            _mm256_store_si256((__m256i *)r, bf16_round8(_mm256_loadu_ps(q + h * qs + i)));
            _mm256_store_si256((__m256i *)(r + 8), bf16_round8(_mm256_loadu_ps(q + h * qs + i + 8)));
#ifdef AT_BF16
            for (int j = 0; j < 16; j++) ((uint16_t *)dst)[h * d + i + j] = (uint16_t)r[j];
#else
            float *o = (float *)dst + h * d + i;
            for (int j = 0; j < 8; j++) {
                const uint32_t odd = r[2 * j + 1] << 16, even = r[2 * j] << 16;
                memcpy(o + j, &odd, 4);
                memcpy(o + 8 + j, &even, 4);
            }
#endif
        }
}

/// Stores scale × the lane sums of a[h][t] for heads h < H at s[h × ss]: per head t_j = l_j + l_{j+4}, then
/// (t_0 + t_1) + (t_2 + t_3), eight heads at once (head pairs' halves added, then two rounds of vhaddps).
AT_INLINE void bf16_scores_store(__m256 a[][2], const int H, int t, float scale, float *s, int64_t ss) {
    __m256 pr[4];
    for (int k = 0; k < 4; k++) {
        const __m256 x = 2 * k < H ? a[2 * k][t] : _mm256_setzero_ps();
        const __m256 y = 2 * k + 1 < H ? a[2 * k + 1][t] : _mm256_setzero_ps();
        pr[k] = _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31));
    }
    const __m256 u0 = _mm256_hadd_ps(pr[0], pr[1]), u1 = H > 4 ? _mm256_hadd_ps(pr[2], pr[3]) : _mm256_setzero_ps();
    __attribute__((aligned(32))) float v[8];   // heads 0, 2, 4, 6, 1, 3, 5, 7
    _mm256_store_ps(v, _mm256_mul_ps(_mm256_hadd_ps(u0, u1), _mm256_set1_ps(scale)));
    static const int lane_of[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    for (int h = 0; h < H; h++) s[h * ss] = v[lane_of[h]];
}

/// Scores of H heads (constant after inlining) over positions [p0, p1), two at a time, one accumulator per (head,
/// position) summed by bf16_scores_store; `qd` from bf16_queries. With pf_n > 0 the pass prefetches the rows ahead,
/// as attn_scores_heads does.
AT_INLINE void attn_scores_bf16_heads(const void *qd, const int H, int64_t d, const void *k_base, size_t slot_bytes,
                                      const int32_t *table, int64_t bs, int64_t p0, int64_t p1, float scale, float *s,
                                      int64_t ss, int64_t pf_n) {
    for (int64_t blk = p0 / bs, p = p0; p < p1; blk++) {
        const int64_t first = p % bs;
        const char *base = (const char *)k_base + (size_t)((int64_t)table[blk] * bs + first) * slot_bytes;
        const int64_t m = p1 - p < bs - first ? p1 - p : bs - first;
        for (int64_t o = 0; o < m; o += 2) {
            if (pf_n) {
                attn_prefetch_row(k_base, slot_bytes, table, bs, p + o + ATTN_PF, pf_n, (size_t)d * 2);
                attn_prefetch_row(k_base, slot_bytes, table, bs, p + o + ATTN_PF + 1, pf_n, (size_t)d * 2);
            }
            const int two = o + 1 < m;
            const char *r0 = base + (size_t)o * slot_bytes, *r1 = two ? r0 + slot_bytes : r0;
            __m256 a[ATTN_BF16_HEADS][2];
            for (int h = 0; h < H; h++) a[h][0] = a[h][1] = _mm256_setzero_ps();
            for (int64_t i = 0; i < d; i += 16) {
                const __m256i k0 = _mm256_loadu_si256((const __m256i *)(r0 + 2 * i));
                const __m256i k1 = _mm256_loadu_si256((const __m256i *)(r1 + 2 * i));
#ifdef AT_BF16
                for (int h = 0; h < H; h++) {
                    const __m256bh qv = (__m256bh)_mm256_loadu_si256((const __m256i *)((const uint16_t *)qd + h * d + i));
                    a[h][0] = _mm256_dpbf16_ps(a[h][0], (__m256bh)k0, qv);
                    a[h][1] = _mm256_dpbf16_ps(a[h][1], (__m256bh)k1, qv);
                }
#else
                const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
                const __m256 k0o = _mm256_castsi256_ps(_mm256_and_si256(k0, hi)), k0e = _mm256_castsi256_ps(_mm256_slli_epi32(k0, 16));
                const __m256 k1o = _mm256_castsi256_ps(_mm256_and_si256(k1, hi)), k1e = _mm256_castsi256_ps(_mm256_slli_epi32(k1, 16));
                for (int h = 0; h < H; h++) {
                    const __m256 qo = _mm256_loadu_ps((const float *)qd + h * d + i);
                    const __m256 qe = _mm256_loadu_ps((const float *)qd + h * d + i + 8);
                    a[h][0] = _mm256_fmadd_ps(qe, k0e, _mm256_fmadd_ps(qo, k0o, a[h][0]));
                    a[h][1] = _mm256_fmadd_ps(qe, k1e, _mm256_fmadd_ps(qo, k1o, a[h][1]));
                }
#endif
            }
            bf16_scores_store(a, H, 0, scale, s + p + o, ss);
            if (two) bf16_scores_store(a, H, 1, scale, s + p + o + 1, ss);
        }
        p += m;
    }
}

/// Heads ATTN_BF16_HEADS at a time (the queries rounded once per group), positions in chunks (attn_chunk) inside.
AT_INLINE void attn_scores_bf16(const float *q, int64_t qs, int64_t g, int64_t d, const void *k_base, size_t slot_bytes,
                                const int32_t *table, int64_t bs, int64_t n, float scale, float *s, int64_t ss) {
#ifdef AT_BF16
    __attribute__((aligned(32))) uint16_t qd[ATTN_BF16_HEADS * CK_ATTN_BF16_MAX_D];
#else
    __attribute__((aligned(32))) float qd[ATTN_BF16_HEADS * CK_ATTN_BF16_MAX_D];
#endif
    const int64_t chunk = attn_chunk(d, 2);
    for (int64_t h0 = 0; h0 < g; h0 += ATTN_BF16_HEADS) {
        const int H = g - h0 < ATTN_BF16_HEADS ? (int)(g - h0) : ATTN_BF16_HEADS;
        bf16_queries(q + h0 * qs, qs, H, d, qd);
        const int64_t pf = h0 == 0 ? n : 0;   // only the first head group's passes fetch the rows from DRAM
        for (int64_t p0 = 0; p0 < n; p0 += chunk) {
            const int64_t p1 = n - p0 < chunk ? n : p0 + chunk;
            float *so = s + h0 * ss;
            switch (H) {
#if ATTN_BF16_HEADS > 4
            case 8: attn_scores_bf16_heads(qd, 8, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
            case 7: attn_scores_bf16_heads(qd, 7, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
            case 6: attn_scores_bf16_heads(qd, 6, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
            case 5: attn_scores_bf16_heads(qd, 5, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
#endif
            case 4: attn_scores_bf16_heads(qd, 4, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
            case 3: attn_scores_bf16_heads(qd, 3, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
            case 2: attn_scores_bf16_heads(qd, 2, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
            default: attn_scores_bf16_heads(qd, 1, d, k_base, slot_bytes, table, bs, p0, p1, scale, so, ss, pf); break;
            }
        }
    }
}

/// H heads × V groups of 16 columns from i0 (H·V·2 accumulators ≤ 16 native; emulated the same columns as 2V
/// eight-float groups), positions [p0, p0 + m) in pairs (m even, or the chunk's odd last position paired with a zero
/// weight on its own row), `rows[j]` the row of position p0 + j (j ≤ m); `wp` holds the chunk's weights rounded to bf16 as ATTN_VALUES_CHUNK / 2 pairs per head,
/// the even position in the low half. Sums start from zero at p0 = 0, else continue from `out`. Natively a pair
/// of rows is interleaved (vpunpck[lh]wd), so accumulator 0 of a group holds columns 0–3 and 8–11, accumulator 1
/// columns 4–7 and 12–15 (vperm2f128 puts them back in order).
AT_INLINE void attn_values_bf16_heads(const uint32_t *wp, const int H, const int V, int64_t i0, const char *const *rows,
                                      int64_t p0, int64_t m, float *out, int64_t os) {
    __m256 acc[ATTN_BF16_HEADS][8][2];
    for (int h = 0; h < H; h++)
        for (int k = 0; k < V; k++) {
            const float *o = out + h * os + i0 + 16 * k;
            const __m256 lo = p0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(o);
            const __m256 hi = p0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(o + 8);
#ifdef AT_BF16
            acc[h][k][0] = _mm256_permute2f128_ps(lo, hi, 0x20);
            acc[h][k][1] = _mm256_permute2f128_ps(lo, hi, 0x31);
#else
            acc[h][k][0] = lo;
            acc[h][k][1] = hi;
#endif
        }
    for (int64_t j = 0; j < m; j += 2) {
        const char *r0 = rows[j], *r1 = rows[j + 1];
        for (int k = 0; k < V; k++) {
            const int64_t c = i0 + 16 * k;
#ifdef AT_BF16
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(r0 + 2 * c));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(r1 + 2 * c));
            const __m256bh lo = (__m256bh)_mm256_unpacklo_epi16(x0, x1), hi = (__m256bh)_mm256_unpackhi_epi16(x0, x1);
            for (int h = 0; h < H; h++) {
                const __m256bh wv = (__m256bh)_mm256_set1_epi32((int)wp[h * (ATTN_VALUES_CHUNK / 2) + j / 2]);
                acc[h][k][0] = _mm256_dpbf16_ps(acc[h][k][0], lo, wv);
                acc[h][k][1] = _mm256_dpbf16_ps(acc[h][k][1], hi, wv);
            }
#else
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(r0 + 2 * c));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(r1 + 2 * c));
            const __m256 v0[2] = {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(x0)), 16)),
                                  _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(x0, 1)), 16))};
            const __m256 v1[2] = {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(x1)), 16)),
                                  _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(x1, 1)), 16))};
            for (int h = 0; h < H; h++) {
                const __m256 we = _mm256_broadcast_ss((const float *)wp + h * ATTN_VALUES_CHUNK + j);
                const __m256 wo = _mm256_broadcast_ss((const float *)wp + h * ATTN_VALUES_CHUNK + j + 1);
                for (int half = 0; half < 2; half++)
                    acc[h][k][half] = _mm256_fmadd_ps(we, v0[half], _mm256_fmadd_ps(wo, v1[half], acc[h][k][half]));
            }
#endif
        }
    }
    for (int h = 0; h < H; h++)
        for (int k = 0; k < V; k++) {
            float *o = out + h * os + i0 + 16 * k;
#ifdef AT_BF16
            _mm256_storeu_ps(o, _mm256_permute2f128_ps(acc[h][k][0], acc[h][k][1], 0x20));
            _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(acc[h][k][0], acc[h][k][1], 0x31));
#else
            _mm256_storeu_ps(o, acc[h][k][0]);
            _mm256_storeu_ps(o + 8, acc[h][k][1]);
#endif
        }
}

#ifdef AT_BF16
/// The AVX512-BF16 build's main pass: H heads × 32 columns from i0 in zmm registers (2H accumulators), otherwise as
/// attn_values_bf16_heads (the same pair steps per column, so the same bits): each row load, interleave and weight
/// broadcast serves twice the products. Accumulator 0 holds columns 0–3, 8–11, 16–19 and 24–27 (the vpunpcklwd half
/// of each 128-bit lane), accumulator 1 the others.
AT_INLINE void attn_values_bf16_heads32(const uint32_t *wp, const int H, int64_t i0, const char *const *rows, int64_t p0,
                                        int64_t m, float *out, int64_t os) {
    const __m512i to_acc0 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    const __m512i to_acc1 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    const __m512i to_out0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i to_out1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    __m512 acc[ATTN_BF16_HEADS][2];
    for (int h = 0; h < H; h++) {
        if (p0 == 0) {
            acc[h][0] = acc[h][1] = _mm512_setzero_ps();
        } else {
            const __m512 a = _mm512_loadu_ps(out + h * os + i0), b = _mm512_loadu_ps(out + h * os + i0 + 16);
            acc[h][0] = _mm512_permutex2var_ps(a, to_acc0, b);
            acc[h][1] = _mm512_permutex2var_ps(a, to_acc1, b);
        }
    }
    for (int64_t j = 0; j < m; j += 2) {
        const __m512i x0 = _mm512_loadu_si512((const void *)(rows[j] + 2 * i0));
        const __m512i x1 = _mm512_loadu_si512((const void *)(rows[j + 1] + 2 * i0));
        const __m512bh lo = (__m512bh)_mm512_unpacklo_epi16(x0, x1), hi = (__m512bh)_mm512_unpackhi_epi16(x0, x1);
        for (int h = 0; h < H; h++) {
            const __m512bh wv = (__m512bh)_mm512_set1_epi32((int)wp[h * (ATTN_VALUES_CHUNK / 2) + j / 2]);
            acc[h][0] = _mm512_dpbf16_ps(acc[h][0], lo, wv);
            acc[h][1] = _mm512_dpbf16_ps(acc[h][1], hi, wv);
        }
    }
    for (int h = 0; h < H; h++) {
        _mm512_storeu_ps(out + h * os + i0, _mm512_permutex2var_ps(acc[h][0], to_out0, acc[h][1]));
        _mm512_storeu_ps(out + h * os + i0 + 16, _mm512_permutex2var_ps(acc[h][0], to_out1, acc[h][1]));
    }
}
#endif

/// H heads over all d / 16 column groups, V groups per pass (H·V·2 accumulators within the registers).
AT_INLINE void attn_values_bf16_group(const uint32_t *wp, const int H, int64_t d, const char *const *rows, int64_t p0,
                                      int64_t m, float *out, int64_t os) {
    const int64_t groups = d / 16;
#if defined(AT_BF16) || defined(AT_WIDE)
    const int V = H > 4 ? 1 : H > 2 ? 2 : H > 1 ? 4 : 8;   // ≤ 16 accumulators
#else
    const int V = H > 2 ? 1 : H > 1 ? 2 : 4;               // ≤ 8 accumulators
#endif
    int64_t k = 0;
#ifdef AT_BF16
    for (; k + 2 <= groups; k += 2) attn_values_bf16_heads32(wp, H, 16 * k, rows, p0, m, out, os);
#endif
    for (; k + V <= groups; k += V)
        attn_values_bf16_heads(wp, H, V, 16 * k, rows, p0, m, out, os);
    for (; k < groups; k++) attn_values_bf16_heads(wp, H, 1, 16 * k, rows, p0, m, out, os);
}

/// Heads ATTN_BF16_HEADS at a time; positions in chunks (attn_chunk, at most ATTN_VALUES_CHUNK, even) whose weights
/// are first rounded to bf16 pairs.
AT_INLINE void attn_values_bf16(const float *w, int64_t ws, int64_t g, int64_t d, const void *v_base,
                                size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out, int64_t os) {
#ifdef AT_BF16
    __attribute__((aligned(32))) uint32_t wp[ATTN_BF16_HEADS * (ATTN_VALUES_CHUNK / 2)];
#else
    __attribute__((aligned(32))) uint32_t wp[ATTN_BF16_HEADS * ATTN_VALUES_CHUNK + 1];
#endif
    const int64_t chunk = attn_chunk(d, 2) < ATTN_VALUES_CHUNK ? attn_chunk(d, 2) : ATTN_VALUES_CHUNK;
    const char *rows[ATTN_VALUES_CHUNK + 1];
    for (int64_t h0 = 0; h0 < g; h0 += ATTN_BF16_HEADS) {
        const int H = g - h0 < ATTN_BF16_HEADS ? (int)(g - h0) : ATTN_BF16_HEADS;
        for (int64_t p0 = 0; p0 < n; p0 += chunk) {
            const int64_t m = n - p0 < chunk ? n - p0 : chunk;
            for (int64_t j = 0, blk = p0 / bs, o = p0 % bs; j < m; j++) {   // the chunk's rows, walked once
                rows[j] = (const char *)v_base + (size_t)((int64_t)table[blk] * bs + o) * slot_bytes;
                if (++o == bs) { o = 0; blk++; }
            }
            rows[m] = rows[m - 1];   // an odd last position's partner (zero weight)
            for (int h = 0; h < H; h++) {
                const float *src = w + (h0 + h) * ws + p0;
                int64_t j = 0;
#ifdef AT_BF16
                uint32_t *dst = wp + h * (ATTN_VALUES_CHUNK / 2);
                for (; j + 16 <= m; j += 16) {   // 16 weights → 8 pairs (vpackusdw interleaves 128-bit lanes)
                    const __m256i r = _mm256_packus_epi32(bf16_round8(_mm256_loadu_ps(src + j)),
                                                          bf16_round8(_mm256_loadu_ps(src + j + 8)));
                    _mm256_storeu_si256((__m256i *)(dst + j / 2), _mm256_permute4x64_epi64(r, 0xD8));
                }
                for (; j < m; j += 2)
                    dst[j / 2] = ck_fp32_to_bf16(src[j]) | (j + 1 < m ? (uint32_t)ck_fp32_to_bf16(src[j + 1]) << 16 : 0u);
#else
                uint32_t *dst = wp + h * ATTN_VALUES_CHUNK;
                for (; j + 8 <= m; j += 8)
                    _mm256_storeu_si256((__m256i *)(dst + j), _mm256_slli_epi32(bf16_round8(_mm256_loadu_ps(src + j)), 16));
                for (; j < m; j++) dst[j] = (uint32_t)ck_fp32_to_bf16(src[j]) << 16;
                if (m & 1) dst[m] = 0;
#endif
            }
            float *o = out + h0 * os;
            switch (H) {
#if ATTN_BF16_HEADS > 4
            case 8: attn_values_bf16_group(wp, 8, d, rows, p0, m, o, os); break;
            case 7: attn_values_bf16_group(wp, 7, d, rows, p0, m, o, os); break;
            case 6: attn_values_bf16_group(wp, 6, d, rows, p0, m, o, os); break;
            case 5: attn_values_bf16_group(wp, 5, d, rows, p0, m, o, os); break;
#endif
            case 4: attn_values_bf16_group(wp, 4, d, rows, p0, m, o, os); break;
            case 3: attn_values_bf16_group(wp, 3, d, rows, p0, m, o, os); break;
            case 2: attn_values_bf16_group(wp, 2, d, rows, p0, m, o, os); break;
            default: attn_values_bf16_group(wp, 1, d, rows, p0, m, o, os); break;
            }
        }
    }
}

/// d % 8 == 0. Positions in chunks (attn_chunk); within a chunk, heads two at a time, the last one alone. Every
/// score is its own dot product, so the order of the loops changes no result.
AT_FN void AT_NAME(ck_attn_scores_gqa)(int kv_type, const float *q, int64_t qs, int64_t g, int64_t d, const void *k_base,
                                     size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale,
                                     float *s, int64_t ss) {
    if (kv_type == CK_BF16) {
        attn_scores_bf16(q, qs, g, d, k_base, slot_bytes, table, bs, n, scale, s, ss);
        return;
    }
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
    if (kv_type == CK_BF16) {
        attn_values_bf16(w, ws, g, d, v_base, slot_bytes, table, bs, n, out, os);
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
