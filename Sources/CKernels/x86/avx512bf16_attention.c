// The grouped-query attention kernels (x86/attention_tiles.h) built for AVX512-VL with AVX512-BF16: the AVX512 build
// with a bf16 KV cache's products done by VDPBF16PS (two pairs' products per float lane per instruction, twice the
// FMA build's rate); f16 and f32 caches as the AVX512 build. The same bits as the other builds. Selected with the
// AVX512-VNNI kernel set when the CPU has AVX512-BF16 (dispatch.c).
#include "ckernels.h"
#include "../internal.h"

#define AT_NAME(f) f##_avx512bf16
#define AT_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))
#define AT_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))
#define AT_WIDE 1
#define AT_BF16 1
#include "attention_tiles.h"
