// AVX-VNNI GEMMs over q4_1 and q8_0 weights repacked in groups of 8 rows with 4-byte interleaving: the tiles of
// gemm_x8_tiles.h with vpdpbusd byte dot products (VEX-encoded, 256-bit: Intel Alder Lake / Sapphire Rapids on,
// AMD Zen 5), tiles of 8 rows × up to 8 tokens for both formats. Selected at run time over the AVX2 pair
// (dispatch.c) when CPUID reports AVX-VNNI; results are bit-identical to the AVX2 pair's and to the scalar twins'
// integer sums (ref/gemm_x8.c).
//
// Measured (one thread, this project's Xeon host, 2026-12-06; scratch harness against the AVX2 pair in the same
// process): q4_1 1536 × 576 and 576 × 1536 at 8 and 16 tokens 85–86 → 108–110 GMAC/s; q8_0 49152 × 576 (SmolLM2's
// tied LM head) at 8 tokens 45 → 66 GMAC/s; one token unchanged (memory-bound).
#include "ckernels.h"
#include "../internal.h"

#define CK_X8_NAME(f) f##_avxvnni
#define CK_X8_FN __attribute__((target("avx2,fma,f16c,avxvnni")))
#define CK_X8_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avxvnni")))
#define CK_X8_DPBUSD _mm256_dpbusd_avx_epi32
#define CK_X8_Q8_TOKENS 8
#include "gemm_x8_tiles.h"
