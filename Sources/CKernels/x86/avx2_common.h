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

#endif
#endif
