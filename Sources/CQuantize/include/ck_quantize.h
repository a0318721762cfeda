// CQuantize: the offline weight quantizers (f32 → GGUF block formats) and a counter-based Gaussian generator,
// for writing synthetic models (`sputnik-tools synth`). Used only by sputnik-tools and the tests: the runtime
// (Compute, Model, the served binary) never links it; the activation quantizers of the matmul are run-time
// kernels and stay in CKernels. Algorithms follow ggml's reference quantizers in ggml/src/ggml-quants.c
// (`quantize_row_q8_0_ref`, `quantize_row_q5_0_ref`, `quantize_row_q4_K_ref` with `make_qkx2_quants`,
// `quantize_row_q6_K_ref` with `make_qx_quants`); block layouts are ggml-common.h's `block_q8_0`, `block_q5_0`,
// `block_q4_K`, `block_q6_K`. Every function is scalar and allocation-free; names carry the `ckq_` prefix so
// they never collide with the run-time kernels in ckernels.h.
#ifndef SPUTNIK_CK_QUANTIZE_H
#define SPUTNIK_CK_QUANTIZE_H
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Elements per K-quant super-block (ggml `QK_K`).
#define CKQ_QK_K 256

/// q8_0 (ggml type 8): 32 weights = d * qs[i], qs in -127...127. 34 bytes.
typedef struct { uint16_t d; int8_t qs[32]; } ckq_block_q8_0;
/// q5_0 (ggml type 6): 32 weights = d * (q - 16), q in 0...31; low nibbles as q4_0 (byte j: element j low,
/// element j+16 high), bit 4 of element j in bit j of the little-endian u32 `qh`. 22 bytes.
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } ckq_block_q5_0;
/// q4_K (ggml type 12): 8 sub-blocks of 32, weight = d*sc[j]*q - dmin*m[j], q in 0...15; 6-bit sc/m packed in
/// `scales` (see `ckq_q4_K_scale_min`); `qs` byte l of 64-element chunk c holds element 64c+l (low nibble) and
/// 64c+32+l (high nibble). 144 bytes.
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; } ckq_block_q4_K;
/// q6_K (ggml type 14): 16 sub-blocks of 16, weight = d * scales[j] * (q - 32), q in 0...63; low 4 bits in `ql`,
/// high 2 bits in `qh` (layout: see quantize_weights.c). 210 bytes.
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } ckq_block_q6_K;

/// q2_K (ggml type 10), q3_K (11), iq4_nl (20), iq4_xs (23): the layouts of ck_block_q2_K, ck_block_q3_K,
/// ck_block_iq4_nl and ck_block_iq4_xs in ckernels.h (84, 110, 18 and 136 bytes); quantize_lowbit_k.c.
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d; uint16_t dmin; } ckq_block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } ckq_block_q3_K;
typedef struct { uint16_t d; uint8_t qs[16]; } ckq_block_iq4_nl;
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; } ckq_block_iq4_xs;

/// The 6-bit scale and min of sub-block `j` (0...7) of a q4_K block's `scales` (ggml `get_scale_min_k4`).
void ckq_q4_K_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m);

/// Quantizes `n` floats (n a multiple of 32) to q8_0 blocks: d = max|x|/127, q = round(x/d).
void ckq_quantize_row_q8_0(const float *x, void *y, int64_t n);
/// Quantizes `n` floats (n a multiple of 32) to q5_0 blocks: d = -max_signed/16, q = min(31, trunc(x/d + 16.5)).
void ckq_quantize_row_q5_0(const float *x, void *y, int64_t n);
/// Quantizes `n` floats (n a multiple of 256) to q4_K: per 32-element sub-block a weighted least-squares
/// scale/min search (20 steps), then 6-bit scales/mins relative to the block maxima.
void ckq_quantize_row_q4_K(const float *x, void *y, int64_t n);
/// Quantizes `n` floats (n a multiple of 256) to q6_K: per 16-element sub-block an x²-weighted scale search
/// (19 candidates), 8-bit sub-block scales relative to the block's largest one.
void ckq_quantize_row_q6_K(const float *x, void *y, int64_t n);

/// Quantizes `n` floats (n a multiple of 256) to q2_K: per 16-element sub-block an |x|-weighted least-squares
/// scale/min fit (5 candidates), 4-bit scales and mins relative to the block maxima, values re-rounded.
void ckq_quantize_row_q2_K(const float *x, void *y, int64_t n);
/// Quantizes `n` floats (n a multiple of 256) to q3_K: per 16-element sub-block an x²-weighted symmetric scale
/// search (7 candidates), 6-bit signed scales relative to the largest, values −4...3 re-rounded.
void ckq_quantize_row_q3_K(const float *x, void *y, int64_t n);
/// Quantizes `n` floats (n a multiple of 32) to iq4_nl: per block an x²-weighted scale search over the 16
/// non-linear levels (5 candidates).
void ckq_quantize_row_iq4_nl(const float *x, void *y, int64_t n);
/// Quantizes `n` floats (n a multiple of 256) to iq4_xs: iq4_nl's search per 32-element sub-block, then 6-bit
/// signed sub-block scales relative to the largest.
void ckq_quantize_row_iq4_xs(const float *x, void *y, int64_t n);

/// Quantizes `n` floats (n a multiple of 256) to the i-quant `type` (CK_IQ2_XXS, CK_IQ2_XS, CK_IQ2_S, CK_IQ3_XXS,
/// CK_IQ3_S, CK_IQ1_S, CK_IQ1_M of ck_iquants.h) by nearest-grid-point rounding (quantize_iq.c). Returns the bytes
/// written, or -1 for another type or n not a multiple of 256. Thread-safe (the lookup tables are built once).
int64_t ckq_quantize_row_iq(int type, const float *x, void *y, int64_t n);
/// Quantizes `n` floats (n a multiple of 32) to q4_0 as ggml's quantize_row_q4_0_ref: d = max_signed / -8,
/// q = min(15, trunc(x/d + 8.5)) (the fallback of the i-quant presets for rows that are not whole 256-blocks).
void ckq_quantize_row_q4_0(const float *x, void *y, int64_t n);

/// y[0..<n] = dequantized row of `type` (8 = q8_0, 6 = q5_0, 12 = q4_K, 14 = q6_K, 2 = q4_0, 10 = q2_K, 11 = q3_K,
/// 20 = iq4_nl, 23 = iq4_xs and the i-quants). Returns 0, or -1 for another type.
int ckq_dequantize_row(int type, const void *x, float *y, int64_t n);
/// Quantizes `nrows` rows of `ncols` floats to `type` (as above, plus 0 = f32 copy). Returns the bytes written,
/// or -1 when the type is not supported or `ncols` is not a multiple of its block size.
int64_t ckq_quantize_rows(int type, const float *x, void *y, int64_t nrows, int64_t ncols);

/// Fills y[0..<n] with approximately N(mean, std²) values: each value is the sum of four uniform 16-bit
/// integers (Irwin–Hall, range ±3.46σ) drawn from a xorshift64* stream seeded by splitmix64(seed, stream).
/// The same (seed, stream) always gives the same values, whatever thread runs it.
void ckq_fill_normal(uint64_t seed, uint64_t stream, float mean, float std, float *y, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
