// AVX2 + FMA + F16C kernels (x86-64). Compiled for those features per function with
// __attribute__((target)), selected at run time by dispatch.c; the scalar `_ref` twins are in ref/.
// The integer block products follow the scheme of ggml-cpu's x86 quants (maddubs of unsigned × signed bytes,
// then madd with ones to int32 lanes), written independently here.
#include "ckernels.h"
#include "../internal.h"
#include <math.h>

#if defined(__x86_64__)
#include "avx2_common.h"


/// 32 nibbles of a q4 block as bytes 0..15, element order (low nibbles = elements 0..15 in the low lane).
CK_INLINE __m256i unpack_q4(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

/// Sum of unsigned(x) * signed(y) byte pairs into 8 int32 lanes, as float.
CK_INLINE __m256 dot_u8_i8(__m256i ux, __m256i sy) {
    const __m256i p16 = _mm256_maddubs_epi16(ux, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/// Sum of signed(x) * signed(y) byte pairs (|x| * sign(x)·y trick).
CK_INLINE __m256 dot_i8_i8(__m256i sx, __m256i sy) {
    return dot_u8_i8(_mm256_sign_epi8(sx, sx), _mm256_sign_epi8(sy, sx));
}

// ---------------------------------------------------------------- dot products

CK_AVX2 float ck_dot_q4_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q4_0 *x = vx; const ck_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / CK_QK; b++) {
        const __m256i bx = _mm256_sub_epi8(unpack_q4(x[b].qs), _mm256_set1_epi8(8));
        const __m256i by = _mm256_loadu_si256((const __m256i *)y[b].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), dot_i8_i8(bx, by), acc);
    }
    return ck_hsum_ps(acc);
}

CK_AVX2 float ck_dot_q4_1_q8_1_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q4_1 *x = vx; const ck_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t b = 0; b < n / CK_QK; b++) {
        const __m256i bx = unpack_q4(x[b].qs);
        const __m256i by = _mm256_loadu_si256((const __m256i *)y[b].qs);
        summ += ck_h2f(x[b].m) * ck_h2f(y[b].s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), dot_u8_i8(bx, by), acc);
    }
    return ck_hsum_ps(acc) + summ;
}

CK_AVX2 float ck_dot_q8_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const ck_block_q8_0 *x = vx; const ck_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / CK_QK; b++) {
        const __m256i bx = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i by = _mm256_loadu_si256((const __m256i *)y[b].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(x[b].d) * ck_h2f(y[b].d)), dot_i8_i8(bx, by), acc);
    }
    return ck_hsum_ps(acc);
}

CK_AVX2 float ck_dot_f16_f32_avx2(int64_t n, const uint16_t *x, const float *y) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8))), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))), _mm256_loadu_ps(y + i), a0);
    float s = ck_hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += ck_h2f(x[i]) * y[i];
    return s;
}

CK_AVX2 float ck_dot_f32_avx2(int64_t n, const float *x, const float *y) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float s = ck_hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

CK_AVX2 void ck_axpy_f16_avx2(int64_t n, float a, const uint16_t *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += a * ck_h2f(x[i]);
}

CK_AVX2 void ck_axpy_f32_avx2(int64_t n, float a, const float *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

// ---------------------------------------------------------------- 4-row matmul kernels
// Four weight rows share each activation block load; each weight row is read once per activation column
// while it is hot in L1.

/// Integer dot products of two q4 rows' block (nibbles qa, qb) with one q8 block split in halves yl / yh
/// (each broadcast to both lanes): lanes 0-3 sum row a, lanes 4-7 row b.
CK_INLINE __m256i q4_pair_dot(const uint8_t *qa, const uint8_t *qb, __m256i yl, __m256i yh) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qa)),
                                              _mm_loadu_si128((const __m128i *)qb), 1);
    const __m256i lo = _mm256_and_si256(v, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, yl), _mm256_maddubs_epi16(hi, yh));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/// Eight q4_1 rows [r, r+8) times every activation column. Per block the eight integer dots are reduced with
