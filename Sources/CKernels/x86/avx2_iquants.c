// AVX2 kernels of the i-quant formats (x86-64): IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M weights
// times q8_K activations. Chosen at run time by dispatch.c; the scalar twins are ck_dot_iq*_q8_K_ref
// (ref/iquants.c), which also documents the w = d · ls · F · v form used here.
//
// Each group of 32 weights becomes one vector of unsigned magnitudes (4 uint64 or 8 uint32 grid rows gathered by
// scalar index) and one vector of ±1 signs; the signs are moved onto the activations (sign_epi8), so one
// maddubs + one madd with the two 16-value scales gives exact int32 sums; one float FMA per super-block.
// iq1_*: v = 8·grid ± 1 (the ±0.125 delta times 8), built with sign_epi8 and an add. Block layouts:
// include/ck_iquants.h (ggml-common.h); written independently.
#include "ckernels.h"
#include "ck_iquants.h"
#include "../internal.h"
#include <string.h>

#if defined(__x86_64__)
#include "avx2_common.h"

/// Decode prefetch distance in bytes ahead of the super-block being read (as KQ_PREFETCH in avx2_kquants.c).
#ifndef IQ_PREFETCH
#define IQ_PREFETCH 1024
#endif

static inline uint32_t iq_load32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t iq_load16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/// 32 bytes of ±1: byte p is -1 when bit p % 8 of byte p / 8 of `s` (four sign bytes, first lowest) is set.
CK_INLINE __m256i iq_signs32(uint32_t s) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)s), shuf);
    return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(b, bits), bits), _mm256_set1_epi8(1));
}

/// Four 7-bit sign indices (bits 0, 7, 14, 21 of b) as four sign bytes through ck_iq_ksigns.
static inline uint32_t iq_ksigns4(uint32_t b) {
    return (uint32_t)ck_iq_ksigns[b & 127] | (uint32_t)ck_iq_ksigns[(b >> 7) & 127] << 8 |
           (uint32_t)ck_iq_ksigns[(b >> 14) & 127] << 16 | (uint32_t)ck_iq_ksigns[(b >> 21) & 127] << 24;
}

/// 8 int8 of ±1 (bytes of a uint64): -1 when `neg`.
static inline long long iq_pm1(int neg) { return neg ? -1LL : 0x0101010101010101LL; }

/// v = 8·g ± 1 for a vector g of int8 {-1, 0, 1} and a vector of ±1.
CK_INLINE __m256i iq1_values(__m256i g, __m256i delta) {
    return _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), g), delta);
}

