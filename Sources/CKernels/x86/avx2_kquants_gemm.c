// AVX2 build of the K-quant prefill GEMM (x86/kquants_gemm_tiles.h): maddubs pairs summed in int16, scaled with madd.
#define KG_NAME(f) f##_avx2
#define KG_FN __attribute__((target("avx2,fma,f16c")))
#define KG_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#include "kquants_gemm_tiles.h"
