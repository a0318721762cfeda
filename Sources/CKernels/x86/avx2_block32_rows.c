// AVX2 matmul of weights in 32-element blocks with one fp16 scale (q4_0, q5_0, q8_0, iq4_nl), read in place in their
// GGUF layout, against a few q8_0 activation rows: decode steps and the few tokens each expert gets in a batched MoE
// step. Many activation rows take the tiled GEMM (block32_gemm_tiles.h). The scalar twin is ck_matmul_rows_ref over
// the ck_dot_*_ref dot products (ref/).
//
// At one to three activation rows these kernels are bound by instruction count, not by memory, and in a per-row
// dot product about half the instructions went to the scales, not to the 32 products of a block (llvm-mca's Zen 3
// model of the iq4_nl dot: ~16 cycles per four blocks, bounded by six two-uop vpinsrw gathering fp16 scales and three
// vphaddd folding the sums). Here:
//   - the activation rows' block scales are converted to float once per call (and, for q4_0 / q5_0, the offset term
//     o·d_x·Σx per block, o = 8 / 16), not once per weight row;
//   - four weight scales are gathered with integer loads and shifts (the integer ports are otherwise idle) and
//     converted with one vcvtph2ps;
//   - each block's exact int32 sums are scaled by one FMA with a broadcast d_w·d_x, with no horizontal adds;
//   - q4_0 / q5_0 weights stay unsigned (0...15 / 0...31) and meet the signed activations in maddubs directly:
//     Σ (u − o)·x = Σ u·x − o·Σ x, the second sum applied per four blocks in float; q8_0 / iq4_nl are signed and take
//     maddubs(|w|, sign(x, w)) (w ≠ −128 for iq4_nl; q8_0's −128 still gives |w|·sign(x, w) = w·x as a byte 128).
// Results equal the reference up to float rounding of the per-block terms, and an activation row's results do not
// depend on which other rows share its pass. The kernel is in block32_rows_tiles.h, built here for AVX2 and in
// avx512vnni_rows.c for AVX512-VNNI (same bits). Layouts: ggml/src/ggml-common.h; written independently.
#include "ckernels.h"
#include "../internal.h"
#include <string.h>

#if defined(__x86_64__)
#include "avx2_common.h"

#define B32R_NAME(f) f##_avx2
#define B32R_FN CK_AVX2
#define B32R_INLINE CK_INLINE
#include "block32_rows_tiles.h"

#else  // not x86-64: the dispatcher never selects this; keep the symbol so the module links.
void ck_matmul_block32_rows_avx2(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                 const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    ck_matmul_rows_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
}
#endif
