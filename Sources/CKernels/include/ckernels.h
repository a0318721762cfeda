// CKernels: quantized block formats mirroring ggml's byte layout, activation quantizers, dequantizers,
// dot products and row-range matvec/matmul entry points.
//
// Every SIMD kernel has a scalar `_ref` twin with the same signature; the unsuffixed name dispatches at run
// time (CPUID via __builtin_cpu_supports) to the AVX2+FMA+F16C variant when the CPU has it.
// Block formats follow ggml/src/ggml-common.h (block_q4_0, block_q4_1, block_q8_0, block_q8_1).
#ifndef SPUTNIK_CKERNELS_H
#define SPUTNIK_CKERNELS_H
#include <stdint.h>
#include <stddef.h>
#include "ck_iquants.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Elements per block of every 32-element quant format here.
#define CK_QK 32

/// ggml type ids (ggml.h `enum ggml_type`) of the formats these kernels handle.
enum ck_type {
    CK_F32 = 0, CK_F16 = 1, CK_Q4_0 = 2, CK_Q4_1 = 3, CK_Q5_0 = 6, CK_Q5_1 = 7, CK_Q8_0 = 8, CK_Q8_1 = 9,
    CK_Q4_K = 12, CK_Q5_K = 13, CK_Q6_K = 14, CK_Q8_K = 15, CK_BF16 = 30,
    // Low-bit K-quants and non-linear 4-bit types (ref/lowbit_k.c, x86/avx2_lowbit_k.c).
    CK_Q2_K = 10, CK_Q3_K = 11, CK_IQ4_NL = 20, CK_IQ4_XS = 23
};

/// Elements per super-block of the K-quant formats (ggml QK_K).
#define CK_QK_K 256

/// q4_0: 32 weights = d * (q - 8), q in 0...15. Byte j of qs holds element j (low nibble) and j+16 (high nibble).
typedef struct { uint16_t d; uint8_t qs[CK_QK / 2]; } ck_block_q4_0;
/// q4_1: 32 weights = d * q + m, q in 0...15, same nibble order as q4_0.
typedef struct { uint16_t d; uint16_t m; uint8_t qs[CK_QK / 2]; } ck_block_q4_1;
/// q8_0: 32 values = d * q, q in -127...127.
typedef struct { uint16_t d; int8_t qs[CK_QK]; } ck_block_q8_0;
/// q8_1: 32 values = d * q; s = d * sum(q) (the partner of q4_1, whose offset m multiplies sum(x)).
typedef struct { uint16_t d; uint16_t s; int8_t qs[CK_QK]; } ck_block_q8_1;
/// q5_0: 32 weights = d * (q - 16), q in 0...31: low 4 bits as in q4_0, bit 4 of element j is bit j of qh
/// (qh read as a little-endian uint32).
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[CK_QK / 2]; } ck_block_q5_0;
/// q5_1: 32 weights = d * q + m, q in 0...31, bits as in q5_0.
typedef struct { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[CK_QK / 2]; } ck_block_q5_1;
/// q4_K: 256 weights in 8 sub-blocks of 32: w = d * sc[j] * q - dmin * mn[j], q in 0...15, 6-bit sc/mn packed in
/// `scales` (see ck_k_scale_min). Sub-blocks 2i and 2i+1 share qs[32i...32i+31] (low and high nibbles).
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[CK_QK_K / 2]; } ck_block_q4_K;
/// q5_K: like q4_K with a fifth bit: bit 2i (low nibbles) / 2i+1 (high nibbles) of qh[l] for sub-block pair i.
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[CK_QK_K / 8]; uint8_t qs[CK_QK_K / 2]; } ck_block_q5_K;
/// q6_K: 256 weights = d * sc[k] * (q - 32), q in 0...63 (low 4 bits in ql, high 2 in qh), 16 int8 scales of 16.
typedef struct { uint8_t ql[CK_QK_K / 2]; uint8_t qh[CK_QK_K / 4]; int8_t scales[CK_QK_K / 16]; uint16_t d; } ck_block_q6_K;
/// q8_K: 256 values = d * q (d float32), bsums[k] = sum of q over elements 16k...16k+15 (partner of K-quants).
typedef struct { float d; int8_t qs[CK_QK_K]; int16_t bsums[CK_QK_K / 16]; } ck_block_q8_K;

