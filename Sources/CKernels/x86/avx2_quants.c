// AVX2 dot products of the 5-bit, K-quant and bf16 formats (x86-64), chosen at run time by dispatch.c;
// each has a scalar `_ref` twin in ref/kquants.c. Integer scheme as in avx2.c: unsigned × signed byte products
// (maddubs) widened to int32 with madd; K-quant sub-block scales are applied in int32 before one float FMA per
// block. Layouts: ggml/src/ggml-common.h. Written independently.
// AVX-512/VNNI variants are not provided (the development machine cannot run them).
#include "ckernels.h"
#include "../internal.h"

#if defined(__x86_64__)
#include "avx2_common.h"


/// Nibbles of 16 bytes as 32 bytes: low nibbles in bytes 0..15, high nibbles in bytes 16..31.
CK_INLINE __m256i nibbles32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

/// Byte i = 0xFF when bit i of `bits` is set, else 0.
CK_INLINE __m256i bit_bytes(const uint8_t *qh4) {
    uint32_t bits;
    __builtin_memcpy(&bits, qh4, 4);
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    const __m256i mask = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
}

CK_INLINE __m256i madd_u8_i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/// Σ over one q5_0 block of (q − 16)·a as eight int32 partial sums.
CK_INLINE __m256i q5_0_block(const ck_block_q5_0 *x, const ck_block_q8_0 *y) {
    // q - 16 as int8: the nibble with 0xF0 or-ed in where the fifth bit is clear.
    const __m256i hb = _mm256_andnot_si256(bit_bytes(x->qh), _mm256_set1_epi8((char)0xf0));
    const __m256i bx = _mm256_or_si256(nibbles32(x->qs), hb);
    const __m256i by = _mm256_loadu_si256((const __m256i *)y->qs);
    return madd_u8_i8(_mm256_sign_epi8(bx, bx), _mm256_sign_epi8(by, bx));
}

CK_AVX2 float ck_dot_q5_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q5_0 *x = vx; const ck_block_q8_0 *y = vy;
    const int64_t nb = n / CK_QK;
    __m256 acc = _mm256_setzero_ps();
    int64_t b = 0;
    // Four blocks per step (ck_acc_blocks4); the weights are prefetched 1 KiB (L1) and 4 KiB (L2) ahead.
    for (; b + 4 <= nb; b += 4) {
        for (int l = 0; l < 2; l++) {
            _mm_prefetch((const char *)&x[b] + 1024 + 64 * l, _MM_HINT_T0);
            _mm_prefetch((const char *)&x[b] + 4096 + 64 * l, _MM_HINT_T1);
        }
        acc = ck_acc_blocks4(acc, q5_0_block(&x[b], &y[b]), q5_0_block(&x[b + 1], &y[b + 1]),
                             q5_0_block(&x[b + 2], &y[b + 2]), q5_0_block(&x[b + 3], &y[b + 3]),
                             x[b].d, x[b + 1].d, x[b + 2].d, x[b + 3].d, y[b].d, y[b + 1].d, y[b + 2].d, y[b + 3].d);
    }
    for (; b < nb; b++)
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), _mm256_cvtepi32_ps(q5_0_block(&x[b], &y[b])), acc);
    return ck_hsum_ps(acc);
}

/// Block b of a q5_0 (q5 = 1) or q8_0 row as signed bytes (q5_0: q − 16, as in q5_0_block).
CK_INLINE __m256i b32_signed(const uint8_t *row, int64_t b, int q5) {
    if (q5) {
        const ck_block_q5_0 *x = (const ck_block_q5_0 *)row + b;
        const __m256i hb = _mm256_andnot_si256(bit_bytes(x->qh), _mm256_set1_epi8((char)0xf0));
        return _mm256_or_si256(nibbles32(x->qs), hb);
    }
    return _mm256_loadu_si256((const __m256i *)((const ck_block_q8_0 *)row + b)->qs);
}

/// The fp16 scale of block b of a q5_0 (q5 = 1) or q8_0 row.
CK_INLINE uint16_t b32_scale(const uint8_t *row, int64_t b, int q5) {
    return q5 ? ((const ck_block_q5_0 *)row)[b].d : ((const ck_block_q8_0 *)row)[b].d;
}