/// three hadds to one vector in the order (r0 r2 r4 r6 | r1 r3 r5 r7), scaled by the eight row scales loaded in
/// the same order, and accumulated; the q4_1 offsets m · s are accumulated alongside.
CK_AVX2 static void mm_q4_1_x8(const void *w, size_t wrb, int64_t nb, int64_t r,
                               const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    const ck_block_q4_1 *wr[8];
    for (int i = 0; i < 8; i++) wr[i] = (const ck_block_q4_1 *)((const char *)w + (size_t)(r + i) * wrb);
    for (int64_t c = 0; c < ncols; c++) {
        const ck_block_q8_1 *a = (const ck_block_q8_1 *)((const char *)x + (size_t)c * xrb);
        __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const __m256i yl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)a[b].qs));
            const __m256i yh = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(a[b].qs + 16)));
            const __m256i p01 = q4_pair_dot(wr[0][b].qs, wr[1][b].qs, yl, yh);
            const __m256i p23 = q4_pair_dot(wr[2][b].qs, wr[3][b].qs, yl, yh);
            const __m256i p45 = q4_pair_dot(wr[4][b].qs, wr[5][b].qs, yl, yh);
            const __m256i p67 = q4_pair_dot(wr[6][b].qs, wr[7][b].qs, yl, yh);
            const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p01, p23), _mm256_hadd_epi32(p45, p67));
            const __m256 dv = _mm256_cvtph_ps(_mm_set_epi16(
                (short)wr[7][b].d, (short)wr[5][b].d, (short)wr[3][b].d, (short)wr[1][b].d,
                (short)wr[6][b].d, (short)wr[4][b].d, (short)wr[2][b].d, (short)wr[0][b].d));
            const __m256 mv = _mm256_cvtph_ps(_mm_set_epi16(
                (short)wr[7][b].m, (short)wr[5][b].m, (short)wr[3][b].m, (short)wr[1][b].m,
                (short)wr[6][b].m, (short)wr[4][b].m, (short)wr[2][b].m, (short)wr[0][b].m));
            acc = _mm256_fmadd_ps(_mm256_mul_ps(dv, _mm256_set1_ps(ck_h2f(a[b].d))), _mm256_cvtepi32_ps(h), acc);
            macc = _mm256_fmadd_ps(mv, _mm256_set1_ps(ck_h2f(a[b].s)), macc);
        }
        float t[8];
        _mm256_storeu_ps(t, _mm256_add_ps(acc, macc));
        float *yc = y + c * ys + r;
        yc[0] = t[0]; yc[2] = t[1]; yc[4] = t[2]; yc[6] = t[3];
        yc[1] = t[4]; yc[3] = t[5]; yc[5] = t[6]; yc[7] = t[7];
    }
}

CK_AVX2 static void mm_q4_1(const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                            const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    const int64_t nb = n / CK_QK;
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) mm_q4_1_x8(w, wrb, nb, r, x, xrb, ncols, y, ys);
    for (; r + 4 <= r1; r += 4) {
        const ck_block_q4_1 *w0 = (const ck_block_q4_1 *)((const char *)w + (size_t)r * wrb);
        const ck_block_q4_1 *w1 = (const ck_block_q4_1 *)((const char *)w0 + wrb);
        const ck_block_q4_1 *w2 = (const ck_block_q4_1 *)((const char *)w1 + wrb);
        const ck_block_q4_1 *w3 = (const ck_block_q4_1 *)((const char *)w2 + wrb);
        for (int64_t c = 0; c < ncols; c++) {
            const ck_block_q8_1 *a = (const ck_block_q8_1 *)((const char *)x + (size_t)c * xrb);
            __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
            __m128 mm = _mm_setzero_ps();
            for (int64_t b = 0; b < nb; b++) {
                const __m256i by = _mm256_loadu_si256((const __m256i *)a[b].qs);
                const float dy = ck_h2f(a[b].d);
                const __m128 sy = _mm_set1_ps(ck_h2f(a[b].s));
                const __m128 mv = _mm_set_ps(ck_h2f(w3[b].m), ck_h2f(w2[b].m), ck_h2f(w1[b].m), ck_h2f(w0[b].m));
                mm = _mm_fmadd_ps(mv, sy, mm);
                c0 = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(w0[b].d) * dy), dot_u8_i8(unpack_q4(w0[b].qs), by), c0);
                c1 = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(w1[b].d) * dy), dot_u8_i8(unpack_q4(w1[b].qs), by), c1);
                c2 = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(w2[b].d) * dy), dot_u8_i8(unpack_q4(w2[b].qs), by), c2);
                c3 = _mm256_fmadd_ps(_mm256_set1_ps(ck_h2f(w3[b].d) * dy), dot_u8_i8(unpack_q4(w3[b].qs), by), c3);
            }
            float m4[4];
            _mm_storeu_ps(m4, mm);
            float *yc = y + c * ys + r;
            yc[0] = ck_hsum_ps(c0) + m4[0];
            yc[1] = ck_hsum_ps(c1) + m4[1];
            yc[2] = ck_hsum_ps(c2) + m4[2];
            yc[3] = ck_hsum_ps(c3) + m4[3];
        }
    }
    for (; r < r1; r++) {
        const void *wr = (const char *)w + (size_t)r * wrb;
        for (int64_t c = 0; c < ncols; c++) y[c * ys + r] = ck_dot_q4_1_q8_1_avx2(n, wr, (const char *)x + (size_t)c * xrb);
    }
}