// ---- low-bit K-quants and the non-linear 4-bit types (ggml-common.h block_q2_K, block_q3_K, block_iq4_nl,
// block_iq4_xs); element e of a 256-block lives in 128-half e/128, 32-group (e%128)/32, lane e%32 ----
/// q2_K: 256 weights in 16 sub-blocks of 16: w = d * (scales[k] & 15) * q - dmin * (scales[k] >> 4), q in 0...3
/// (k = e / 16); q of element e is bits 2g...2g+1 of qs[32h + l] (h = e/128, g = group, l = lane). 84 bytes.
typedef struct { uint8_t scales[CK_QK_K / 16]; uint8_t qs[CK_QK_K / 4]; uint16_t d; uint16_t dmin; } ck_block_q2_K;
/// q3_K: 256 weights = d * (s[k] - 32) * (q - 4 * !hbit), q in 0...3 as in q2_K, hbit = bit 4h+g of hmask[l];
/// 6-bit s[k] packed in `scales` (see ck_q3_K_scale). 110 bytes.
typedef struct { uint8_t hmask[CK_QK_K / 8]; uint8_t qs[CK_QK_K / 4]; uint8_t scales[12]; uint16_t d; } ck_block_q3_K;
/// iq4_nl: 32 weights = d * ck_iq4nl_values[q], q in 0...15 in q4_0's nibble order. 18 bytes.
typedef struct { uint16_t d; uint8_t qs[CK_QK / 2]; } ck_block_iq4_nl;
/// iq4_xs: 256 weights in 8 sub-blocks of 32 = d * (ls[j] - 32) * ck_iq4nl_values[q]; 6-bit ls[j] = nibble j of
/// scales_l (low nibble first) | bits 2j...2j+1 of scales_h << 4; sub-block j's nibbles in qs[16j...16j+15] as
/// iq4_nl. 136 bytes.
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[CK_QK_K / 64]; uint8_t qs[CK_QK_K / 2]; } ck_block_iq4_xs;
/// The 16 non-linear levels of iq4_nl / iq4_xs (ggml kvalues_iq4nl).
extern const int8_t ck_iq4nl_values[16];
/// The 6-bit scale 0...63 of sub-block k (0...15) of a q3_K `scales[12]`.
int ck_q3_K_scale(int k, const uint8_t *scales);

/// Decodes the 6-bit scale and min of sub-block j (0...7) of a q4_K/q5_K `scales` array (ggml get_scale_min_k4).
void ck_k_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *mn);
/// bf16 → f32 (the upper 16 bits of a float32).
float ck_bf16_to_fp32(uint16_t h);
/// f32 → bf16, ties to even, subnormals kept (ggml's ggml_compute_fp32_to_bf16; NaN stays a quiet NaN).
uint16_t ck_fp32_to_bf16(float f);
/// y[i] = ck_fp32_to_bf16(x[i]) for i < n (a bf16 KV cache store).
void ck_fp32_to_bf16_row(const float *x, uint16_t *y, int64_t n);

// ---- fp16 <-> fp32 (IEEE binary16, round to nearest even) ----
float ck_fp16_to_fp32(uint16_t h);
uint16_t ck_fp32_to_fp16(float f);
void ck_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n);
/// y[i] = the f16 bit pattern of x[i] (ties to even; ±inf past 65504), i < n: the F16C kernel where the CPU has it
/// (what an f16 KV cache store does). Every non-NaN input gives the scalar twin's bits; NaN stays NaN (its payload
/// may differ).
void ck_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n);
void ck_fp32_to_fp16_row_ref(const float *x, uint16_t *y, int64_t n);
void ck_fp32_to_fp16_row_avx2(const float *x, uint16_t *y, int64_t n);
/// x[i] = the float value of x[i] rounded to the nearest f16 (ties to even; ±inf past 65504), in place, i < n: what an
/// f16 store and load do (queries multiplied with an f16 KV cache). NaN stays NaN (its payload may differ).
void ck_fp16_round_row(float *x, int64_t n);
void ck_fp16_round_row_ref(float *x, int64_t n);
void ck_fp16_round_row_avx2(float *x, int64_t n);

