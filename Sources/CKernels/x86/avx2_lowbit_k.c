// AVX2 kernels of the low-bit K-quants (q2_K, q3_K with q8_K activations) and the non-linear 4-bit types
// (iq4_nl with q8_0, iq4_xs with q8_K). Chosen at run time by dispatch.c; the scalar twins are in ref/lowbit_k.c.
//
// As in avx2_kquants.c: the 2-bit values are unsigned bytes for maddubs against the signed activations, the
// sub-block scales are applied by an int16 madd (exact int32 sums until one float FMA per super-block), and the
// q2_K mins and the q3_K "-4" offset go through the q8_K bsums. The iq4 levels come from a 16-byte table by
// pshufb and are signed, so their products use the sign trick (|w| · sign(a, w)). Block layouts:
// ggml/src/ggml-common.h; written independently.
#include "ckernels.h"
#include "../internal.h"
#include <string.h>

#if defined(__x86_64__)
#include "avx2_common.h"

/// Decode prefetch distances (bytes ahead, into L1 and L2), as in avx2_kquants.c: rows of a range are contiguous.
enum { LB_PREFETCH = 1024, LB_PREFETCH_L2 = 4096 };

CK_INLINE void lb_prefetch(const void *p, int lines) {
    for (int l = 0; l < lines; l++) {
        _mm_prefetch((const char *)p + LB_PREFETCH + 64 * l, _MM_HINT_T0);
        _mm_prefetch((const char *)p + LB_PREFETCH_L2 + 64 * l, _MM_HINT_T1);
    }
}

/// Shuffle controls: for int16 scales s[0..7] in both lanes, ctl k puts s[2k] over the low lane and s[2k+1]
/// over the high lane (the scales of the two 16-element sub-blocks of a 32-element group).
CK_INLINE __m256i lb_scale_ctl(int k) {
    const char a = (char)(4 * k), b = (char)(4 * k + 1), c = (char)(4 * k + 2), d = (char)(4 * k + 3);
    return _mm256_setr_epi8(a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b, c, d, c, d, c, d, c, d, c, d, c, d, c, d, c, d);
}

/// Σ over the 8 groups of 32 of sc[k]·Σ q·a for unsigned values q (0...7) given per group by `vals`, with int16
/// scales s16 (16 sub-blocks, bsums order); the int32 lane sums.
#define LB_GROUPS(VALS)                                                                                           \
    __m256i sumi = _mm256_setzero_si256();                                                                        \
    for (int h = 0; h < 2; h++) {                                                                                 \
        const __m256i sh = _mm256_broadcastsi128_si256(h ? _mm256_extracti128_si256(s16, 1) : _mm256_castsi256_si128(s16)); \
        for (int g = 0; g < 4; g++) {                                                                             \
            const __m256i q = VALS;                                                                               \
            const __m256i av = _mm256_loadu_si256((const __m256i *)(y[b].qs + 128 * h + 32 * g));                 \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, av), _mm256_shuffle_epi8(sh, ctl[g]))); \
        }                                                                                                         \
    }

CK_AVX2 float ck_dot_q2_K_q8_K_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q2_K *x = vx; const ck_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m256i ctl[4] = {lb_scale_ctl(0), lb_scale_ctl(1), lb_scale_ctl(2), lb_scale_ctl(3)};
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        lb_prefetch(&x[b], 2);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[b].scales);
        const __m256i s16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
        const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i q1 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32));
        LB_GROUPS(_mm256_and_si256(_mm256_srli_epi16(h ? q1 : q0, 2 * g), m3))
        const __m256i summ = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), mn16);
        const float dy = y[b].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * ck_h2f(x[b].d)), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(dy * ck_h2f(x[b].dmin)), _mm256_cvtepi32_ps(summ), acc);
    }
    return ck_hsum_ps(acc);
}

CK_AVX2 float ck_dot_q3_K_q8_K_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q3_K *x = vx; const ck_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i ctl[4] = {lb_scale_ctl(0), lb_scale_ctl(1), lb_scale_ctl(2), lb_scale_ctl(3)};
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        lb_prefetch(&x[b], 2);
        // The sixteen 6-bit scales minus 32, as int16 (layout: ck_q3_K_scale).
        uint32_t a[3];
        memcpy(a, x[b].scales, 12);
        const uint32_t k4 = 0x0f0f0f0fu, k2 = 0x03030303u;
        uint32_t s[4] = {
            (a[0] & k4) | ((a[2] & k2) << 4), (a[1] & k4) | (((a[2] >> 2) & k2) << 4),
            ((a[0] >> 4) & k4) | (((a[2] >> 4) & k2) << 4), ((a[1] >> 4) & k4) | (((a[2] >> 6) & k2) << 4),
        };
        const __m256i s16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)s)), _mm256_set1_epi16(32));
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i q1 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[b].hmask);
        // Unsigned 3-bit values q + 4·hbit (0...7); the true value is that minus 4.
        LB_GROUPS(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(h ? q1 : q0, 2 * g), m3),
                                  _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + g), one), 2)))
        // Σ s·(v − 4)·a = Σ s·v·a − 4·Σ_k s[k]·bsums[k].
        const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), s16);
        const __m256i t = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[b].d * ck_h2f(x[b].d)), _mm256_cvtepi32_ps(t), acc);
    }
    return ck_hsum_ps(acc);
}

