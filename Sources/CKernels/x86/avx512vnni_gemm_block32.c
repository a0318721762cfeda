// AVX512-VNNI build of the 32-element-block prefill GEMM (x86/block32_gemm_tiles.h): the EVEX 256-bit vpdpbusd
// (AVX512-VL; Zen 4 and Ice Lake have no VEX form) on every type in offset form. Selected at run time with the other
// AVX512-VNNI kernels (dispatch.c); same results as the AVX2 build.
#define B32_NAME(f) f##_avx512vnni
#define B32_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define B32_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define B32_DPBUSD _mm256_dpbusd_epi32
#include "block32_gemm_tiles.h"