// ---- CPU features ----
/// 1 when the AVX2+FMA+F16C kernels are in use (alone or with the AVX-VNNI or AVX512-VNNI GEMMs).
int ck_has_avx2(void);
/// The kernel set in use: 0 the scalar reference kernels, 1 AVX2 + FMA + F16C, 2 those with the AVX-VNNI eight-row
/// GEMMs, 3 those with the AVX512-VNNI ones (x86/avx*_gemm_x8.c).
int ck_kernel_level(void);
/// 1 when this CPU runs kernel set `level` (as in ck_kernel_level), whatever is in use.
int ck_cpu_runs_kernel_level(int level);
/// Uses the highest kernel set this CPU runs that is at most `max_level` (as in ck_kernel_level) and returns its level.
/// At load the cap comes from the environment variable SPUTNIK_KERNELS (`reference`, `avx2`, `avxvnni` or
/// `avx512vnni`; unset or anything else: no cap), for side-by-side benchmarks.
int ck_set_kernel_level(int max_level);
/// The name of kernel set `level` as SPUTNIK_KERNELS takes it ("reference", "avx2", "avxvnni", "avx512vnni"); NULL
/// outside 0...3.
const char *ck_kernel_level_name(int level);
/// The value of SPUTNIK_KERNELS at load when it named no kernel set (so no cap applies); NULL otherwise.
const char *ck_kernel_cap_ignored(void);
/// Forces the scalar reference kernels (1) or run-time dispatch (0, the best set this CPU runs); for tests and
/// benchmarks.
void ck_force_reference(int on);
/// A spin-wait hint (`pause`).
void ck_cpu_relax(void);

// ---- sizes ----
/// Bytes of one row of `n` elements of `type` (n a multiple of the block size: 32, or 256 for K-quants).
size_t ck_row_size(int type, int64_t n);
/// The activation format a weight type is multiplied with: q4_0/q5_0/q8_0→q8_0, q4_1/q5_1→q8_1,
/// q4_K/q5_K/q6_K→q8_K, f16/bf16/f32→f32; -1 when unsupported.
int ck_activation_type(int weight_type);

// ---- activation quantizers (round to nearest, as ggml's quantize_row_q8_*_ref) ----
void ck_quantize_row_q8_0(const float *x, void *y, int64_t n);
void ck_quantize_row_q8_1(const float *x, void *y, int64_t n);
/// Converts one f32 row to `ck_activation_type(weight_type)` (a copy for f32).
void ck_quantize_activation_row(int weight_type, const float *x, void *y, int64_t n);

/// Scalar twins / AVX2 variants of the activation quantizers (bit-identical results).
void ck_quantize_row_q8_0_ref(const float *x, void *y, int64_t n);
void ck_quantize_row_q8_0_avx2(const float *x, void *y, int64_t n);
void ck_quantize_row_q8_1_ref(const float *x, void *y, int64_t n);
void ck_quantize_row_q8_1_avx2(const float *x, void *y, int64_t n);
/// q8_K as ggml's quantize_row_q8_K_ref: d = max/-127 of the signed extreme, round half to even; n % 256 == 0.
/// The AVX2 variant gives bit-identical blocks (qs, bsums and d).
void ck_quantize_row_q8_K(const float *x, void *y, int64_t n);
void ck_quantize_row_q8_K_ref(const float *x, void *y, int64_t n);
void ck_quantize_row_q8_K_avx2(const float *x, void *y, int64_t n);

// ---- softmax: x[0..<n] = exp(x - max) / sum, in place ----
void ck_softmax(float *x, int64_t n);
void ck_softmax_ref(float *x, int64_t n);
void ck_softmax_avx2(float *x, int64_t n);

// ---- RMSNorm of one row: y[i] = x[i] · s · w[i], s = 1 / sqrt(Σ x² / n + eps); y may alias x ----
// Source: Zhang & Sennrich 2019 §3. The sum of squares runs in sixteen float lanes (lane k takes elements 16j + k,
// each squared and added with one fused multiply-add), the lanes then added in order 0...15 from -0, then the tail
// elements (float products); both variants do exactly this, so they agree bit for bit (and with the Swift
// SIMD16 loop the kernel replaced).
void ck_rms_norm(const float *x, const float *w, float eps, int64_t n, float *y);
void ck_rms_norm_ref(const float *x, const float *w, float eps, int64_t n, float *y);
void ck_rms_norm_avx2(const float *x, const float *w, float eps, int64_t n, float *y);

// ---- SwiGLU gate: out[i] = silu(g[i]) · u[i], silu(g) = g / (1 + e^-g); out may alias g or u ----
// The AVX2 variant evaluates e^-g with the softmax kernel's polynomial (~2 ulp, clamped so it never overflows);
// the reference uses libm expf.
void ck_silu_mul(const float *g, const float *u, float *out, int64_t n);
void ck_silu_mul_ref(const float *g, const float *u, float *out, int64_t n);
void ck_silu_mul_avx2(const float *g, const float *u, float *out, int64_t n);