/// d % 8 == 0. The one-head case of ck_attn_scores_gqa_avx2 (below): one dot per position, two accumulators.
CK_AVX2 void ck_attn_scores_avx2(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                                 const int32_t *table, int64_t bs, int64_t n, float scale, float *s) {
    ck_attn_scores_gqa_avx2(kv_type, q, d, 1, d, k_base, slot_bytes, table, bs, n, scale, s, n);
}

/// d % 8 == 0. The one-head case of ck_attn_values_gqa_avx2 (below): 64 output floats in registers per pass
/// while all positions stream by.
CK_AVX2 void ck_attn_values_avx2(int kv_type, const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                                 const int32_t *table, int64_t bs, int64_t n, float *out) {
    ck_attn_values_gqa_avx2(kv_type, w, n, 1, d, v_base, slot_bytes, table, bs, n, out, d);
}


// ---------------------------------------------------------------- quantizers (bit-identical to the _ref twins)

/// roundf (ties away from zero) of 8 lanes: truncate, then step away from zero where |v - trunc(v)| >= 0.5.
CK_INLINE __m256i round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 frac = _mm256_and_ps(_mm256_sub_ps(v, t), absmask);
    const __m256 step = _mm256_or_ps(_mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000))), _mm256_set1_ps(1.0f));
    const __m256 r = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step));
    return _mm256_cvtps_epi32(r);
}

/// Quantizes one block of 32 floats with its scale d and inverse id already computed: writes qs; returns the sum of
/// the quants.
CK_INLINE int quant_block_scaled(const float *x, float id, int8_t *qs) {
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), idv));
    const __m256i s4 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    // int32 → int8 with the element order restored after the lane-wise packs.
    const __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    const __m256i ordered = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, ordered);
    return _mm_cvtsi128_si32(s);
}

/// max |x| over the 32 floats of a block, as 8 partial maxima.
CK_INLINE __m256 block_amax8(const float *x) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(x + 8 * k), absmask));
    return amax;
}

/// The scale of one block of 32 floats: *d = max |x| / 127, *id = 1 / *d (0 when *d = 0).
CK_INLINE void quant_scale1(const float *x, float *d, float *id) {
    const __m256 amax = block_amax8(x);
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    *d = _mm_cvtss_f32(m) / 127.0f;
    *id = *d != 0.0f ? 1.0f / *d : 0.0f;
}

