// AVX2 dot products of the 5-bit, K-quant and bf16 formats (x86-64), chosen at run time by dispatch.c;
// each has a scalar `_ref` twin in ref/kquants.c. Integer scheme as in avx2.c: unsigned × signed byte products
// (maddubs) widened to int32 with madd; K-quant sub-block scales are applied in int32 before one float FMA per
// block. Layouts: ggml/src/ggml-common.h. Written independently.
// AVX-512/VNNI variants are not provided (the development machine cannot run them).
#include "ckernels.h"
#include "../internal.h"

#if defined(__x86_64__)
#include "avx2_common.h"


/// Nibbles of 16 bytes as 32 bytes: low nibbles in bytes 0..15, high nibbles in bytes 16..31.
CK_INLINE __m256i nibbles32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

CK_INLINE __m256i madd_u8_i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/// Σ over one q5_0 block of (q − 16)·a as eight int32 partial sums.
CK_INLINE __m256i q5_0_block(const ck_block_q5_0 *x, const ck_block_q8_0 *y) {
    // q - 16 as int8: the nibble with 0xF0 or-ed in where the fifth bit is clear.
    const __m256i hb = _mm256_andnot_si256(ck_bit_bytes(x->qh), _mm256_set1_epi8((char)0xf0));
    const __m256i bx = _mm256_or_si256(nibbles32(x->qs), hb);
    const __m256i by = _mm256_loadu_si256((const __m256i *)y->qs);
    return madd_u8_i8(_mm256_sign_epi8(bx, bx), _mm256_sign_epi8(by, bx));
}

CK_AVX2 float ck_dot_q5_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q5_0 *x = vx; const ck_block_q8_0 *y = vy;
    const int64_t nb = n / CK_QK;
    __m256 acc = _mm256_setzero_ps();
    int64_t b = 0;
    // Four blocks per step (ck_acc_blocks4); the weights are prefetched 1 KiB (L1) and 4 KiB (L2) ahead.
    for (; b + 4 <= nb; b += 4) {
        for (int l = 0; l < 2; l++) {
            _mm_prefetch((const char *)&x[b] + 1024 + 64 * l, _MM_HINT_T0);
            _mm_prefetch((const char *)&x[b] + 4096 + 64 * l, _MM_HINT_T1);
        }
        acc = ck_acc_blocks4(acc, q5_0_block(&x[b], &y[b]), q5_0_block(&x[b + 1], &y[b + 1]),
                             q5_0_block(&x[b + 2], &y[b + 2]), q5_0_block(&x[b + 3], &y[b + 3]),
                             x[b].d, x[b + 1].d, x[b + 2].d, x[b + 3].d, y[b].d, y[b + 1].d, y[b + 2].d, y[b + 3].d);
    }
    for (; b < nb; b++)
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), _mm256_cvtepi32_ps(q5_0_block(&x[b], &y[b])), acc);
    return ck_hsum_ps(acc);
}

CK_AVX2 float ck_dot_q5_1_q8_1_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q5_1 *x = vx; const ck_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        const __m256i hb = _mm256_and_si256(ck_bit_bytes(x[b].qh), _mm256_set1_epi8(0x10));
        const __m256i bx = _mm256_or_si256(nibbles32(x[b].qs), hb);
        const __m256i by = _mm256_loadu_si256((const __m256i *)y[b].qs);
        summ += ck_h2f(x[b].m) * ck_h2f(y[b].s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), _mm256_cvtepi32_ps(madd_u8_i8(bx, by)), acc);
    }
    return ck_hsum_ps(acc) + summ;
}

// The K-quant dot products are in avx2_kquants.c.

CK_AVX2 float ck_dot_bf16_f32_avx2(int64_t n, const uint16_t *x, const float *y) {
    __m256 a0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i))), 16);
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(w), _mm256_loadu_ps(y + i), a0);
    }
    float s = ck_hsum_ps(a0);
    for (; i < n; i++) s += ck_bf16_to_fp32(x[i]) * y[i];
    return s;
}

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
float ck_dot_q5_0_q8_0_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q5_0_q8_0_ref(n, x, y); }
float ck_dot_q5_1_q8_1_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q5_1_q8_1_ref(n, x, y); }
float ck_dot_bf16_f32_avx2(int64_t n, const uint16_t *x, const float *y) { return ck_dot_bf16_f32_ref(n, x, y); }
#endif
