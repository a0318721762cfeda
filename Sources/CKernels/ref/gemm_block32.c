// Scalar twin of the 32-element-block prefill GEMM (x86/block32_gemm_tiles.h): every (weight row, activation row)
// pair through the reference q4_0 / q5_0 / iq4_nl / q8_0 · q8_0 dot products (ref/quants.c, ref/lowbit_k.c).
#include "ckernels.h"
#include "../internal.h"

void ck_gemm_block32_ref(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                         const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    float (*dot)(int64_t, const void *, const void *) =
        type == CK_Q4_0 ? ck_dot_q4_0_q8_0_ref : type == CK_Q5_0 ? ck_dot_q5_0_q8_0_ref
        : type == CK_IQ4_NL ? ck_dot_iq4_nl_q8_0_ref : type == CK_Q8_0 ? ck_dot_q8_0_q8_0_ref : 0;
    if (!dot) return;
    for (int64_t r = r0; r < r1; r++) {
        const char *wr = (const char *)w + (size_t)r * wrb;
        for (int64_t c = 0; c < ncols; c++) y[c * ys + r] = dot(n, wr, (const char *)x + (size_t)c * xrb);
    }
}