/// The scales of eight consecutive blocks of 32 floats at x: d[b] = max |x| of block b / 127 and id[b] = 1 / d[b]
/// (0 where d[b] = 0), the values quant_scale1 computes one block at a time (the maxima are exact, each division
/// correctly rounded), with two vector divisions instead of sixteen scalar ones and one reduction of the eight
/// blocks' partial maxima (lane b ends up holding block b's).
CK_INLINE void quant_scales8(const float *x, float *d, float *id) {
    __m256 m[8];
    for (int b = 0; b < 8; b++) m[b] = block_amax8(x + 32 * b);
    __m256 v[4], w[2];
    for (int i = 0; i < 4; i++)   // lanes 0, 2 (4, 6): block 2i's maxima; lanes 1, 3 (5, 7): block 2i + 1's
        v[i] = _mm256_max_ps(_mm256_unpacklo_ps(m[2 * i], m[2 * i + 1]), _mm256_unpackhi_ps(m[2 * i], m[2 * i + 1]));
    for (int i = 0; i < 2; i++)   // lane k (and 4 + k): block 4i + k's maxima of that 128-bit half
        w[i] = _mm256_max_ps(_mm256_shuffle_ps(v[2 * i], v[2 * i + 1], 0x44), _mm256_shuffle_ps(v[2 * i], v[2 * i + 1], 0xee));
    const __m256 am = _mm256_max_ps(_mm256_permute2f128_ps(w[0], w[1], 0x20), _mm256_permute2f128_ps(w[0], w[1], 0x31));
    const __m256 dv = _mm256_div_ps(am, _mm256_set1_ps(127.0f));
    const __m256 nz = _mm256_cmp_ps(dv, _mm256_setzero_ps(), _CMP_NEQ_OQ);
    _mm256_storeu_ps(d, dv);
    _mm256_storeu_ps(id, _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), dv)));
}

/// Quantizes the n / 32 blocks of row x into q8_0 blocks (q81 = 0) or q8_1 blocks (q81 = 1: with s = d · Σ quants),
/// eight blocks' scales at a time (a constant q81 after inlining).
CK_INLINE void quant_row_q8(const float *x, void *vy, int64_t n, int q81) {
    ck_block_q8_0 *y0 = (ck_block_q8_0 *)vy;
    ck_block_q8_1 *y1 = (ck_block_q8_1 *)vy;
    const int64_t nb = n / CK_QK;
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const int m = nb - b0 < 8 ? (int)(nb - b0) : 8;
        float d[8], id[8];
        if (m == 8) quant_scales8(x + b0 * CK_QK, d, id);
        else for (int k = 0; k < m; k++) quant_scale1(x + (b0 + k) * CK_QK, &d[k], &id[k]);
        for (int k = 0; k < m; k++) {
            const int64_t b = b0 + k;
            const int sum = quant_block_scaled(x + b * CK_QK, id[k], q81 ? y1[b].qs : y0[b].qs);
            if (q81) {
                y1[b].d = _cvtss_sh(d[k], 0);
                y1[b].s = _cvtss_sh((float)sum * d[k], 0);
            } else {
                y0[b].d = _cvtss_sh(d[k], 0);
            }
        }
    }
}

CK_AVX2 void ck_quantize_row_q8_0_avx2(const float *x, void *vy, int64_t n) { quant_row_q8(x, vy, n, 0); }

CK_AVX2 void ck_quantize_row_q8_1_avx2(const float *x, void *vy, int64_t n) { quant_row_q8(x, vy, n, 1); }

// ---------------------------------------------------------------- softmax

/// e^x for 8 lanes, x <= 0 expected (softmax after max subtraction); ~2 ulp. Range reduction x = k ln2 + r
/// with a two-part ln2, then a degree-6 polynomial for e^r on |r| <= ln2/2 (Cephes expf coefficients).
CK_INLINE __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

CK_AVX2 void ck_softmax_avx2(float *x, int64_t n) {
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float m = _mm_cvtss_f32(m4);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    const __m256 mb = _mm256_set1_ps(m);
    __m256 sv = _mm256_setzero_ps();
    i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
        _mm256_storeu_ps(x + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    float sum = ck_hsum_ps(sv);
    for (; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= 1.0f / sum;
}

// ---------------------------------------------------------------- RMSNorm

CK_AVX2 void ck_rms_norm_avx2(const float *x, const float *w, float eps, int64_t n, float *y) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    float lane[16];
    _mm256_storeu_ps(lane, a0);
    _mm256_storeu_ps(lane + 8, a1);
    const float scale = ck_rms_norm_scale_ref(lane, x, i, n, eps);
    const __m256 s = _mm256_set1_ps(scale);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), s), _mm256_loadu_ps(w + j)));
    for (; j < n; j++) y[j] = x[j] * scale * w[j];
}

