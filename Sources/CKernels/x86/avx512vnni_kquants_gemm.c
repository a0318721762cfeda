// AVX512-VNNI build of the K-quant prefill GEMM (x86/kquants_gemm_tiles.h): the EVEX 256-bit vpdpbusd (AVX512-VL;
// Zen 4 and Ice Lake have no VEX form), which also frees registers 16–31. Selected at run time with the other
// AVX512-VNNI kernels (dispatch.c); same results as the AVX2 build. Scratch harness, one thread, a 2,048 × 2,048
// matrix, Zen 4 (BENCHMARKS.md, "2026-12-06 19:30–19:35"): q4_K 1.11–1.18×, q5_K 1.17–1.30×, q6_K 1.19–1.29×, q2_K
// 1.06–1.14× the AVX2 build's GMAC/s at 4–64 tokens.
#define KG_NAME(f) f##_avx512vnni
#define KG_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KG_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KG_DPBUSD _mm256_dpbusd_epi32
#include "kquants_gemm_tiles.h"