/// dot(row x of `type`, q8_K row y) over n elements; always inlined with a constant type.
CK_INLINE float iq_dot_avx2(int type, int64_t n, const uint8_t *x, const ck_block_q8_K *y) {
    const size_t bytes = type == CK_IQ2_XXS ? sizeof(ck_block_iq2_xxs) : type == CK_IQ2_XS ? sizeof(ck_block_iq2_xs)
                       : type == CK_IQ2_S ? sizeof(ck_block_iq2_s) : type == CK_IQ3_XXS ? sizeof(ck_block_iq3_xxs)
                       : type == CK_IQ3_S ? sizeof(ck_block_iq3_s) : type == CK_IQ1_S ? sizeof(ck_block_iq1_s)
                       : sizeof(ck_block_iq1_m);
    const float f = type == CK_IQ3_S ? 1.0f : type == CK_IQ3_XXS ? 0.25f : 0.125f;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / CK_QK_K; b++) {
        const uint8_t *blk = x + (size_t)b * bytes;
        _mm_prefetch((const char *)blk + IQ_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + IQ_PREFETCH + 64, _MM_HINT_T0);
        const int8_t *q8 = y[b].qs;
        float d;
        __m256i sumi = _mm256_setzero_si256();
#pragma clang loop unroll(disable)
        for (int g = 0; g < 8; g++) {
            __m256i mag, sg;   // unsigned magnitudes, ±1 signs
            int lo, hi;        // scales of values 0-15 and 16-31 of the group
            switch (type) {
            case CK_IQ2_XXS: {
                const uint32_t a = iq_load32(blk + 2 + 8 * g), s = iq_load32(blk + 6 + 8 * g);
                mag = _mm256_set_epi64x((long long)ck_iq2xxs_grid[a >> 24], (long long)ck_iq2xxs_grid[(a >> 16) & 255],
                                        (long long)ck_iq2xxs_grid[(a >> 8) & 255], (long long)ck_iq2xxs_grid[a & 255]);
                sg = iq_signs32(iq_ksigns4(s));
                lo = hi = 2 * (int)(s >> 28) + 1;
                break;
            }
            case CK_IQ2_XS: {
                const uint8_t *qs = blk + 2 + 8 * g;
                const uint16_t q0 = iq_load16(qs), q1 = iq_load16(qs + 2), q2 = iq_load16(qs + 4), q3 = iq_load16(qs + 6);
                mag = _mm256_set_epi64x((long long)ck_iq2xs_grid[q3 & 511], (long long)ck_iq2xs_grid[q2 & 511],
                                        (long long)ck_iq2xs_grid[q1 & 511], (long long)ck_iq2xs_grid[q0 & 511]);
                sg = iq_signs32((uint32_t)ck_iq_ksigns[q0 >> 9] | (uint32_t)ck_iq_ksigns[q1 >> 9] << 8 |
                                (uint32_t)ck_iq_ksigns[q2 >> 9] << 16 | (uint32_t)ck_iq_ksigns[q3 >> 9] << 24);
                const int sc = blk[66 + g];
                lo = 2 * (sc & 15) + 1;
                hi = 2 * (sc >> 4) + 1;
                break;
            }
            case CK_IQ2_S: {
                const ck_block_iq2_s *xb = (const ck_block_iq2_s *)blk;
                const uint8_t *qs = xb->qs + 4 * g;
                const int h = xb->qh[g];
                mag = _mm256_set_epi64x((long long)ck_iq2s_grid[qs[3] | ((h << 2) & 0x300)],
                                        (long long)ck_iq2s_grid[qs[2] | ((h << 4) & 0x300)],
                                        (long long)ck_iq2s_grid[qs[1] | ((h << 6) & 0x300)],
                                        (long long)ck_iq2s_grid[qs[0] | ((h << 8) & 0x300)]);
                sg = iq_signs32(iq_load32(xb->qs + 32 + 4 * g));
                const int sc = xb->scales[g];
                lo = 2 * (sc & 15) + 1;
                hi = 2 * (sc >> 4) + 1;
                break;
            }
            case CK_IQ3_XXS: {
                const uint8_t *qs = blk + 2 + 8 * g;
                const uint32_t s = iq_load32(blk + 66 + 4 * g);
                mag = _mm256_set_epi32((int)ck_iq3xxs_grid[qs[7]], (int)ck_iq3xxs_grid[qs[6]], (int)ck_iq3xxs_grid[qs[5]],
                                       (int)ck_iq3xxs_grid[qs[4]], (int)ck_iq3xxs_grid[qs[3]], (int)ck_iq3xxs_grid[qs[2]],
                                       (int)ck_iq3xxs_grid[qs[1]], (int)ck_iq3xxs_grid[qs[0]]);
                sg = iq_signs32(iq_ksigns4(s));
                lo = hi = 2 * (int)(s >> 28) + 1;
                break;
            }
            case CK_IQ3_S: {
                const ck_block_iq3_s *xb = (const ck_block_iq3_s *)blk;
                const uint8_t *qs = xb->qs + 8 * g;
                const int h = xb->qh[g];
                mag = _mm256_set_epi32((int)ck_iq3s_grid[qs[7] | ((h << 1) & 256)], (int)ck_iq3s_grid[qs[6] | ((h << 2) & 256)],
                                       (int)ck_iq3s_grid[qs[5] | ((h << 3) & 256)], (int)ck_iq3s_grid[qs[4] | ((h << 4) & 256)],
                                       (int)ck_iq3s_grid[qs[3] | ((h << 5) & 256)], (int)ck_iq3s_grid[qs[2] | ((h << 6) & 256)],
                                       (int)ck_iq3s_grid[qs[1] | ((h << 7) & 256)], (int)ck_iq3s_grid[qs[0] | ((h << 8) & 256)]);
                sg = iq_signs32(iq_load32(xb->signs + 4 * g));
                lo = hi = 2 * ((xb->scales[g / 2] >> (4 * (g % 2))) & 15) + 1;
                break;
            }
            case CK_IQ1_S: {
                const uint8_t *qs = blk + 2 + 4 * g;
                const int h = iq_load16(blk + 34 + 2 * g);
                const __m256i gr = _mm256_set_epi64x((long long)ck_iq1s_grid[qs[3] | ((h >> 1) & 0x700)],
                                                     (long long)ck_iq1s_grid[qs[2] | ((h << 2) & 0x700)],
                                                     (long long)ck_iq1s_grid[qs[1] | ((h << 5) & 0x700)],
                                                     (long long)ck_iq1s_grid[qs[0] | ((h << 8) & 0x700)]);
                sg = iq1_values(gr, _mm256_set1_epi8(h & 0x8000 ? -1 : 1));
                mag = _mm256_abs_epi8(sg);
                lo = hi = 2 * ((h >> 12) & 7) + 1;
                break;
            }
            default: {   // CK_IQ1_M
                const ck_block_iq1_m *xb = (const ck_block_iq1_m *)blk;
                const uint8_t *qs = xb->qs + 4 * g;
                const int h0 = xb->qh[2 * g], h1 = xb->qh[2 * g + 1];
                const __m256i gr = _mm256_set_epi64x((long long)ck_iq1s_grid[qs[3] | ((h1 << 4) & 0x700)],
                                                     (long long)ck_iq1s_grid[qs[2] | ((h1 << 8) & 0x700)],
                                                     (long long)ck_iq1s_grid[qs[1] | ((h0 << 4) & 0x700)],
                                                     (long long)ck_iq1s_grid[qs[0] | ((h0 << 8) & 0x700)]);
                const __m256i delta = _mm256_set_epi64x(iq_pm1(h1 & 0x80), iq_pm1(h1 & 0x08), iq_pm1(h0 & 0x80), iq_pm1(h0 & 0x08));
                sg = iq1_values(gr, delta);
                mag = _mm256_abs_epi8(sg);
                const int sc = iq_load16(xb->scales + 2 * (g / 2)) >> (6 * (g % 2));
                lo = 2 * (sc & 7) + 1;
                hi = 2 * ((sc >> 3) & 7) + 1;
                break;
            }
            }
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(q8 + 32 * g));
            const __m256i p = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(qv, sg));
            const __m256i s = _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
        }
        if (type == CK_IQ1_M) d = ck_h2f(ck_iq1_m_d((const ck_block_iq1_m *)blk));
        else d = ck_h2f(iq_load16(blk));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * y[b].d * f), _mm256_cvtepi32_ps(sumi), acc);
    }
    return ck_hsum_ps(acc);
}

