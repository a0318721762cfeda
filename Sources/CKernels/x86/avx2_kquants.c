// AVX2 K-quant kernels (x86-64): q4_K, q5_K and q6_K weights times q8_K activations, and the q8_K activation
// quantizer. Chosen at run time by dispatch.c; the scalar twins (ref/) are ck_dot_*_ref,
// ck_matmul_rows_ref and ck_quantize_row_q8_K_ref.
//
// One weight row is multiplied with up to four activation rows at a time: a super-block's nibbles and its
// scales are unpacked once and used for all four (prefill and batched decode re-use every unpacked weight
// four times); decode is the one-row case. Scales are decoded with 32-bit integer operations instead of a
// per-sub-block loop, the q4_K/q5_K mins and the q6_K "-32" offset are applied through the q8_K bsums (one
// madd per super-block), and the sub-block scales are applied in int16 x int16 madd (sums of products stay exact
// in int32). The float steps per super-block are the tiled GEMM's (kquants_gemm_tiles.h, kg_micro8): the exact
// sums split into its two halves (even / odd 16-value groups, and groups 0-7 / 8-15 of the mins term), one fnmadd
// and one fmadd per half into two accumulators, added at the end. So a row's result is the GEMM's bit for bit
// (KQuantGemmTests) whatever the number of tokens in the call: decode is batch-invariant on these types, a prompt's
// logits do not depend on how it is split, and KV written by decode steps equals what a prompt step writes (the
// prefix cache reuses both). Per-lane accumulation with one horizontal sum at the end was 5-13 % faster
// single-threaded, the same at two threads (memory-bound decode). The row kernels are in kquants_rows_tiles.h, built
// here for AVX2 and in avx512vnni_rows.c for AVX512-VNNI (same bits). Block layouts: ggml/src/ggml-common.h; written
// independently.
#include "ckernels.h"
#include "../internal.h"
#include <string.h>

#if defined(__x86_64__)
#include "avx2_common.h"


#define KR_NAME(f) f##_avx2
#define KR_FN CK_AVX2
#define KR_INLINE CK_INLINE
#define KR_MADD_ADD(s, p, k) _mm256_add_epi32((s), _mm256_madd_epi16((p), (k)))
#define KR_SHUFFLE_SCALES 0
#include "kquants_rows_tiles.h"

CK_AVX2 float ck_dot_q4_K_q8_K_avx2(int64_t n, const void *x, const void *y) {
    const ck_block_q8_K *a[1] = {y};
    float out;
    kq_k45_row(x, n / CK_QK_K, a, 1, 0, &out);
    return out;
}

CK_AVX2 float ck_dot_q5_K_q8_K_avx2(int64_t n, const void *x, const void *y) {
    const ck_block_q8_K *a[1] = {y};
    float out;
    kq_k45_row(x, n / CK_QK_K, a, 1, 1, &out);
    return out;
}

CK_AVX2 float ck_dot_q6_K_q8_K_avx2(int64_t n, const void *x, const void *y) {
    const ck_block_q8_K *a[1] = {y};
    float out;
    kq_q6_row(x, n / CK_QK_K, a, 1, &out);
    return out;
}

CK_AVX2 void ck_quantize_row_q8_K_avx2(const float *x, void *vy, int64_t n) {
    ck_block_q8_K *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < n / CK_QK_K; b++, x += CK_QK_K) {
        __m256 vmax = _mm256_setzero_ps();
        for (int j = 0; j < CK_QK_K; j += 8) vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof(y[b]));
            continue;
        }
        // The signed value of the first element of largest magnitude, as the scalar twin picks it.
        float max = 0.0f;
        for (int j = 0; j < CK_QK_K; j++) if (x[j] == amax || x[j] == -amax) { max = x[j]; break; }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int j = 0; j < CK_QK_K; j += 32) {
            // cvtps rounds to nearest even (the default MXCSR mode), like lrintf in the twin; packs saturate at 127.
            const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j)));
            const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8)));
            const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 16)));
            const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 24)));
            const __m256i q = _mm256_permutevar8x32_epi32(
                _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3)), perm);
            _mm256_storeu_si256((__m256i *)(y[b].qs + j), q);
            // bsums of elements j..j+15 and j+16..j+31: pair sums in int32, then horizontal adds.
            const __m256i p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)), ones16);
            const __m256i r = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1)), ones16);
            const __m256i hp = _mm256_hadd_epi32(p, r);          // [p01 p23 r01 r23 | p45 p67 r45 r67]
            const __m256i hh = _mm256_hadd_epi32(hp, hp);        // [p0-3 r0-3 .. | p4-7 r4-7 ..]
            const __m128i lo = _mm256_castsi256_si128(hh), hi = _mm256_extracti128_si256(hh, 1);
            const __m128i tot = _mm_add_epi32(lo, hi);           // [sum p, sum r, ...]
            y[b].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(tot);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(tot, 1);
        }
        y[b].d = 1.0f / iscale;
    }
}

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
float ck_dot_q4_K_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q4_K_q8_K_ref(n, x, y); }
float ck_dot_q5_K_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q5_K_q8_K_ref(n, x, y); }
float ck_dot_q6_K_q8_K_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q6_K_q8_K_ref(n, x, y); }
void ck_matmul_kquant_avx2(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                           const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    ck_matmul_rows_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
}
void ck_quantize_row_q8_K_avx2(const float *x, void *y, int64_t n) { ck_quantize_row_q8_K_ref(x, y, n); }
#endif