// ---------------------------------------------------------------- SwiGLU gate

CK_AVX2 void ck_silu_mul_avx2(const float *g, const float *u, float *out, int64_t n) {
    // e^-g is clamped at e^88 (finite): g / (1 + e^88) is then -0 or a denormal, as silu is for g below -88.
    const __m256 hi = _mm256_set1_ps(88.0f), one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i), uv = _mm256_loadu_ps(u + i);
        const __m256 e = exp8(_mm256_min_ps(_mm256_xor_ps(gv, sign), hi));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), uv));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/// F16C: vcvtps2ph with round-to-nearest-even and back, eight at a time; the tail through the twin.
CK_AVX2 void ck_fp16_round_row_avx2(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    ck_fp16_round_row_ref(x + i, n - i);
}

CK_AVX2 void ck_fp32_to_fp16_row_avx2(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    ck_fp32_to_fp16_row_ref(x + i, y + i, n - i);
}

/// A few-row matmul kernel of one instruction set (ck_matmul_kquant_*, ck_matmul_block32_rows_*).
typedef void (*rows_kernel)(int, const void *, size_t, int64_t, int64_t, int64_t, const void *, size_t, int64_t, float *,
                            int64_t);

/// ck_matmul_rows_avx2 / ck_matmul_rows_avx512vnni with that set's K-quant and 32-element-block row kernels.
static inline __attribute__((always_inline)) int matmul_rows_x86(rows_kernel kquant_rows, rows_kernel block32_rows,
        int weight_type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
        int64_t ncols, float *y, int64_t ys) {
    switch (weight_type) {
    case CK_Q4_1: mm_q4_1(w, wrb, n, r0, r1, x, xrb, ncols, y, ys); return 1;
    case CK_Q8_0:   // as q5_0 below
        if (ncols >= 8) ck_gemm_block32(weight_type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        else block32_rows(weight_type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        return 1;
    case CK_Q4_K: case CK_Q5_K: case CK_Q6_K: {
        // From 4 activation rows the tiled GEMM (eight weight rows at a time); fewer: each weight row against them.
        // Both give the same bits (the row kernel takes the GEMM's float steps), so the choice is speed alone. Both
        // prefetch their weights, which come from DRAM in batched decode and MoE prefill. The row kernel with the
        // GEMM's float steps is the faster one at 1-3 rows and not at 4-7 (served prompt steps of Qwen2.5-Coder-1.5B
        // Q4_K_M: 1 token 48-62 -> 35-39 ms with it, 6 tokens 77-82 -> 88-94 ms; BENCHMARKS.md, "2026-12-07 00:00–00:50").
        const int64_t gemm_from = 4;
        if (ncols >= gemm_from) ck_gemm_kquant(weight_type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        else kquant_rows(weight_type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        return 1;
    }
    case CK_Q2_K:   // the GEMM for four or more activation rows; fewer take the generic per-row dot products
        if (ncols < 4) return 0;
        ck_gemm_kquant(weight_type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        return 1;
    case CK_Q5_0: case CK_IQ4_NL: case CK_Q4_0:
        // The GEMM from 8 activation rows; fewer: ck_matmul_block32_rows_avx2, which is as fast or faster there
        // (single-thread, 2,048 × 1,408 from memory, GMAC/s rows kernel vs GEMM: iq4_nl 27.5 / 27.4 at 4, 30.1 / 23.7
        // at 6; q5_0 24.5 / 25.4 at 4, 27.5 / 23.0 at 6; the GEMM leads from 12: 29.5 / 32.0).
        if (ncols >= 8) ck_gemm_block32(weight_type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        else block32_rows(weight_type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        return 1;
    case CK_F16:
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = 0; c < ncols; c++)
                y[c * ys + r] = ck_dot_f16_f32_avx2(n, (const uint16_t *)((const char *)w + (size_t)r * wrb),
                                                    (const float *)((const char *)x + (size_t)c * xrb));
        return 1;
    case CK_F32:
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = 0; c < ncols; c++)
                y[c * ys + r] = ck_dot_f32_avx2(n, (const float *)((const char *)w + (size_t)r * wrb),
                                                (const float *)((const char *)x + (size_t)c * xrb));
        return 1;
    default: return 0;
    }
}

int ck_matmul_rows_avx2(int weight_type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    return matmul_rows_x86(ck_matmul_kquant_avx2, ck_matmul_block32_rows_avx2, weight_type, w, wrb, n, r0, r1, x, xrb,
                           ncols, y, ys);
}

int ck_matmul_rows_avx512vnni(int weight_type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                              const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    return matmul_rows_x86(ck_matmul_kquant_avx512vnni, ck_matmul_block32_rows_avx512vnni, weight_type, w, wrb, n, r0,
                           r1, x, xrb, ncols, y, ys);
}

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
float ck_dot_q4_0_q8_0_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q4_0_q8_0_ref(n, x, y); }
float ck_dot_q4_1_q8_1_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q4_1_q8_1_ref(n, x, y); }
float ck_dot_q8_0_q8_0_avx2(int64_t n, const void *x, const void *y) { return ck_dot_q8_0_q8_0_ref(n, x, y); }
float ck_dot_f16_f32_avx2(int64_t n, const uint16_t *x, const float *y) { return ck_dot_f16_f32_ref(n, x, y); }
float ck_dot_f32_avx2(int64_t n, const float *x, const float *y) { return ck_dot_f32_ref(n, x, y); }
void ck_axpy_f16_avx2(int64_t n, float a, const uint16_t *x, float *y) { ck_axpy_f16_ref(n, a, x, y); }
void ck_axpy_f32_avx2(int64_t n, float a, const float *x, float *y) { ck_axpy_f32_ref(n, a, x, y); }
void ck_attn_scores_avx2(int kv_type, const float *q, int64_t d, const void *k_base, size_t slot_bytes,
                         const int32_t *table, int64_t bs, int64_t n, float scale, float *s) {
    ck_attn_scores_ref(kv_type, q, d, k_base, slot_bytes, table, bs, n, scale, s);
}
void ck_attn_values_avx2(int kv_type, const float *w, int64_t d, const void *v_base, size_t slot_bytes,
                         const int32_t *table, int64_t bs, int64_t n, float *out) {
    ck_attn_values_ref(kv_type, w, d, v_base, slot_bytes, table, bs, n, out);
}
void ck_quantize_row_q8_0_avx2(const float *x, void *y, int64_t n) { ck_quantize_row_q8_0_ref(x, y, n); }
void ck_quantize_row_q8_1_avx2(const float *x, void *y, int64_t n) { ck_quantize_row_q8_1_ref(x, y, n); }
void ck_softmax_avx2(float *x, int64_t n) { ck_softmax_ref(x, n); }
void ck_silu_mul_avx2(const float *g, const float *u, float *out, int64_t n) { ck_silu_mul_ref(g, u, out, n); }
void ck_rms_norm_avx2(const float *x, const float *w, float eps, int64_t n, float *y) { ck_rms_norm_ref(x, w, eps, n, y); }
void ck_fp16_round_row_avx2(float *x, int64_t n) { ck_fp16_round_row_ref(x, n); }
void ck_fp32_to_fp16_row_avx2(const float *x, uint16_t *y, int64_t n) { ck_fp32_to_fp16_row_ref(x, y, n); }
int ck_matmul_rows_avx512vnni(int t, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                              const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    (void)t; (void)w; (void)wrb; (void)n; (void)r0; (void)r1; (void)x; (void)xrb; (void)ncols; (void)y; (void)ys;
    return 0;
}
int ck_matmul_rows_avx2(int t, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                        const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    (void)t; (void)w; (void)wrb; (void)n; (void)r0; (void)r1; (void)x; (void)xrb; (void)ncols; (void)y; (void)ys;
    return 0;
}
#endif

// The grouped-query attention kernels (x86/attention_tiles.h), AVX2 build: 16 vector registers.
#define AT_NAME(f) f##_avx2
#define AT_FN __attribute__((target("avx2,fma,f16c")))
#define AT_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#include "attention_tiles.h"
