// q4_1 and q8_0 matrices repacked in groups of 8 rows with 4-byte interleaving (layouts: include/ckernels.h), and
// the scalar reference matmuls over them — the `_ref` twins of ck_matmul_q4_1_x8_avx2 / ck_matmul_q8_0_x8_avx2
// (x86/avx2_gemm_x8.c).
#include "ckernels.h"
#include <string.h>

// ---------------------------------------------------------------- q4_1 x8

size_t ck_q4_1_x8_size(int64_t rows, int64_t n) { return (size_t)rows * (size_t)(n / CK_QK) * sizeof(ck_block_q4_1); }

void ck_repack_q4_1_x8(const void *w, size_t w_row_bytes, int64_t rows, int64_t n, void *out) {
    const int64_t nb = n / CK_QK;
    uint8_t *o = (uint8_t *)out;
    for (int64_t g = 0; g < rows / 8; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = o + (size_t)(g * nb + b) * 160;
            for (int i = 0; i < 8; i++) {
                const ck_block_q4_1 *src = (const ck_block_q4_1 *)((const char *)w + (size_t)(g * 8 + i) * w_row_bytes) + b;
                memcpy(blk + 2 * i, &src->d, 2);
                memcpy(blk + 16 + 2 * i, &src->m, 2);
                for (int k = 0; k < 4; k++) memcpy(blk + 32 + 32 * k + 4 * i, src->qs + 4 * k, 4);
            }
        }
    }
}

void ck_matmul_q4_1_x8_ref(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                           int64_t ncols, float *y, int64_t y_stride) {
    const int64_t nb = n / CK_QK;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t g = r / 8; const int i = (int)(r % 8);
        for (int64_t c = 0; c < ncols; c++) {
            const ck_block_q8_1 *a = (const ck_block_q8_1 *)((const char *)x + (size_t)c * x_row_bytes);
            float sum = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = (const uint8_t *)wp + (size_t)(g * nb + b) * 160;
                uint16_t d, m;
                memcpy(&d, blk + 2 * i, 2);
                memcpy(&m, blk + 16 + 2 * i, 2);
                int acc = 0;
                for (int j = 0; j < 16; j++) {
                    const uint8_t q = blk[32 + 32 * (j / 4) + 4 * i + j % 4];   // byte j of row i's qs
                    acc += (q & 0x0f) * a[b].qs[j] + (q >> 4) * a[b].qs[j + 16];
                }
                sum += (float)acc * ck_fp16_to_fp32(d) * ck_fp16_to_fp32(a[b].d) + ck_fp16_to_fp32(m) * ck_fp16_to_fp32(a[b].s);
            }
            y[c * y_stride + r] = sum;
        }
    }
}

// ---------------------------------------------------------------- q8_0 x8

void ck_repack_q8_0_x8(const void *w, size_t w_row_bytes, int64_t rows, int64_t n, void *out) {
    const int64_t nb = n / CK_QK;
    uint8_t *o = (uint8_t *)out;
    for (int64_t g = 0; g < rows / 8; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = o + (size_t)(g * nb + b) * 272;
            for (int i = 0; i < 8; i++) {
                const ck_block_q8_0 *src = (const ck_block_q8_0 *)((const char *)w + (size_t)(g * 8 + i) * w_row_bytes) + b;
                memcpy(blk + 2 * i, &src->d, 2);
                for (int k = 0; k < 8; k++) memcpy(blk + 16 + 32 * k + 4 * i, src->qs + 4 * k, 4);
            }
        }
    }
}

void ck_matmul_q8_0_x8_ref(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                           int64_t ncols, float *y, int64_t y_stride) {
    const int64_t nb = n / CK_QK;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t g = r / 8; const int i = (int)(r % 8);
        for (int64_t c = 0; c < ncols; c++) {
            const ck_block_q8_0 *a = (const ck_block_q8_0 *)((const char *)x + (size_t)c * x_row_bytes);
            float sum = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = (const uint8_t *)wp + (size_t)(g * nb + b) * 272;
                uint16_t d;
                memcpy(&d, blk + 2 * i, 2);
                int acc = 0;
                for (int j = 0; j < 32; j++) acc += (int8_t)blk[16 + 32 * (j / 4) + 4 * i + j % 4] * a[b].qs[j];
                sum += (float)acc * ck_fp16_to_fp32(d) * ck_fp16_to_fp32(a[b].d);
            }
            y[c * y_stride + r] = sum;
        }
    }
}
