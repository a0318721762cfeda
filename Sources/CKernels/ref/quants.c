// Scalar reference kernels of the 32-element formats q4_0, q4_1, q8_0, q8_1 and of f16/f32: activation
// quantizers, the row dequantizer, dot products and axpy — the `_ref` twins of x86/avx2.c. Reference semantics:
// ggml/src/ggml-quants.c (quantize_row_q8_0_ref, quantize_row_q8_1_ref, dequantize_row_q4_0/q4_1/q8_0) and
// ggml-cpu vec_dot_*.
#include "ckernels.h"
#include "../internal.h"
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------- activation quantizers

void ck_quantize_row_q8_0_ref(const float *x, void *vy, int64_t n) {
    ck_block_q8_0 *y = (ck_block_q8_0 *)vy;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        const float *xb = x + b * CK_QK;
        float amax = 0.0f;
        for (int j = 0; j < CK_QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ck_fp32_to_fp16(d);
        for (int j = 0; j < CK_QK; j++) y[b].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

void ck_quantize_row_q8_1_ref(const float *x, void *vy, int64_t n) {
    ck_block_q8_1 *y = (ck_block_q8_1 *)vy;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        const float *xb = x + b * CK_QK;
        float amax = 0.0f;
        for (int j = 0; j < CK_QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < CK_QK; j++) {
            int8_t q = (int8_t)roundf(xb[j] * id);
            y[b].qs[j] = q;
            sum += q;
        }
        y[b].d = ck_fp32_to_fp16(d);
        y[b].s = ck_fp32_to_fp16((float)sum * d);
    }
}

// ---------------------------------------------------------------- dequantizer

void ck_dequantize_row(int type, const void *vx, float *y, int64_t n) {
    switch (type) {
    case CK_F32: memcpy(y, vx, (size_t)n * 4); return;
    case CK_F16: ck_fp16_to_fp32_row((const uint16_t *)vx, y, n); return;
    case CK_Q4_0: {
        const ck_block_q4_0 *x = vx;
        for (int64_t b = 0; b < n / CK_QK; b++, y += CK_QK) {
            const float d = ck_fp16_to_fp32(x[b].d);
            for (int j = 0; j < CK_QK / 2; j++) {
                y[j] = d * (float)((x[b].qs[j] & 0x0f) - 8);
                y[j + CK_QK / 2] = d * (float)((x[b].qs[j] >> 4) - 8);
            }
        }
        return;
    }
    case CK_Q4_1: {
        const ck_block_q4_1 *x = vx;
        for (int64_t b = 0; b < n / CK_QK; b++, y += CK_QK) {
            const float d = ck_fp16_to_fp32(x[b].d), m = ck_fp16_to_fp32(x[b].m);
            for (int j = 0; j < CK_QK / 2; j++) {
                y[j] = d * (float)(x[b].qs[j] & 0x0f) + m;
                y[j + CK_QK / 2] = d * (float)(x[b].qs[j] >> 4) + m;
            }
        }
        return;
    }
    case CK_Q8_0: {
        const ck_block_q8_0 *x = vx;
        for (int64_t b = 0; b < n / CK_QK; b++, y += CK_QK) {
            const float d = ck_fp16_to_fp32(x[b].d);
            for (int j = 0; j < CK_QK; j++) y[j] = d * (float)x[b].qs[j];
        }
        return;
    }
    default: ck_dequantize_row_more(type, vx, y, n); return;
    }
}

// ---------------------------------------------------------------- dot products and axpy

float ck_dot_q4_0_q8_0_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q4_0 *x = vx; const ck_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        int acc = 0;
        for (int j = 0; j < CK_QK / 2; j++) {
            acc += ((x[b].qs[j] & 0x0f) - 8) * y[b].qs[j];
            acc += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + CK_QK / 2];
        }
        sum += (float)acc * ck_fp16_to_fp32(x[b].d) * ck_fp16_to_fp32(y[b].d);
    }
    return sum;
}

float ck_dot_q4_1_q8_1_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q4_1 *x = vx; const ck_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        int acc = 0;
        for (int j = 0; j < CK_QK / 2; j++) {
            acc += (x[b].qs[j] & 0x0f) * y[b].qs[j];
            acc += (x[b].qs[j] >> 4) * y[b].qs[j + CK_QK / 2];
        }
        sum += (float)acc * ck_fp16_to_fp32(x[b].d) * ck_fp16_to_fp32(y[b].d)
             + ck_fp16_to_fp32(x[b].m) * ck_fp16_to_fp32(y[b].s);
    }
    return sum;
}

float ck_dot_q8_0_q8_0_ref(int64_t n, const void *vx, const void *vy) {
    const ck_block_q8_0 *x = vx; const ck_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        int acc = 0;
        for (int j = 0; j < CK_QK; j++) acc += x[b].qs[j] * y[b].qs[j];
        sum += (float)acc * ck_fp16_to_fp32(x[b].d) * ck_fp16_to_fp32(y[b].d);
    }
    return sum;
}

float ck_dot_f16_f32_ref(int64_t n, const uint16_t *x, const float *y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)ck_fp16_to_fp32(x[i]) * (double)y[i];
    return (float)sum;
}

float ck_dot_f32_ref(int64_t n, const float *x, const float *y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * (double)y[i];
    return (float)sum;
}

void ck_axpy_f16_ref(int64_t n, float a, const uint16_t *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += a * ck_fp16_to_fp32(x[i]);
}

void ck_axpy_f32_ref(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
