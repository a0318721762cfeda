// AVX2 build of the 32-element-block prefill GEMM (x86/block32_gemm_tiles.h): maddubs with the sign trick for q8_0 /
// iq4_nl, unsigned values with an int16 sum for q4_0 / q5_0.
#define B32_NAME(f) f##_avx2
#define B32_FN __attribute__((target("avx2,fma,f16c")))
#define B32_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#include "block32_gemm_tiles.h"
