// Declarations shared by the CKernels translation units (not part of the public module, which is
// include/ckernels.h). Layout of the target: ref/ scalar reference kernels, x86/ AVX2 kernels (and the AVX-VNNI
// eight-row GEMMs), dispatch.c the tables of those chosen by CPUID, matmul.c the row-range matmul drivers.
#ifndef SPUTNIK_CKERNELS_INTERNAL_H
#define SPUTNIK_CKERNELS_INTERNAL_H
#include "ckernels.h"
#include <stdint.h>
#include <stddef.h>

/// A weight-row · activation-row dot product over n elements, with void pointers so that one type fits every
/// format (see ck_dot_* in ckernels.h).
typedef float (*ck_dot_fn)(int64_t n, const void *x, const void *y);

/// Generic row-range driver: Y[c * y_stride + r] = dot(row r of W, column c of X) for r in [r0, r1),
/// c in [0, ncols) (matmul.c). Each weight row is used for all columns before the next is read.
void ck_matmul_rows_generic(ck_dot_fn dot, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                            const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);

/// AVX2 matmul over rows [r0, r1) (see ck_matmul_rows); returns 0 when the type has no AVX2 path (x86/avx2.c).
int ck_matmul_rows_avx2(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// ck_matmul_rows_avx2 with the AVX512-VNNI row kernels below (x86/avx2.c); the same bits.
int ck_matmul_rows_avx512vnni(int weight_type, const void *w, size_t w_row_bytes, int64_t n, int64_t r0, int64_t r1,
                              const void *x, size_t x_row_bytes, int64_t ncols, float *y, int64_t y_stride);
/// Dequantizers of the 5-bit, K-quant and bf16 formats (q5_0, q5_1, q4_K, q5_K, q6_K, bf16; ref/kquants.c),
/// called by ck_dequantize_row for the types it does not handle itself.
void ck_dequantize_row_more(int type, const void *x, float *y, int64_t n);
/// Dequantizers of q2_K, q3_K, iq4_nl and iq4_xs (ref/lowbit_k.c); returns 0 for another type.
int ck_dequantize_row_lowbit_k(int type, const void *x, float *y, int64_t n);
/// RMSNorm's scale from the sixteen lane sums of squares over elements [0, i) (ref/attention.c), shared by both
/// variants: the lanes added in order, then the tail elements i..<n.
float ck_rms_norm_scale_ref(const float *lane16, const float *x, int64_t i, int64_t n, float eps);

// ---- 8-bit MLA latent cache (ref/mla_q8.c; the layout is in ckernels.h) ----
/// Byte offsets inside a tile of the 8-bit MLA cache: K, V, ks, kb, vs.
static inline size_t ck_mla_q8_off_v(int64_t dl, int64_t dr) { return (size_t)(16 * (dl + dr)); }
static inline size_t ck_mla_q8_off_ks(int64_t dl, int64_t dr) { return ck_mla_q8_off_v(dl, dr) + (size_t)(16 * dl); }
static inline size_t ck_mla_q8_off_kb(int64_t dl, int64_t dr) {
    return ck_mla_q8_off_ks(dl, dr) + (size_t)(64 * ((dl + 63) / 64 + 1));
}
static inline size_t ck_mla_q8_off_vs(int64_t dl, int64_t dr) { return ck_mla_q8_off_kb(dl, dr) + 128; }
/// The tile holding cache slot `slot`, and the slot's row in it.
static inline char *ck_mla_q8_slot_tile(const void *base, size_t slot_bytes, int64_t slot, int *row) {
    *row = (int)(slot & 15);
    return (char *)base + (size_t)(slot & ~(int64_t)15) * slot_bytes;
}
/// The tile holding logical position p (blocks of bs slots through `table`) and p's row in it.
static inline const char *ck_mla_q8_tile(const void *base, size_t slot_bytes, const int32_t *table, int64_t bs,
                                         int64_t p, int *row) {
    return ck_mla_q8_slot_tile(base, slot_bytes, (int64_t)table[p / bs] * bs + p % bs, row);
}
#endif
