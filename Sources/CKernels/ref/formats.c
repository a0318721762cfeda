// Formats shared by every kernel: IEEE fp16 and bf16 conversion, block sizes (checked against ggml's), the
// weight → activation format table and the q4_K/q5_K 6-bit scale unpacking. Formats: ggml/src/ggml-common.h.
#include "ckernels.h"
#include <math.h>
#include <string.h>

_Static_assert(sizeof(ck_block_q4_0) == 18, "q4_0 block must be 18 bytes like ggml");
_Static_assert(sizeof(ck_block_q4_1) == 20, "q4_1 block must be 20 bytes like ggml");
_Static_assert(sizeof(ck_block_q8_0) == 34, "q8_0 block must be 34 bytes like ggml");
_Static_assert(sizeof(ck_block_q8_1) == 36, "q8_1 block must be 36 bytes like ggml");
_Static_assert(sizeof(ck_block_q5_0) == 22, "q5_0 block must be 22 bytes like ggml");
_Static_assert(sizeof(ck_block_q5_1) == 24, "q5_1 block must be 24 bytes like ggml");
_Static_assert(sizeof(ck_block_q4_K) == 144, "q4_K block must be 144 bytes like ggml");
_Static_assert(sizeof(ck_block_q5_K) == 176, "q5_K block must be 176 bytes like ggml");
_Static_assert(sizeof(ck_block_q6_K) == 210, "q6_K block must be 210 bytes like ggml");
_Static_assert(sizeof(ck_block_q8_K) == 292, "q8_K block must be 292 bytes like ggml");

// ---------------------------------------------------------------- fp16 / bf16

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

void ck_fp32_to_fp16_row_ref(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ck_fp32_to_fp16(x[i]);
}

void ck_fp16_round_row_ref(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = ck_fp16_to_fp32(ck_fp32_to_fp16(x[i]));
}

uint16_t ck_fp32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   // NaN stays a quiet NaN
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void ck_fp32_to_bf16_row(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ck_fp32_to_bf16(x[i]);
}

float ck_bf16_to_fp32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// ---------------------------------------------------------------- sizes and scales

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
    case CK_Q2_K: return (size_t)(n / CK_QK_K) * sizeof(ck_block_q2_K);
    case CK_Q3_K: return (size_t)(n / CK_QK_K) * sizeof(ck_block_q3_K);
    case CK_IQ4_NL: return (size_t)(n / CK_QK) * sizeof(ck_block_iq4_nl);
    case CK_IQ4_XS: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq4_xs);
    // i-quants (include/ck_iquants.h)
    case CK_IQ2_XXS: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq2_xxs);
    case CK_IQ2_XS: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq2_xs);
    case CK_IQ2_S: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq2_s);
    case CK_IQ3_XXS: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq3_xxs);
    case CK_IQ3_S: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq3_s);
    case CK_IQ1_S: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq1_s);
    case CK_IQ1_M: return (size_t)(n / CK_QK_K) * sizeof(ck_block_iq1_m);
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
    case CK_IQ2_XXS: case CK_IQ2_XS: case CK_IQ2_S: case CK_IQ3_XXS: case CK_IQ3_S: case CK_IQ1_S: case CK_IQ1_M:
        return CK_Q8_K;   // i-quants
    case CK_BF16: return CK_F32;
    case CK_F16: return CK_F32;
    case CK_F32: return CK_F32;
    case CK_Q2_K: case CK_Q3_K: case CK_IQ4_XS: return CK_Q8_K;
    case CK_IQ4_NL: return CK_Q8_0;
    default: return -1;
    }
}

// NOTE: the 12 scale bytes of q4_K/q5_K hold eight 6-bit scales sc[0..7] and mins mn[0..7]:
//   bytes 0-3:  sc[0..3] low 6 bits | top 2 bits = sc[4..7] bits 4-5
//   bytes 4-7:  mn[0..3] low 6 bits | top 2 bits = mn[4..7] bits 4-5
//   bytes 8-11: low nibble = sc[4..7] bits 0-3, high nibble = mn[4..7] bits 0-3
void ck_k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}