/// The signed iq4 levels of 32 nibbles: byte i of `lo` / `hi` already holds nibble index i of the two halves.
CK_INLINE __m256i lb_iq4_lookup(__m256i idx) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)ck_iq4nl_values));
    return _mm256_shuffle_epi8(table, idx);
}

/// Pair sums (int16) of w·a for signed bytes w (never −128) and a.
CK_INLINE __m256i lb_mul_s8(__m256i w, __m256i a) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

/// Σ over one iq4_nl block of w·a as eight int32 partial sums (lanes 0...3: elements 0...15 of the pair sums, 4...7: 16...31).
CK_INLINE __m256i lb_iq4_nl_block(const ck_block_iq4_nl *x, const ck_block_q8_0 *y) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m128i q = _mm_loadu_si128((const __m128i *)x->qs);
    const __m256i idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
    return _mm256_madd_epi16(lb_mul_s8(lb_iq4_lookup(idx), _mm256_loadu_si256((const __m256i *)y->qs)), _mm256_set1_epi16(1));
}

CK_AVX2 float ck_dot_iq4_nl_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_iq4_nl *x = vx; const ck_block_q8_0 *y = vy;
    const int64_t nb = n / CK_QK;
    __m256 acc = _mm256_setzero_ps();
    int64_t b = 0;
    // Four blocks per step (ck_acc_blocks4: one fp16 conversion per operand and one FMA per four blocks, where a
    // block at a time spent two scalar conversions, a broadcast and an FMA on each).
    for (; b + 4 <= nb; b += 4) {
        lb_prefetch(&x[b], 2);
        acc = ck_acc_blocks4(acc, lb_iq4_nl_block(&x[b], &y[b]), lb_iq4_nl_block(&x[b + 1], &y[b + 1]),
                             lb_iq4_nl_block(&x[b + 2], &y[b + 2]), lb_iq4_nl_block(&x[b + 3], &y[b + 3]),
                             x[b].d, x[b + 1].d, x[b + 2].d, x[b + 3].d, y[b].d, y[b + 1].d, y[b + 2].d, y[b + 3].d);
    }
    for (; b < nb; b++)
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), _mm256_cvtepi32_ps(lb_iq4_nl_block(&x[b], &y[b])), acc);
    return ck_hsum_ps(acc);
}

CK_AVX2 float ck_dot_iq4_xs_q8_K_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_iq4_xs *x = vx; const ck_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        lb_prefetch(&x[b], 3);
        __m256i sumi = _mm256_setzero_si256();
        const uint32_t sl = (uint32_t)x[b].scales_l[0] | (uint32_t)x[b].scales_l[1] << 8 |
                            (uint32_t)x[b].scales_l[2] << 16 | (uint32_t)x[b].scales_l[3] << 24;
        const uint32_t shi = x[b].scales_h;
        for (int p = 0; p < 4; p++) {
            // Sub-blocks 2p (bytes 0...15) and 2p+1 (bytes 16...31): low nibbles are elements 0...15, high 16...31.
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * p));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i w0 = lb_iq4_lookup(_mm256_permute2x128_si256(lo, hi, 0x20));
            const __m256i w1 = lb_iq4_lookup(_mm256_permute2x128_si256(lo, hi, 0x31));
            const int j0 = 2 * p, j1 = 2 * p + 1;
            const int ls0 = (int)(((sl >> (4 * j0)) & 15) | (((shi >> (2 * j0)) & 3) << 4)) - 32;
            const int ls1 = (int)(((sl >> (4 * j1)) & 15) | (((shi >> (2 * j1)) & 3) << 4)) - 32;
            const __m256i p0 = lb_mul_s8(w0, _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * p)));
            const __m256i p1 = lb_mul_s8(w1, _mm256_loadu_si256((const __m256i *)(y[b].qs + 64 * p + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16((short)ls0)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16((short)ls1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[b].d * ck_h2f(x[b].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return ck_hsum_ps(acc);
}

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
float ck_dot_q2_K_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q2_K_q8_K_ref(n, x, y); }
float ck_dot_q3_K_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q3_K_q8_K_ref(n, x, y); }
float ck_dot_iq4_nl_q8_0_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq4_nl_q8_0_ref(n, x, y); }
float ck_dot_iq4_xs_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq4_xs_q8_K_ref(n, x, y); }
#endif