// ---- dequantizers: y[0..<n] = row x of `type` ----
void ck_dequantize_row(int type, const void *x, float *y, int64_t n);

// ---- dot products over n elements (n a multiple of 32 for the quantized ones) ----
float ck_dot_q4_0_q8_0_ref(int64_t n, const void *x, const void *y);
float ck_dot_q4_0_q8_0_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q4_0_q8_0(int64_t n, const void *x, const void *y);
float ck_dot_q4_1_q8_1_ref(int64_t n, const void *x, const void *y);
float ck_dot_q4_1_q8_1_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q4_1_q8_1(int64_t n, const void *x, const void *y);
float ck_dot_q8_0_q8_0_ref(int64_t n, const void *x, const void *y);
float ck_dot_q8_0_q8_0_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q8_0_q8_0(int64_t n, const void *x, const void *y);
float ck_dot_q5_0_q8_0_ref(int64_t n, const void *x, const void *y);
float ck_dot_q5_0_q8_0_avx2(int64_t n, const void *x, const void *y);
/// Rows [r0, r1) of a q4_0, q5_0, q8_0 or iq4_nl matrix W (rows `wrb` bytes apart, `n` elements, read in place)
/// against `ncols` q8_0 activation rows `xrb` bytes apart: y[c * ys + r], c in 0..<ncols. Meant for few activation
/// rows (decode, an expert's tokens in a batched MoE step): rows streamed in order, each weight block unpacked once
/// per group of up to three activation rows, the activation scales converted once per call
/// (x86/avx2_block32_rows.c). Equals ck_matmul_rows_ref up to float rounding of the per-block terms; an activation
/// row's results are the same bits whichever rows share its pass.
void ck_matmul_block32_rows_avx2(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x,
                                 size_t xrb, int64_t ncols, float *y, int64_t ys);
/// The AVX512-VNNI build of ck_matmul_block32_rows_avx2 (x86/avx512vnni_rows.c): the same bits; only on a CPU with
/// AVX512-VNNI, BW and VL (ck_cpu_runs_kernel_level(3)).
void ck_matmul_block32_rows_avx512vnni(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                       const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys);
/// Rows [r0, r1) of a q4_K, q5_K or q6_K matrix W (rows `wrb` bytes apart, read in place) against `ncols` q8_K
/// activation rows `xrb` bytes apart: y[c * ys + r]. Each weight row against up to four activation rows at a time,
/// with the K-quant GEMM's float steps (ck_gemm_kquant_*: the same bits). AVX2 build (x86/avx2_kquants.c) and the
/// AVX512-VNNI one (x86/avx512vnni_rows.c, only on a CPU with AVX512-VNNI, BW and VL); both give the same bits.
void ck_matmul_kquant_avx2(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x,
                           size_t xrb, int64_t ncols, float *y, int64_t ys);
void ck_matmul_kquant_avx512vnni(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x,
                                 size_t xrb, int64_t ncols, float *y, int64_t ys);
float ck_dot_q5_0_q8_0(int64_t n, const void *x, const void *y);
float ck_dot_q5_1_q8_1_ref(int64_t n, const void *x, const void *y);
float ck_dot_q5_1_q8_1_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q5_1_q8_1(int64_t n, const void *x, const void *y);
/// K-quant dot products: n a multiple of 256, y in q8_K.
float ck_dot_q4_K_q8_K_ref(int64_t n, const void *x, const void *y);
float ck_dot_q4_K_q8_K_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q4_K_q8_K(int64_t n, const void *x, const void *y);
float ck_dot_q5_K_q8_K_ref(int64_t n, const void *x, const void *y);
float ck_dot_q5_K_q8_K_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q5_K_q8_K(int64_t n, const void *x, const void *y);
float ck_dot_q6_K_q8_K_ref(int64_t n, const void *x, const void *y);
float ck_dot_q6_K_q8_K_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q6_K_q8_K(int64_t n, const void *x, const void *y);
/// Low-bit dot products: q2_K, q3_K, iq4_xs with q8_K (n a multiple of 256), iq4_nl with q8_0 (n a multiple of 32).
float ck_dot_q2_K_q8_K_ref(int64_t n, const void *x, const void *y);
float ck_dot_q2_K_q8_K_avx2(int64_t n, const void *x, const void *y);
float ck_dot_q3_K_q8_K_ref(int64_t n, const void *x, const void *y);
float ck_dot_q3_K_q8_K_avx2(int64_t n, const void *x, const void *y);
float ck_dot_iq4_nl_q8_0_ref(int64_t n, const void *x, const void *y);
float ck_dot_iq4_nl_q8_0_avx2(int64_t n, const void *x, const void *y);
float ck_dot_iq4_xs_q8_K_ref(int64_t n, const void *x, const void *y);
float ck_dot_iq4_xs_q8_K_avx2(int64_t n, const void *x, const void *y);
float ck_dot_bf16_f32_ref(int64_t n, const uint16_t *x, const float *y);
float ck_dot_bf16_f32_avx2(int64_t n, const uint16_t *x, const float *y);
float ck_dot_bf16_f32(int64_t n, const uint16_t *x, const float *y);
float ck_dot_f16_f32_ref(int64_t n, const uint16_t *x, const float *y);
float ck_dot_f16_f32_avx2(int64_t n, const uint16_t *x, const float *y);
float ck_dot_f16_f32(int64_t n, const uint16_t *x, const float *y);
float ck_dot_f32_ref(int64_t n, const float *x, const float *y);
float ck_dot_f32_avx2(int64_t n, const float *x, const float *y);
float ck_dot_f32(int64_t n, const float *x, const float *y);

