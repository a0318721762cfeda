// AVX512-VNNI builds of the few-row matmul kernels (decode, an expert's few tokens in a batched MoE step): the K-quant
// row kernels (kquants_rows_tiles.h) with vpdpwssd for each sub-block's scale multiply-add, and the 32-element-block
// kernel (block32_rows_tiles.h) with one vpdpbusd per block and q5_0's fifth bits added under a byte mask. The EVEX
// 256-bit forms (AVX512-VL; Zen 4 and Ice Lake have no VEX AVX-VNNI). Selected at run time with the other AVX512-VNNI
// kernels (dispatch.c, ck_matmul_rows_avx512vnni in avx2.c); the same bits as the AVX2 builds.
#include "ckernels.h"
#include "../internal.h"
#include <string.h>

#if defined(__x86_64__)
#include "avx2_common.h"

#define CK_VNNI_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"

#define KR_NAME(f) f##_avx512vnni
#define KR_FN __attribute__((target(CK_VNNI_TARGET)))
#define KR_INLINE static inline __attribute__((always_inline, target(CK_VNNI_TARGET)))
#define KR_MADD_ADD(s, p, k) _mm256_dpwssd_epi32((s), (p), (k))
#define KR_SHUFFLE_SCALES 1
#include "kquants_rows_tiles.h"

#define B32R_NAME(f) f##_avx512vnni
#define B32R_FN __attribute__((target(CK_VNNI_TARGET)))
#define B32R_INLINE static inline __attribute__((always_inline, target(CK_VNNI_TARGET)))
#define B32R_VNNI 1
#include "block32_rows_tiles.h"

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
void ck_matmul_kquant_avx512vnni(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                 const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    ck_matmul_rows_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
}
void ck_matmul_block32_rows_avx512vnni(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                       const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    ck_matmul_rows_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
}
#endif
