// Row-range matmul drivers shared by both instruction sets: the generic driver that applies one dot-product
// kernel per (weight row, activation row) pair, and the float reference path over dequantized weight rows.
#include "ckernels.h"
#include "internal.h"

void ck_matmul_rows_generic(ck_dot_fn dot, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                            const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    const char *wb = (const char *)w;
    const char *xb = (const char *)x;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = wb + (size_t)r * w_row_bytes;
        for (int64_t c = 0; c < ncols; c++) y[c * y_stride + r] = dot(n, wr, xb + (size_t)c * x_row_bytes);
    }
}

void ck_matmul_rows_dequant(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                            const float *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    enum { SEG = 4096 };   // elements dequantized at a time (a multiple of every block size)
    float buf[SEG];
    for (int64_t r = r0; r < r1; r++) {
        const char *wr = (const char *)w + (size_t)r * w_row_bytes;
        for (int64_t c = 0; c < ncols; c++) y[c * y_stride + r] = 0.0f;
        for (int64_t s0 = 0; s0 < n; s0 += SEG) {
            const int64_t len = n - s0 < SEG ? n - s0 : SEG;
            ck_dequantize_row(weight_type, wr + ck_row_size(weight_type, s0), buf, len);
            for (int64_t c = 0; c < ncols; c++) {
                const float *xc = (const float *)((const char *)x + (size_t)c * x_row_bytes) + s0;
                y[c * y_stride + r] += ck_dot_f32(len, buf, xc);
            }
        }
    }
}