/// Rows [r0, r1) of a q5_0 (q5 = 1) or q8_0 matrix against nc ≤ 3 q8_0 activation rows `xrb` bytes apart: rows
/// streamed in order (prefetched 1 KiB / 4 KiB ahead), each block's signed and absolute weights formed once for all
/// activation rows, four blocks per scale FMA (ck_acc_blocks4) and a block at a time for the tail: per (row,
/// activation row) the operations of ck_dot_q5_0_q8_0_avx2 in its order.
CK_INLINE void b32_cols(const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
                        int64_t nc, float *y, int64_t ys, int q5) {
    enum { MAXC = 3 };
    const int64_t nb = n / CK_QK;
    const ck_block_q8_0 *a[MAXC];
    for (int64_t c = 0; c < nc; c++) a[c] = (const ck_block_q8_0 *)((const char *)x + (size_t)c * xrb);
    const size_t bbytes = q5 ? sizeof(ck_block_q5_0) : sizeof(ck_block_q8_0);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * wrb;
        __m256 acc[MAXC] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        int64_t b = 0;
        for (; b + 4 <= nb; b += 4) {
            for (int l = 0; l < 3; l++) {
                _mm_prefetch((const char *)wr + b * bbytes + 1024 + 64 * l, _MM_HINT_T0);
                _mm_prefetch((const char *)wr + b * bbytes + 4096 + 64 * l, _MM_HINT_T1);
            }
            __m256i sx[4], ux[4];
            for (int i = 0; i < 4; i++) {
                sx[i] = b32_signed(wr, b + i, q5);
                ux[i] = _mm256_sign_epi8(sx[i], sx[i]);
            }
            for (int64_t c = 0; c < nc; c++) {
                const ck_block_q8_0 *yc = a[c] + b;
                __m256i p[4];
                for (int i = 0; i < 4; i++)
                    p[i] = madd_u8_i8(ux[i], _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)yc[i].qs), sx[i]));
                acc[c] = ck_acc_blocks4(acc[c], p[0], p[1], p[2], p[3], b32_scale(wr, b, q5), b32_scale(wr, b + 1, q5),
                                        b32_scale(wr, b + 2, q5), b32_scale(wr, b + 3, q5), yc[0].d, yc[1].d, yc[2].d,
                                        yc[3].d);
            }
        }
        for (; b < nb; b++) {
            const __m256i sx = b32_signed(wr, b, q5), ux = _mm256_sign_epi8(sx, sx);
            for (int64_t c = 0; c < nc; c++) {
                const __m256i p = madd_u8_i8(ux, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)a[c][b].qs), sx));
                acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(b32_scale(wr, b, q5)) * ck_h2f(a[c][b].d)),
                                         _mm256_cvtepi32_ps(p), acc[c]);
            }
        }
        for (int64_t c = 0; c < nc; c++) y[c * ys + r] = ck_hsum_ps(acc[c]);
    }
}

/// Rows [r0, r1) of a q5_0 matrix against nc q8_0 activation rows, three at a time (an expert's few tokens in a
/// batched MoE step): each weight block unpacked once for all of them; every result bit-identical to
/// ck_dot_q5_0_q8_0_avx2 of that row and activation row.
CK_AVX2 void ck_matmul_q5_0_cols_avx2(const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x,
                                      size_t xrb, int64_t nc, float *y, int64_t ys) {
    for (int64_t c0 = 0; c0 < nc; c0 += 3)
        b32_cols(w, wrb, n, r0, r1, (const char *)x + (size_t)c0 * xrb, xrb, nc - c0 < 3 ? nc - c0 : 3, y + c0 * ys, ys, 1);
}

/// The same for a q8_0 matrix read in place (decode and few-token steps; the MoE experts' down projections).
CK_AVX2 void ck_matmul_q8_0_cols_avx2(const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x,
                                      size_t xrb, int64_t nc, float *y, int64_t ys) {
    for (int64_t c0 = 0; c0 < nc; c0 += 3)
        b32_cols(w, wrb, n, r0, r1, (const char *)x + (size_t)c0 * xrb, xrb, nc - c0 < 3 ? nc - c0 : 3, y + c0 * ys, ys, 0);
}

CK_AVX2 float ck_dot_q5_1_q8_1_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q5_1 *x = vx; const ck_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        const __m256i hb = _mm256_and_si256(bit_bytes(x[b].qh), _mm256_set1_epi8(0x10));
        const __m256i bx = _mm256_or_si256(nibbles32(x[b].qs), hb);
        const __m256i by = _mm256_loadu_si256((const __m256i *)y[b].qs);
        summ += ck_h2f(x[b].m) * ck_h2f(y[b].s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), _mm256_cvtepi32_ps(madd_u8_i8(bx, by)), acc);
    }
    return ck_hsum_ps(acc) + summ;
}

// The K-quant dot products are in avx2_kquants.c.

CK_AVX2 float ck_dot_bf16_f32_avx2(int64_t n, const uint16_t *x, const float *y) {
    __m256 a0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i))), 16);
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(w), _mm256_loadu_ps(y + i), a0);
    }
    float s = ck_hsum_ps(a0);
    for (; i < n; i++) s += ck_bf16_to_fp32(x[i]) * y[i];
    return s;
}

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
float ck_dot_q5_0_q8_0_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q5_0_q8_0_ref(n, x, y); }
float ck_dot_q5_1_q8_1_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q5_1_q8_1_ref(n, x, y); }
float ck_dot_bf16_f32_avx2(int64_t n, const uint16_t *x, const float *y) { return ck_dot_bf16_f32_ref(n, x, y); }
void ck_matmul_q8_0_cols_avx2(const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
                              int64_t nc, float *y, int64_t ys) {
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = 0; c < nc; c++)
            y[c * ys + r] = ck_dot_q8_0_q8_0_ref(n, (const char *)w + (size_t)r * wrb, (const char *)x + (size_t)c * xrb);
}
void ck_matmul_q5_0_cols_avx2(const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
                              int64_t nc, float *y, int64_t ys) {
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = 0; c < nc; c++)
            y[c * ys + r] = ck_dot_q5_0_q8_0_ref(n, (const char *)w + (size_t)r * wrb, (const char *)x + (size_t)c * xrb);
}
#endif
