// Helpers shared by the AVX2 translation units (x86-64 only; not part of the public module).
#ifndef SPUTNIK_CKERNELS_AVX2_COMMON_H
#define SPUTNIK_CKERNELS_AVX2_COMMON_H
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

/// A function compiled for AVX2 + FMA + F16C (selected at run time by CPUID, see dispatch.c).
#define CK_AVX2 __attribute__((target("avx2,fma,f16c")))
/// An always-inlined helper compiled for the same features.
#define CK_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/// Sum of the 8 lanes.
CK_INLINE float ck_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// IEEE binary16 → float (F16C).
CK_INLINE float ck_h2f(uint16_t h) { return _cvtsh_ss(h); }

/// acc + the four blocks' dot products, for blocks of 32 whose exact int32 partial sums are p0...p3 (eight lanes
/// each), weight scales dw0...dw3 and activation scales dx0...dx3 (fp16 bits): two hadds fold the sums into one
/// vector (lanes k and k + 4: block k) and one FMA applies the four d_w·d_x at once. Used by the four-blocks-per-
/// step q5_0 and iq4_nl dot products (each with its one-block form for the tail).
CK_INLINE __m256 ck_acc_blocks4(__m256 acc, __m256i p0, __m256i p1, __m256i p2, __m256i p3, uint16_t dw0, uint16_t dw1,
                                uint16_t dw2, uint16_t dw3, uint16_t dx0, uint16_t dx1, uint16_t dx2, uint16_t dx3) {
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16((short)dw0, (short)dw1, (short)dw2, (short)dw3, 0, 0, 0, 0));
    const __m128 dx = _mm_cvtph_ps(_mm_setr_epi16((short)dx0, (short)dx1, (short)dx2, (short)dx3, 0, 0, 0, 0));
    const __m128 d = _mm_mul_ps(dw, dx);
    return _mm256_fmadd_ps(_mm256_set_m128(d, d), _mm256_cvtepi32_ps(s), acc);
}

/// Stores the results of a GEMM tile's groups: acc[g][i] holds weight row r + i for tokens t0 + 4g + k in lanes k
/// and k + 4 (partial sums, added here); tokens past ncols are not stored. y[t * y_stride + row].
CK_INLINE void ck_tile_store(__m256 (*acc)[2], int64_t ng, int mr, int64_t t0, int64_t ncols, int64_t r, float *y,
                             int64_t y_stride) {
    for (int64_t g = 0; g < ng; g++)
        for (int i = 0; i < mr; i++) {
            __attribute__((aligned(32))) float v[8];
            _mm256_store_ps(v, acc[g][i]);
            for (int c = 0; c < 4; c++) {
                const int64_t t = t0 + 4 * g + c;
                if (t < ncols) y[t * y_stride + r + i] = v[c] + v[c + 4];
            }
        }
}

/// The four activation rows of group g of a GEMM tile that starts at row t0 (rows x_row_bytes apart): rows
/// t0 + 4g ... t0 + 4g + 3, those past ncols aliasing the last real one (their results are never stored).
CK_INLINE void ck_tile_group_rows(const uint8_t *x, size_t x_row_bytes, int64_t t0, int64_t g, int64_t ncols,
                                  const uint8_t **rows) {
    for (int c = 0; c < 4; c++) {
        int64_t t = t0 + 4 * g + c;
        if (t >= ncols) t = ncols - 1;
        rows[c] = x + (size_t)t * x_row_bytes;
    }
}

#endif
#endif
