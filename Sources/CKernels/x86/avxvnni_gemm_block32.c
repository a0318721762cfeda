// AVX-VNNI build of the 32-element-block prefill GEMM (x86/block32_gemm_tiles.h): the VEX vpdpbusd on every type in
// offset form (Alder Lake, Sapphire Rapids). Selected at run time with the other AVX-VNNI kernels (dispatch.c); same
// results as the AVX2 build.
#define B32_NAME(f) f##_avxvnni
#define B32_FN __attribute__((target("avx2,fma,f16c,avxvnni")))
#define B32_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avxvnni")))
#define B32_DPBUSD _mm256_dpbusd_avx_epi32
#include "block32_gemm_tiles.h"
