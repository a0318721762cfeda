// AVX2 GEMMs over q4_1 and q8_0 weights repacked in groups of 8 rows with 4-byte interleaving: the tiles of
// gemm_x8_tiles.h with maddubs byte dot products, tiles of 8 rows × up to 8 (q4_1) or 4 (q8_0) tokens (layouts:
// include/ckernels.h; repacks and scalar twins: ref/gemm_x8.c). The row-contiguous layout before the interleaving
// needed three to six hadds per token and block.
//
// Each (row, token) output is computed with the same float operations in the same order whatever the tile width,
// so a token's result does not depend on how many others share its batch (greedy outputs are batch-invariant).
#include "ckernels.h"
#include "../internal.h"

#define CK_X8_NAME(f) f##_avx2
#define CK_X8_FN __attribute__((target("avx2,fma,f16c")))
#define CK_X8_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#define CK_X8_Q8_TOKENS 4
#include "gemm_x8_tiles.h"
