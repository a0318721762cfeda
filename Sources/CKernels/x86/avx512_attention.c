// The grouped-query attention kernels (x86/attention_tiles.h) built for AVX512-VL: 32 vector registers, so more query
// heads per pass over the K / V rows; the same bits as the AVX2 build. Selected with the AVX512-VNNI kernel set
// (dispatch.c).
#include "ckernels.h"
#include "../internal.h"

#define AT_NAME(f) f##_avx512
#define AT_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define AT_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define AT_WIDE 1
#include "attention_tiles.h"

