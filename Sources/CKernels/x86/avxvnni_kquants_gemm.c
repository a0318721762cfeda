// AVX-VNNI build of the K-quant prefill GEMM (x86/kquants_gemm_tiles.h): the VEX vpdpbusd (Alder Lake, Sapphire
// Rapids). Selected at run time with the other AVX-VNNI kernels (dispatch.c); same results as the AVX2 build.
#define KG_NAME(f) f##_avxvnni
#define KG_FN __attribute__((target("avx2,fma,f16c,avxvnni")))
#define KG_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avxvnni")))
#define KG_DPBUSD _mm256_dpbusd_avx_epi32
#include "kquants_gemm_tiles.h"
