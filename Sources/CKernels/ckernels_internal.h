// Internal declarations shared by the CKernels translation units (not part of the public module).
#ifndef SPUTNIK_CKERNELS_INTERNAL_H
#define SPUTNIK_CKERNELS_INTERNAL_H
#include <stdint.h>
#include <stddef.h>
/// AVX2 matmul over rows [r0, r1) (see ck_matmul_rows); returns 0 when the type has no AVX2 path.
int ck_matmul_rows_avx2(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// AVX2 matmul over rows [r0, r1) of a q4_K, q5_K or q6_K matrix (see ck_matmul_rows), X in q8_K: each weight
/// row against four activation rows at a time (ckernels_kquants_avx2.c).
void ck_matmul_kquant_avx2(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                           const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// Dequantizers of the types added in ckernels_quants.c (q5_0, q5_1, q4_K, q5_K, q6_K, bf16).
void ck_dequantize_row_more(int type, const void *x, float *y, int64_t n);
#endif
