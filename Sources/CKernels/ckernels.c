// Scalar reference kernels, fp16 conversion, quantizers, dequantizers, run-time dispatch and the row-range
// matmul driver. Formats: ggml/src/ggml-common.h; reference semantics: ggml/src/ggml-quants.c
// (quantize_row_q8_0_ref, quantize_row_q8_1_ref, dequantize_row_q4_0/q4_1/q8_0) and ggml-cpu vec_dot_*.
#include "ckernels.h"
#include "ckernels_internal.h"
#include <math.h>
#include <string.h>

_Static_assert(sizeof(ck_block_q4_0) == 18, "q4_0 block must be 18 bytes like ggml");
_Static_assert(sizeof(ck_block_q4_1) == 20, "q4_1 block must be 20 bytes like ggml");
_Static_assert(sizeof(ck_block_q8_0) == 34, "q8_0 block must be 34 bytes like ggml");
_Static_assert(sizeof(ck_block_q8_1) == 36, "q8_1 block must be 36 bytes like ggml");

// ---------------------------------------------------------------- fp16

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float ck_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return f32_from_bits(sign);
        float v = ldexpf((float)mant, -24);           // subnormal: mant * 2^-24
        return sign ? -v : v;
    }
    if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t ck_fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) return sign | 0x7c00 | (x > 0x7f800000u ? 0x200 : 0);   // inf / nan
    if (x >= 0x477ff000u) return sign | 0x7c00;                                   // rounds past 65504
    if (x < 0x38800000u) {                                                        // below 2^-14: subnormal
        float v = rintf(f32_from_bits(x) * 16777216.0f);                         // * 2^24, ties to even
        return sign | (uint16_t)v;
    }
    uint32_t mant = x & 0x7fffffu;
    uint16_t h = (uint16_t)((((x >> 23) - 112) << 10) | (mant >> 13));
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return sign | h;
}

void ck_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ck_fp16_to_fp32(x[i]);
}

void ck_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ck_fp32_to_fp16(x[i]);
}

// ---------------------------------------------------------------- dispatch

static int g_avx2 = 0;
static int g_force_ref = 0;