// ---- y += a * x (attention's weighted sum of V rows) ----
void ck_axpy_f16_ref(int64_t n, float a, const uint16_t *x, float *y);
void ck_axpy_f16_avx2(int64_t n, float a, const uint16_t *x, float *y);
void ck_axpy_f16(int64_t n, float a, const uint16_t *x, float *y);
void ck_axpy_f32_ref(int64_t n, float a, const float *x, float *y);
void ck_axpy_f32_avx2(int64_t n, float a, const float *x, float *y);
void ck_axpy_f32(int64_t n, float a, const float *x, float *y);

// ---- matvec / matmul over a row range ----
/// Y[c * y_stride + r] = dot(row r of W, column c of X) for r in [r0, r1), c in [0, ncols).
/// W: weight matrix of `weight_type`, rows of `n` elements, `w_row_bytes` apart ([outDim, n], row-major).
/// X: `ncols` activation rows already converted to `ck_activation_type(weight_type)`, `x_row_bytes` apart.
/// Weights are streamed once per call: each weight row is used for all columns before the next is read.
void ck_matmul_rows(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                    const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// As ck_matmul_rows, but the weight types whose AVX2 path switches from a per-row kernel to a tiled GEMM at some
/// number of activation rows and whose two kernels round their per-block terms differently (q2_K; q4_0, q5_0, q8_0,
/// iq4_nl) take the GEMM whatever `ncols` is, so each activation row's result does not depend on how many rows
/// share the call. q4_K, q5_K and q6_K go through ck_matmul_rows: their row kernels take the GEMM's float steps
/// (avx2_kquants.c), so either gives the same bits and the faster one runs (the row kernel below 4 rows).
/// Engine steps that compute prompt tokens use it: a prompt then gives the same logits however it is split
/// (prefix-cache hits, chunks). Other types, and the reference kernels, are as ck_matmul_rows.
void ck_matmul_rows_gemm(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                         const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// The same with the scalar reference dot products.
void ck_matmul_rows_ref(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);

// ---- K-quant prefill GEMM (x86/kquants_gemm_tiles.h, built per set) ----
/// Like ck_matmul_rows for a q2_K, q4_K, q5_K or q6_K matrix W and X in q8_K, for many activation rows (prefill chunks,
/// multi-sequence decode): tiles of activation rows against groups of eight (then pairs of) weight rows, each weight
/// super-block unpacked once per tile. Results equal ck_matmul_rows_ref up to float rounding of the per-super-block
/// terms. ck_gemm_kquant runs the selected set's build (the reference twin when none); the AVX2, AVX-VNNI and
/// AVX512-VNNI builds give the same bits.
void ck_gemm_kquant(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                    const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
void ck_gemm_kquant_avx2(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                         const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
void ck_gemm_kquant_avxvnni(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                            const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
void ck_gemm_kquant_avx512vnni(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                               const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// Scalar twin of ck_gemm_kquant_avx2 (ref/kquants_gemm.c): the reference dot product per (row, column).
void ck_gemm_kquant_ref(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);

// ---- prefill GEMM for 32-element blocks with q8_0 activations (x86/block32_gemm_tiles.h, built per set) ----
/// Like ck_matmul_rows for a q4_0, q5_0, iq4_nl or q8_0 matrix W (read in place, GGUF layout) and X in q8_0, for any
/// number of activation rows (prefill chunks, grouped experts, decode steps of eight or more rows, and every matmul of
/// a served prompt step, whatever its token count; a token's results do not depend on how many share the call):
/// groups of eight (then pairs of) weight rows unpacked once per tile of activation rows, then a register
/// micro-kernel per block. Results equal ck_gemm_block32_ref up to float rounding of the per-block
/// terms. Other types: nothing is written. ck_gemm_block32 runs the selected set's build (the reference twin when
/// none); the AVX2, AVX-VNNI and AVX512-VNNI builds give the same bits.
void ck_gemm_block32(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                     const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
void ck_gemm_block32_avx2(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                          const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
void ck_gemm_block32_avxvnni(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                             const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
void ck_gemm_block32_avx512vnni(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                                const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// Scalar twin of ck_gemm_block32_avx2 (ref/gemm_block32.c): the reference dot product per (row, column).
void ck_gemm_block32_ref(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                         const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);

// ---- q4_1 repacked in groups of 8 rows (4-byte interleaved) ----
// NOTE: layout of group g (rows 8g..8g+7), block b, at byte (g * nb + b) * 160:
//   uint16 d[8], uint16 m[8] in row order 0..7, then four 32-byte words: word k holds bytes 4k..4k+3 of row i's
//   qs at offset 4i (i = 0..7). Low nibbles of word k are elements 4k..4k+3, high nibbles 16+4k..16+4k+3, so a
//   maddubs against four broadcast activation bytes leaves row i's partial sums in 32-bit lane i.
/// Bytes of a repacked q4_1 matrix (same as the plain one).
size_t ck_q4_1_x8_size(int64_t rows, int64_t n);
/// Repacks `rows` (a multiple of 8) rows of `n` elements of a q4_1 matrix into `out`.
void ck_repack_q4_1_x8(const void *w, size_t w_row_bytes, int64_t rows, int64_t n, void *out);
/// Like ck_matmul_rows for a repacked q4_1 matrix; r0 and r1 multiples of 8; X in q8_1. The AVX2 and AVX-VNNI variants
/// are GEMMs over tiles of 8 rows × up to 8 tokens (x86/gemm_x8_tiles.h), the AVX512-VNNI one over 16 rows × up to 8
/// when `ncols` ≥ 8 (x86/avx512vnni_gemm_x8.c), all with bit-identical results; a token's result does not depend on
/// `ncols`.
void ck_matmul_q4_1_x8(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                       int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q4_1_x8_ref(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                           int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q4_1_x8_avx2(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                            int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q4_1_x8_avxvnni(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                               int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q4_1_x8_avx512vnni(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                                  int64_t ncols, float *y, int64_t y_stride);

// ---- q8_0 repacked in groups of 8 rows (4-byte interleaved) ----
// NOTE: group g, block b at byte (g * nb + b) * 272: uint16 d[8] in row order, then eight 32-byte words: word k
//   holds qs[4k..4k+3] of row i at offset 4i (i = 0..7).
void ck_repack_q8_0_x8(const void *w, size_t w_row_bytes, int64_t rows, int64_t n, void *out);
/// Like ck_matmul_rows for a repacked q8_0 matrix; r0 and r1 multiples of 8; X in q8_0. The AVX2 variant is a GEMM
/// over tiles of 8 rows × 4 tokens, the AVX-VNNI one over 8 rows × 8 tokens (x86/gemm_x8_tiles.h), the AVX512-VNNI
/// one over 16 rows × 8 tokens when `ncols` ≥ 8 (x86/avx512vnni_gemm_x8.c), all with bit-identical results; a token's
/// result does not depend on `ncols`.
void ck_matmul_q8_0_x8(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                       int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q8_0_x8_ref(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                           int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q8_0_x8_avx2(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                            int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q8_0_x8_avxvnni(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                               int64_t ncols, float *y, int64_t y_stride);
void ck_matmul_q8_0_x8_avx512vnni(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t x_row_bytes,
                                  int64_t ncols, float *y, int64_t y_stride);

// ---- attention over a paged KV cache (one query head: the g = 1 case of the grouped form below) ----
// K/V rows of one KV head: position p lives at base + (table[p / block_size] * block_size + p % block_size) *
// slot_bytes; kv_type is CK_F32, CK_F16 or CK_BF16. A bf16 cache needs d % 16 == 0 and d <= CK_ATTN_BF16_MAX_D; its
// products are VDPBF16PS pair steps on the query and the weights rounded to bf16 (ck_fp32_to_bf16): per float lane
// acc + a[2j+1]·b[2j+1], then + a[2j]·b[2j] (Intel SDM, VDPBF16PS), every build and the scalar twins giving the same
// bits (subnormal products aside, which the instruction flushes).
/// Largest head size a bf16 cache's kernels take.
#define CK_ATTN_BF16_MAX_D 1024
/// s[p] = scale * dot(q, K_p) for p in [0, n).
void ck_attn_scores_ref(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                        const int32_t *table, int64_t block_size, int64_t n, float scale, float *s);
void ck_attn_scores_avx2(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                         const int32_t *table, int64_t block_size, int64_t n, float scale, float *s);
/// out[0..<d] = sum_p w_p * V_p for p in [0, n); with an f16 cache each weight is first rounded to f16
/// (llama.cpp's non-flash path multiplies f16 V by f16-converted attention weights).
void ck_attn_values_ref(int kv_type, const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                        const int32_t *table, int64_t block_size, int64_t n, float *out);
void ck_attn_values_avx2(int kv_type, const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                         const int32_t *table, int64_t block_size, int64_t n, float *out);

// ---- grouped-query form: the `g` query heads that share one KV head, each K/V row read (and converted) once ----
/// s[h * s_stride + p] = scale * dot(q + h * q_stride, K_p) for heads h in [0, g), p in [0, n): per head the same
/// float operations as ck_attn_scores (so the same results); q rows already rounded to f16 for an f16 cache.
void ck_attn_scores_gqa(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d, const void *k_base,
                        size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale, float *s,
                        int64_t s_stride);
void ck_attn_scores_gqa_ref(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d, const void *k_base,
                            size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale,
                            float *s, int64_t s_stride);
void ck_attn_scores_gqa_avx2(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d, const void *k_base,
                             size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale,
                             float *s, int64_t s_stride);
/// The AVX512-VL build (x86/avx512_attention.c: more heads per pass in 32 registers; the same bits as AVX2).
void ck_attn_scores_gqa_avx512(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d, const void *k_base,
                               size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale,
                               float *s, int64_t s_stride);
/// The AVX512-BF16 build (x86/avx512bf16_attention.c: a bf16 cache's products by VDPBF16PS; the same bits).
void ck_attn_scores_gqa_avx512bf16(int kv_type, const float *q, int64_t q_stride, int64_t g, int64_t d,
                                   const void *k_base, size_t slot_bytes, const int32_t *table, int64_t block_size,
                                   int64_t n, float scale, float *s, int64_t s_stride);
/// out[h * out_stride + i] = sum_p w[h * w_stride + p] * V_p[i] for heads h in [0, g), i in [0, d): per head as
/// ck_attn_values (f16 weight rounding with an f16 cache; same results).
void ck_attn_values_gqa(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d, const void *v_base,
                        size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                        int64_t out_stride);
void ck_attn_values_gqa_ref(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d, const void *v_base,
                            size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                            int64_t out_stride);
void ck_attn_values_gqa_avx2(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d, const void *v_base,
                             size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                             int64_t out_stride);
/// The AVX512-VL build (x86/avx512_attention.c; the same bits as AVX2).
void ck_attn_values_gqa_avx512(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d, const void *v_base,
                               size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                               int64_t out_stride);
/// The AVX512-BF16 build (x86/avx512bf16_attention.c; the same bits).
void ck_attn_values_gqa_avx512bf16(int kv_type, const float *w, int64_t w_stride, int64_t g, int64_t d,
                                   const void *v_base, size_t slot_bytes, const int32_t *table, int64_t block_size,
                                   int64_t n, float *out, int64_t out_stride);
/// 1 when the CPU has AVX512-BF16 (with the AVX512-VNNI set): the set's attention kernels are then the _avx512bf16
/// build.
int ck_cpu_has_avx512bf16(void);

// ---- 8-bit MLA latent cache (`--kv-cache-type q8_0` for MLA models) ----
// The latent rows of dl + dr values per token (dl = kv_lora_rank, the compressed c^KV, dl % 16 == 0; dr = the RoPE
// key k^R, dr % 4 == 0, 4 <= dr <= 256; dl + dr <= CK_MLA_Q8_MAX_D) are kept twice as 8-bit integers, in tiles of
// CK_MLA_Q8_TILE consecutive slots (a cache block holds block_size / 16 tiles; slot s's tile starts at
// base + (s & ~15) * slot_bytes, slot_bytes = ck_mla_q8_tile_bytes / 16). A tile, outermost first:
//   K  [(dl + dr) / 4][16 tokens][4] int8   the scores' layout: one 32-bit lane = 4 consecutive values of one token
//   V  [4 token quads][dl][4] int8          the values' layout: one 32-bit lane = one value of 4 consecutive tokens
//   ks [ceil(dl / 64) + 1][16] float        K scales: per 64 latent values (the last block may be shorter), and
//                                           one for the dr RoPE values
//   kb [2][16] float                        128 · Σ_b ks[b] · Σ_{i in b} k_i over the latent / RoPE values
//   vs [16] float                           V scale per token, over the dl latent values
// Each scale is absmax / 127 and the value round(x / scale) (ties to even). The products are VPDPBUSD steps: the
// query is quantized per head to unsigned bytes (round(q / sq) + 128, sq = absmax / 127 over the latent and over the
// RoPE values), kb undoing the +128; the attention weights times vs are quantized per head and per 64 positions to
// unsigned bytes (round(w · vs / sw), sw = max / 255). llama.cpp keeps its q8_0 cache in 32-value blocks and converts
// K/V rows to float; this layout trades that for integer dot products (DeepSeek-V2 absorbed decode, arXiv:2405.04434
// §2.1.3: every head reads the same latent rows). Integer sums are exact, and every build repeats the scalar twins'
// float operations, so all give the same bits.
#define CK_MLA_Q8_TILE 16
/// Largest dl + dr the 8-bit MLA kernels take.
#define CK_MLA_Q8_MAX_D 1024
/// Bytes of one tile of 16 tokens (a multiple of 16).
size_t ck_mla_q8_tile_bytes(int64_t dl, int64_t dr);
/// Quantizes the latent row `row` [dl + dr] into slot `slot` of the 8-bit cache at `base` (both layouts).
void ck_mla_q8_store(const float *row, int64_t dl, int64_t dr, void *base, size_t slot_bytes, int64_t slot);
/// out [dl + dr] = the dequantized K values of slot `slot` (k_i8 · ks).
void ck_mla_q8_load_row(const void *base, size_t slot_bytes, int64_t slot, int64_t dl, int64_t dr, float *out);
/// s[h * s_stride + p] = scale · q̃_h · K_p for heads h in [0, g) (queries q + h * q_stride, dl + dr floats), positions
/// p in [0, n) addressed through `table` in blocks of `block_size` slots (a multiple of 16), as ck_attn_scores_gqa.
void ck_mla_q8_scores(const float *q, int64_t q_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                      size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale, float *s,
                      int64_t s_stride);
void ck_mla_q8_scores_ref(const float *q, int64_t q_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                          size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float scale,
                          float *s, int64_t s_stride);
/// The AVX512-VNNI build (x86/avx512vnni_mla_q8.c; the same bits).
void ck_mla_q8_scores_avx512vnni(const float *q, int64_t q_stride, int64_t g, int64_t dl, int64_t dr,
                                 const void *base, size_t slot_bytes, const int32_t *table, int64_t block_size,
                                 int64_t n, float scale, float *s, int64_t s_stride);
/// out[h * out_stride + i] = Σ_p w[h * w_stride + p] · V_p[i] for heads h in [0, g), i in [0, dl), positions as in
/// ck_mla_q8_scores (w: softmax weights, >= 0).
void ck_mla_q8_values(const float *w, int64_t w_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                      size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                      int64_t out_stride);
void ck_mla_q8_values_ref(const float *w, int64_t w_stride, int64_t g, int64_t dl, int64_t dr, const void *base,
                          size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n, float *out,
                          int64_t out_stride);
/// The AVX512-VNNI build (the same bits).
void ck_mla_q8_values_avx512vnni(const float *w, int64_t w_stride, int64_t g, int64_t dl, int64_t dr,
                                 const void *base, size_t slot_bytes, const int32_t *table, int64_t block_size,
                                 int64_t n, float *out, int64_t out_stride);

/// Float reference path: Y[c * y_stride + r] = dot(dequantized row r of W, X row c) with X float32 rows
/// (`x_row_bytes` apart) for any weight type. Each weight row is dequantized once for all columns.
void ck_matmul_rows_dequant(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                            const float *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);

#ifdef __cplusplus
}
#endif
#endif