CK_AVX2 float ck_dot_iq2_xxs_q8_K_avx2(int64_t n, const void *x, const void *y) { return iq_dot_avx2(CK_IQ2_XXS, n, x, y); }
CK_AVX2 float ck_dot_iq2_xs_q8_K_avx2(int64_t n, const void *x, const void *y) { return iq_dot_avx2(CK_IQ2_XS, n, x, y); }
CK_AVX2 float ck_dot_iq2_s_q8_K_avx2(int64_t n, const void *x, const void *y) { return iq_dot_avx2(CK_IQ2_S, n, x, y); }
CK_AVX2 float ck_dot_iq3_xxs_q8_K_avx2(int64_t n, const void *x, const void *y) { return iq_dot_avx2(CK_IQ3_XXS, n, x, y); }
CK_AVX2 float ck_dot_iq3_s_q8_K_avx2(int64_t n, const void *x, const void *y) { return iq_dot_avx2(CK_IQ3_S, n, x, y); }
CK_AVX2 float ck_dot_iq1_s_q8_K_avx2(int64_t n, const void *x, const void *y) { return iq_dot_avx2(CK_IQ1_S, n, x, y); }
CK_AVX2 float ck_dot_iq1_m_q8_K_avx2(int64_t n, const void *x, const void *y) { return iq_dot_avx2(CK_IQ1_M, n, x, y); }

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
float ck_dot_iq2_xxs_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq2_xxs_q8_K_ref(n, x, y); }
float ck_dot_iq2_xs_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq2_xs_q8_K_ref(n, x, y); }
float ck_dot_iq2_s_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq2_s_q8_K_ref(n, x, y); }
float ck_dot_iq3_xxs_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq3_xxs_q8_K_ref(n, x, y); }
float ck_dot_iq3_s_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq3_s_q8_K_ref(n, x, y); }
float ck_dot_iq1_s_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq1_s_q8_K_ref(n, x, y); }
float ck_dot_iq1_m_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_iq1_m_q8_K_ref(n, x, y); }
#endif