__attribute__((constructor)) static void ck_init(void) {
    __builtin_cpu_init();
    g_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

int ck_has_avx2(void) { return g_avx2 && !g_force_ref; }
void ck_force_reference(int on) { g_force_ref = on; }

void ck_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#define CK_USE_AVX2 (g_avx2 && !g_force_ref)

// ---------------------------------------------------------------- sizes

size_t ck_row_size(int type, int64_t n) {
    switch (type) {
    case CK_F32: return (size_t)n * 4;
    case CK_F16: return (size_t)n * 2;
    case CK_Q4_0: return (size_t)(n / CK_QK) * sizeof(ck_block_q4_0);
    case CK_Q4_1: return (size_t)(n / CK_QK) * sizeof(ck_block_q4_1);
    case CK_Q8_0: return (size_t)(n / CK_QK) * sizeof(ck_block_q8_0);
    case CK_Q8_1: return (size_t)(n / CK_QK) * sizeof(ck_block_q8_1);
    case CK_Q5_0: return (size_t)(n / CK_QK) * sizeof(ck_block_q5_0);
    case CK_Q5_1: return (size_t)(n / CK_QK) * sizeof(ck_block_q5_1);
    case CK_Q4_K: return (size_t)(n / CK_QK_K) * sizeof(ck_block_q4_K);
    case CK_Q5_K: return (size_t)(n / CK_QK_K) * sizeof(ck_block_q5_K);
    case CK_Q6_K: return (size_t)(n / CK_QK_K) * sizeof(ck_block_q6_K);
    case CK_Q8_K: return (size_t)(n / CK_QK_K) * sizeof(ck_block_q8_K);
    case CK_BF16: return (size_t)n * 2;
    default: return 0;
    }
}

int ck_activation_type(int weight_type) {
    switch (weight_type) {
    case CK_Q4_0: return CK_Q8_0;
    case CK_Q4_1: return CK_Q8_1;
    case CK_Q8_0: return CK_Q8_0;
    case CK_Q5_0: return CK_Q8_0;
    case CK_Q5_1: return CK_Q8_1;
    case CK_Q4_K: case CK_Q5_K: case CK_Q6_K: return CK_Q8_K;
    case CK_BF16: return CK_F32;
    case CK_F16: return CK_F32;
    case CK_F32: return CK_F32;
    default: return -1;
    }
}

// ---------------------------------------------------------------- quantizers

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

void ck_quantize_row_q8_0(const float *x, void *y, int64_t n) {
    if (CK_USE_AVX2) ck_quantize_row_q8_0_avx2(x, y, n); else ck_quantize_row_q8_0_ref(x, y, n);
}

void ck_quantize_row_q8_1(const float *x, void *y, int64_t n) {
    if (CK_USE_AVX2) ck_quantize_row_q8_1_avx2(x, y, n); else ck_quantize_row_q8_1_ref(x, y, n);
}

void ck_quantize_activation_row(int weight_type, const float *x, void *y, int64_t n) {
    switch (ck_activation_type(weight_type)) {
    case CK_Q8_0: ck_quantize_row_q8_0(x, y, n); break;
    case CK_Q8_1: ck_quantize_row_q8_1(x, y, n); break;
    case CK_Q8_K: ck_quantize_row_q8_K(x, y, n); break;
    case CK_F32: memcpy(y, x, (size_t)n * 4); break;
    default: break;
    }
}

// ---------------------------------------------------------------- dequantizers

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

// ---------------------------------------------------------------- reference dot products

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

// ---------------------------------------------------------------- dispatching entry points

float ck_dot_q4_0_q8_0(int64_t n, const void *x, const void *y) {
    return CK_USE_AVX2 ? ck_dot_q4_0_q8_0_avx2(n, x, y) : ck_dot_q4_0_q8_0_ref(n, x, y);
}
float ck_dot_q4_1_q8_1(int64_t n, const void *x, const void *y) {
    return CK_USE_AVX2 ? ck_dot_q4_1_q8_1_avx2(n, x, y) : ck_dot_q4_1_q8_1_ref(n, x, y);
}
float ck_dot_q8_0_q8_0(int64_t n, const void *x, const void *y) {
    return CK_USE_AVX2 ? ck_dot_q8_0_q8_0_avx2(n, x, y) : ck_dot_q8_0_q8_0_ref(n, x, y);
}
float ck_dot_f16_f32(int64_t n, const uint16_t *x, const float *y) {
    return CK_USE_AVX2 ? ck_dot_f16_f32_avx2(n, x, y) : ck_dot_f16_f32_ref(n, x, y);
}
float ck_dot_f32(int64_t n, const float *x, const float *y) {
    return CK_USE_AVX2 ? ck_dot_f32_avx2(n, x, y) : ck_dot_f32_ref(n, x, y);
}
void ck_axpy_f16(int64_t n, float a, const uint16_t *x, float *y) {
    if (CK_USE_AVX2) ck_axpy_f16_avx2(n, a, x, y); else ck_axpy_f16_ref(n, a, x, y);
}
void ck_axpy_f32(int64_t n, float a, const float *x, float *y) {
    if (CK_USE_AVX2) ck_axpy_f32_avx2(n, a, x, y); else ck_axpy_f32_ref(n, a, x, y);
}

// ---------------------------------------------------------------- matmul driver

typedef float (*ck_dot_fn)(int64_t, const void *, const void *);

static float dot_f16_void(int64_t n, const void *x, const void *y) { return ck_dot_f16_f32(n, x, y); }
static float dot_f32_void(int64_t n, const void *x, const void *y) { return ck_dot_f32(n, x, y); }
static float dot_f16_void_ref(int64_t n, const void *x, const void *y) { return ck_dot_f16_f32_ref(n, x, y); }
static float dot_f32_void_ref(int64_t n, const void *x, const void *y) { return ck_dot_f32_ref(n, x, y); }
static float dot_bf16_void(int64_t n, const void *x, const void *y) { return ck_dot_bf16_f32(n, x, y); }
static float dot_bf16_void_ref(int64_t n, const void *x, const void *y) { return ck_dot_bf16_f32_ref(n, x, y); }

static ck_dot_fn pick_dot(int type, int ref) {
    const int simd = !ref && CK_USE_AVX2;
    switch (type) {
    case CK_Q4_0: return simd ? ck_dot_q4_0_q8_0_avx2 : ck_dot_q4_0_q8_0_ref;
    case CK_Q4_1: return simd ? ck_dot_q4_1_q8_1_avx2 : ck_dot_q4_1_q8_1_ref;
    case CK_Q8_0: return simd ? ck_dot_q8_0_q8_0_avx2 : ck_dot_q8_0_q8_0_ref;
    case CK_F16: return simd ? dot_f16_void : dot_f16_void_ref;
    case CK_F32: return simd ? dot_f32_void : dot_f32_void_ref;
    case CK_Q5_0: return simd ? ck_dot_q5_0_q8_0_avx2 : ck_dot_q5_0_q8_0_ref;
    case CK_Q5_1: return simd ? ck_dot_q5_1_q8_1_avx2 : ck_dot_q5_1_q8_1_ref;
    case CK_Q4_K: return simd ? ck_dot_q4_K_q8_K_avx2 : ck_dot_q4_K_q8_K_ref;
    case CK_Q5_K: return simd ? ck_dot_q5_K_q8_K_avx2 : ck_dot_q5_K_q8_K_ref;
    case CK_Q6_K: return simd ? ck_dot_q6_K_q8_K_avx2 : ck_dot_q6_K_q8_K_ref;
    case CK_BF16: return simd ? dot_bf16_void : dot_bf16_void_ref;
    default: return 0;
    }
}

static void matmul_generic(ck_dot_fn dot, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                           const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    const char *wb = (const char *)w;
    const char *xb = (const char *)x;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = wb + (size_t)r * w_row_bytes;
        for (int64_t c = 0; c < ncols; c++) y[c * y_stride + r] = dot(n, wr, xb + (size_t)c * x_row_bytes);
    }
}

