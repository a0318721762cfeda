// Scalar twin of the K-quant prefill GEMM (x86/kquants_gemm_tiles.h): every (weight row, activation row) pair
// through the reference q2_K / q4_K / q5_K / q6_K · q8_K dot products (ref/lowbit_k.c, ref/kquants.c).
#include "ckernels.h"
#include "../internal.h"

void ck_gemm_kquant_ref(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    float (*dot)(int64_t, const void *, const void *) =
        type == CK_Q2_K ? ck_dot_q2_K_q8_K_ref : type == CK_Q4_K ? ck_dot_q4_K_q8_K_ref
        : type == CK_Q5_K ? ck_dot_q5_K_q8_K_ref : ck_dot_q6_K_q8_K_ref;
    if (type != CK_Q2_K && type != CK_Q4_K && type != CK_Q5_K && type != CK_Q6_K) return;
    for (int64_t r = r0; r < r1; r++) {
        const char *wr = (const char *)w + (size_t)r * wrb;
        for (int64_t c = 0; c < ncols; c++) y[c * ys + r] = dot(n, wr, (const char *)x + (size_t)c * xrb);
    }
}