void ck_matmul_rows(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                    const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    if (CK_USE_AVX2 && ck_matmul_rows_avx2(weight_type, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride))
        return;
    ck_dot_fn dot = pick_dot(weight_type, 0);
    if (dot) matmul_generic(dot, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

void ck_matmul_rows_ref(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride) {
    ck_dot_fn dot = pick_dot(weight_type, 1);
    if (dot) matmul_generic(dot, w, w_row_bytes, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
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

// ---------------------------------------------------------------- q4_1 x8 repacking

/// Position of row i (0..7) of a group in the d/m arrays of the repacked layout.
static const int q4x8_slot[8] = {0, 4, 1, 5, 2, 6, 3, 7};

size_t ck_q4_1_x8_size(int64_t rows, int64_t n) { return (size_t)rows * (size_t)(n / CK_QK) * sizeof(ck_block_q4_1); }

void ck_repack_q4_1_x8(const void *w, size_t w_row_bytes, int64_t rows, int64_t n, void *out) {
    const int64_t nb = n / CK_QK;
    uint8_t *o = (uint8_t *)out;
    for (int64_t g = 0; g < rows / 8; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = o + (size_t)(g * nb + b) * 160;
            uint16_t *d = (uint16_t *)blk, *m = (uint16_t *)(blk + 16);
            for (int i = 0; i < 8; i++) {
                const ck_block_q4_1 *src = (const ck_block_q4_1 *)((const char *)w + (size_t)(g * 8 + i) * w_row_bytes) + b;
                d[q4x8_slot[i]] = src->d;
                m[q4x8_slot[i]] = src->m;
                memcpy(blk + 32 + 16 * i, src->qs, 16);
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
                const uint16_t *d = (const uint16_t *)blk, *m = (const uint16_t *)(blk + 16);
                const uint8_t *qs = blk + 32 + 16 * i;
                int acc = 0;
                for (int j = 0; j < 16; j++) acc += (qs[j] & 0x0f) * a[b].qs[j] + (qs[j] >> 4) * a[b].qs[j + 16];
                sum += (float)acc * ck_fp16_to_fp32(d[q4x8_slot[i]]) * ck_fp16_to_fp32(a[b].d)
                     + ck_fp16_to_fp32(m[q4x8_slot[i]]) * ck_fp16_to_fp32(a[b].s);
            }
            y[c * y_stride + r] = sum;
        }
    }
}

void ck_matmul_q4_1_x8(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                       int64_t ncols, float *y, int64_t y_stride) {
    if (CK_USE_AVX2) ck_matmul_q4_1_x8_avx2(wp, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
    else ck_matmul_q4_1_x8_ref(wp, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}

// ---------------------------------------------------------------- paged attention

static inline const char *kv_row(const void *base, size_t slot_bytes, const int32_t *table, int64_t bs, int64_t p) {
    return (const char *)base + (size_t)((int64_t)table[p / bs] * bs + p % bs) * slot_bytes;
}

void ck_attn_scores_ref(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                        const int32_t *table, int64_t bs, int64_t n, float scale, float *s) {
    for (int64_t p = 0; p < n; p++) {
        const char *row = kv_row(k_base, slot_bytes, table, bs, p);
        float acc = 0.0f;
        for (int64_t i = 0; i < d; i++)
            acc += q[i] * (kv_type == CK_F16 ? ck_fp16_to_fp32(((const uint16_t *)row)[i]) : ((const float *)row)[i]);
        s[p] = acc * scale;
    }
}

void ck_attn_values_ref(int kv_type, const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                        const int32_t *table, int64_t bs, int64_t n, float *out) {
    for (int64_t i = 0; i < d; i++) out[i] = 0.0f;
    for (int64_t p = 0; p < n; p++) {
        const char *row = kv_row(v_base, slot_bytes, table, bs, p);
        if (kv_type == CK_F16) {
            const float wp = ck_fp16_to_fp32(ck_fp32_to_fp16(w[p]));
            for (int64_t i = 0; i < d; i++) out[i] += wp * ck_fp16_to_fp32(((const uint16_t *)row)[i]);
        } else {
            for (int64_t i = 0; i < d; i++) out[i] += w[p] * ((const float *)row)[i];
        }
    }
}

void ck_attn_scores(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                    const int32_t *table, int64_t bs, int64_t n, float scale, float *s) {
    if (CK_USE_AVX2 && d % 8 == 0) ck_attn_scores_avx2(kv_type, q, d, k_base, slot_bytes, table, bs, n, scale, s);
    else ck_attn_scores_ref(kv_type, q, d, k_base, slot_bytes, table, bs, n, scale, s);
}

void ck_attn_values(int kv_type, const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                    const int32_t *table, int64_t bs, int64_t n, float *out) {
    if (CK_USE_AVX2 && d % 8 == 0) ck_attn_values_avx2(kv_type, w, d, v_base, slot_bytes, table, bs, n, out);
    else ck_attn_values_ref(kv_type, w, d, v_base, slot_bytes, table, bs, n, out);
}

// ---------------------------------------------------------------- softmax

void ck_softmax_ref(float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void ck_softmax(float *x, int64_t n) {
    if (CK_USE_AVX2) ck_softmax_avx2(x, n); else ck_softmax_ref(x, n);
}

// ---------------------------------------------------------------- q8_0 x8 repacking

void ck_repack_q8_0_x8(const void *w, size_t w_row_bytes, int64_t rows, int64_t n, void *out) {
    const int64_t nb = n / CK_QK;
    uint8_t *o = (uint8_t *)out;
    for (int64_t g = 0; g < rows / 8; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = o + (size_t)(g * nb + b) * 272;
            for (int i = 0; i < 8; i++) {
                const ck_block_q8_0 *src = (const ck_block_q8_0 *)((const char *)w + (size_t)(g * 8 + i) * w_row_bytes) + b;
                memcpy(blk + 2 * i, &src->d, 2);
                memcpy(blk + 16 + 32 * i, src->qs, 32);
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
                const int8_t *qs = (const int8_t *)(blk + 16 + 32 * i);
                int acc = 0;
                for (int j = 0; j < 32; j++) acc += qs[j] * a[b].qs[j];
                sum += (float)acc * ck_fp16_to_fp32(d) * ck_fp16_to_fp32(a[b].d);
            }
            y[c * y_stride + r] = sum;
        }
    }
}

void ck_matmul_q8_0_x8(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                       int64_t ncols, float *y, int64_t y_stride) {
    if (CK_USE_AVX2) ck_matmul_q8_0_x8_avx2(wp, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
    else ck_matmul_q8_0_x8_ref(wp, n, r0, r1, x, x_row_bytes, ncols, y, y_stride);
}
