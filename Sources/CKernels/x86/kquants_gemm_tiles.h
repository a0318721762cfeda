// The prefill GEMM for K-quant weights (q2_K, q4_K, q5_K, q6_K) times q8_K activations: Y[c, r] = W[r] · X[c] for a
// range of weight rows and four or more activation rows (prefill chunks, multi-sequence decode steps). The
// scalar twin is ck_gemm_kquant_ref (ref/kquants_gemm.c); the one-row decode path stays in avx2_kquants.c.
// Included once per instruction set (avx2_kquants_gemm.c, avxvnni_kquants_gemm.c, avx512vnni_kquants_gemm.c), each
// time with:
//   KG_NAME(f)    the entry point's name (f ## _avx2, f ## _avxvnni, f ## _avx512vnni);
//   KG_FN         the attribute of a function compiled for the set (target features);
//   KG_INLINE     the same for an always-inlined helper;
//   KG_DPBUSD     if defined, the 256-bit vpdpbusd intrinsic: the eight-row micro-kernel then adds a 16-value
//                 group's byte products into int32 in four instructions and scales the group with one int32
//                 multiply, where AVX2 takes four maddubs, three int16 adds and a madd (kg_micro8_half). The int32
//                 sums are the same exact integers, so every build gives the same bits.
//
// Blocking:
//   for each tile of activation rows (≈ 256 KiB of q8_K blocks, gathered into one buffer in the order the
//                                     micro-kernel reads them: stays in L2 while the weight rows stream by)
//     for each group of eight weight rows (kg_rows8_tile, below; the pairs path after it takes the rows left over)
//       for each super-block b: unpack the eight rows and interleave them 4 bytes at a time (kg_unpacked8)
//         for each group of 4 activation rows: an 8-row x 4-token micro-kernel; a weight vector holds four values
//             of each of the eight rows, a broadcast four activation bytes, so maddubs leaves row r's partial sums
//             in lane r; the four maddubs of a 16-value group are added in int16, then one madd by the rows'
//             scales: about half the multiply-port instructions per value of the pairs path (1.6–1.9× its
//             GMAC/s at 32–64 tokens), with the same exact int32 sums and float steps, so the same bits.
//     for each pair of weight rows
//       for each super-block b: unpack both rows' super-block once into L1 scratch (values as unsigned bytes,
//                               one int16 scale vector per 32 values, the min / offset term, the two fp16 scales)
//         for each group of 4 activation rows: a 2 x 4 register micro-kernel, 8 x 32 values:
//             sumi[r][c] += madd(maddubs(w[r], a[c]), scale[r])      (exact int32)
//           then the 2 x 4 int32 sums are folded with two hadds into one vector per row, lanes k and k + 4 holding
//           token k, and added into a float accumulator with one FMA per row (and one for the mins term).
// So each unpacked weight vector is used for 4 activation rows, each activation vector for 2 weight rows, and
// the unpacking is done once per tile instead of once per 4 tokens. The sum of products per super-block is exact
// in int32; the float work per super-block is d_w·d_x·Σ − m_w·d_x·Σ(min·bsum), as in the twin.
// q6_K fits the same shape with min := scale (int16 per 16 values) and m_w := 32·d_w (its "q − 32" offset);
// q2_K with values 0...3, its 4-bit scales per 16 values laid out as q6_K's, its 4-bit mins and m_w := dmin.
// Block layouts: ggml/src/ggml-common.h; written independently.
#include "ckernels.h"
#include "../internal.h"
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include "avx2_common.h"

/// One weight row's super-block unpacked for the micro-kernel.
typedef struct {
    uint8_t q[CK_QK_K];      // values 0...3 (q2_K), 0...15 (q4_K), 0...31 (q5_K), 0...63 (q6_K); chunk j = values 32j...32j+31
    __m256i scale[8];        // int16 scale of each value pair of chunk j (maddubs lane order)
    __m256i mins;            // int16 per 16 values (q8_K bsums order): min (q2_K/q4_K/q5_K) or scale (q6_K)
    __m256i scale16;         // int16 per 16 values: the scale of each (for the eight-row path)
    float d;                 // d_w
    float m;                 // dmin_w (q2_K/q4_K/q5_K) or 32·d_w (q6_K)
} kg_unpacked;

/// The scale fields of q4_K / q5_K super-block `blk` (d, m, mins, scale16); returns the eight 6-bit scales, one per
/// byte, for the per-chunk scale vectors of the pairs path.
KG_INLINE uint64_t kg_head45(const uint8_t *blk, kg_unpacked *u) {
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    uint16_t d16, m16;
    memcpy(&d16, blk, 2);
    memcpy(&m16, blk + 2, 2);
    u->d = ck_h2f(d16);
    u->m = ck_h2f(m16);
    uint64_t scb, mnb;
    ck_kq_scales45(blk + 4, &scb, &mnb);
    u->mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mnb), dup));
    u->scale16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)scb), dup));
    return scb;
}

/// Unpacks super-block `blk` of a q4_K (five = 0) or q5_K (five = 1) row.
KG_INLINE void kg_unpack45(const uint8_t *blk, int five, kg_unpacked *u) {
    const uint64_t scb = kg_head45(blk, u);
    for (int j = 0; j < 8; j++) u->scale[j] = _mm256_set1_epi16((short)((scb >> (8 * j)) & 0xff));
    const uint8_t *qs = blk + (five ? 48 : 16);
    const __m256i hv = five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
    for (int p = 0; p < 4; p++) {
        __m256i lo, hi;
        ck_kq45_chunk_bytes(qs, hv, five, p, &lo, &hi);
        _mm256_storeu_si256((__m256i *)(u->q + 64 * p), lo);
        _mm256_storeu_si256((__m256i *)(u->q + 64 * p + 32), hi);
    }
}

/// The per-chunk scale vectors of a type with one scale per 16 values (q6_K, q2_K) from u->scale16: chunk j covers
/// scales 2j (first 16 values: low 128-bit lane) and 2j + 1 (high lane).
KG_INLINE void kg_scales_per16(kg_unpacked *u) {
    int16_t s[16];
    _mm256_storeu_si256((__m256i *)s, u->scale16);
    for (int j = 0; j < 8; j++)
        u->scale[j] = _mm256_setr_m128i(_mm_set1_epi16(s[2 * j]), _mm_set1_epi16(s[2 * j + 1]));
}

/// The scale fields of a q6_K super-block (d, m = 32·d, mins = scale16 = its sixteen int8 scales).
KG_INLINE void kg_head6(const ck_block_q6_K *x, kg_unpacked *u) {
    u->d = ck_h2f(x->d);
    u->m = 32.0f * u->d;
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    u->mins = s16;
    u->scale16 = s16;
}

/// Unpacks a q6_K super-block: chunk j = 4h + k holds values 128h + 32k ... + 31 (low 4 bits from ql, high 2 from qh).
KG_INLINE void kg_unpack6(const ck_block_q6_K *x, kg_unpacked *u) {
    kg_head6(x, u);
    kg_scales_per16(u);
    for (int h = 0; h < 2; h++) {
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
        const __m256i l2 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
        for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)(u->q + 128 * h + 32 * k), ck_q6_chunk_bytes(l1, l2, hb, k));
    }
}

/// The scale fields of a q2_K super-block: scale16 its sixteen 4-bit scales, mins the sixteen 4-bit mins (bsums
/// order), m = dmin.
KG_INLINE void kg_head2(const ck_block_q2_K *x, kg_unpacked *u) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    u->d = ck_h2f(x->d);
    u->m = ck_h2f(x->dmin);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)x->scales);
    u->mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    u->scale16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
}

/// Chunk g (0...3) of a q2_K 32-byte qs run as values 0...3: bits 2g, 2g + 1 of each byte.
KG_INLINE __m256i kg_q2_chunk(__m256i q, int g) { return _mm256_and_si256(_mm256_srli_epi16(q, 2 * g), _mm256_set1_epi8(3)); }

/// Unpacks a q2_K super-block: chunk j = 4h + g holds values 128h + 32g ... + 31 (bits 2g, 2g+1 of qs[32h + l]);
/// its scales are the 4-bit ones of sub-blocks 2j (low lane) and 2j + 1 (high lane), the mins the 16 upper
/// nibbles in bsums order, m = dmin (the same shape as q4_K with scales and mins per 16 values).
KG_INLINE void kg_unpack2(const ck_block_q2_K *x, kg_unpacked *u) {
    kg_head2(x, u);
    kg_scales_per16(u);
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
        for (int g = 0; g < 4; g++) _mm256_storeu_si256((__m256i *)(u->q + 128 * h + 32 * g), kg_q2_chunk(q, g));
    }
}

/// Unpacks super-block b of weight row `wr` of `type`.
KG_INLINE void kg_unpack(int type, const uint8_t *wr, int64_t b, kg_unpacked *u) {
    switch (type) {
    case CK_Q4_K: kg_unpack45(wr + (size_t)b * sizeof(ck_block_q4_K), 0, u); break;
    case CK_Q5_K: kg_unpack45(wr + (size_t)b * sizeof(ck_block_q5_K), 1, u); break;
    case CK_Q2_K: kg_unpack2((const ck_block_q2_K *)wr + b, u); break;
    default: kg_unpack6((const ck_block_q6_K *)wr + b, u); break;
    }
}

/// Only the scale fields (d, m, mins, scale16) of super-block b of weight row `wr`: the eight-row path unpacks
/// the values itself, from the packed bytes of all eight rows at once.
KG_INLINE void kg_head(int type, const uint8_t *wr, int64_t b, kg_unpacked *u) {
    switch (type) {
    case CK_Q4_K: (void)kg_head45(wr + (size_t)b * sizeof(ck_block_q4_K), u); break;
    case CK_Q5_K: (void)kg_head45(wr + (size_t)b * sizeof(ck_block_q5_K), u); break;
    case CK_Q2_K: kg_head2((const ck_block_q2_K *)wr + b, u); break;
    default: kg_head6((const ck_block_q6_K *)wr + b, u); break;
    }
}

/// Folds four int32 vectors (tokens 0...3) into one: lanes k and k + 4 hold partial sums of token k.
KG_INLINE __m256i kg_fold4(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
}

/// The micro-kernel: `mr` (1 or 2) unpacked weight rows u[0..mr) against the super-blocks a[0..3] of four
/// activation rows; adds d_w·d_x·Σ − m_w·d_x·Σ(min·bsum) into acc[r] (lanes k, k + 4: token k). For q6_K (q6 = 1)
/// m_w = 32·d_w, so the offset term is subtracted in int32 before the one conversion.
KG_INLINE void kg_micro(const kg_unpacked *u, int mr, int q6, const ck_block_q8_K *const *a, int nc, __m256 *acc) {
    __m256i s[2][4];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < 4; c++) s[r][c] = _mm256_setzero_si256();
    // Not unrolled: the 2 x 4 sums, two weight vectors and an activation vector stay in registers.
#pragma clang loop unroll(disable)
    for (int j = 0; j < 8; j++) {
        __m256i w[2], sc[2];
        for (int r = 0; r < mr; r++) {
            w[r] = _mm256_load_si256((const __m256i *)(u[r].q + 32 * j));
            sc[r] = u[r].scale[j];
        }
        for (int c = 0; c < nc; c++) {   // tokens nc...3 are padding: their sums stay 0 and are never stored
            const __m256i av = _mm256_loadu_si256((const __m256i *)(a[c]->qs + 32 * j));
            for (int r = 0; r < mr; r++)
                s[r][c] = _mm256_add_epi32(s[r][c], _mm256_madd_epi16(_mm256_maddubs_epi16(w[r], av), sc[r]));
        }
    }
    const __m256 dx = _mm256_castsi256_ps(_mm256_broadcastsi128_si256(_mm_castps_si128(
        _mm_setr_ps(a[0]->d, a[1]->d, a[2]->d, a[3]->d))));
    __m256i b[4];
    for (int c = 0; c < 4; c++) b[c] = _mm256_loadu_si256((const __m256i *)a[c]->bsums);
    for (int r = 0; r < mr; r++) {
        const __m256i mn = u[r].mins;
        __m256i m[4];
        for (int c = 0; c < 4; c++) m[c] = _mm256_madd_epi16(b[c], mn);
        if (q6) {
            for (int c = 0; c < 4; c++) s[r][c] = _mm256_sub_epi32(s[r][c], _mm256_slli_epi32(m[c], 5));
        } else {
            const __m256i sm = kg_fold4(m[0], m[1], m[2], m[3]);
            acc[r] = _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_set1_ps(u[r].m), dx), _mm256_cvtepi32_ps(sm), acc[r]);
        }
        const __m256i sq = kg_fold4(s[r][0], s[r][1], s[r][2], s[r][3]);
        acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(u[r].d), dx), _mm256_cvtepi32_ps(sq), acc[r]);
    }
}

/// Eight weight rows' super-block in the row-interleaved order of the eight-row micro-kernel (kg_micro8): the
/// 32-bit lane r of each vector belongs to weight row r, so one maddubs against four broadcast activation bytes
/// yields eight rows' partial dot products with no horizontal adds (the layout of the x8 block-32 GEMMs, made
/// here per super-block from the GGUF rows instead of by a repack).
typedef struct {
    __m256i q[8][8];         // [chunk j][word k]: lane r = values 32j + 4k ... 32j + 4k + 3 of row r (unsigned)
    __m256i sc[16];          // [16-value group g]: lane r = row r's scale of group g in both int16 halves
    __m256i mn[8];           // [pair p]: lane r = row r's min (scale for q6_K) of groups 2p and 2p + 1 (int16 each)
    __m256 d, m;             // lane r: d_w and m_w (see kg_unpacked) of row r
} kg_unpacked8;

/// Loads the 32 bytes at offset `off` of super-block b of each of the eight rows wr[0..7] (`bb` bytes per block) and
/// transposes them 4 bytes at a time: v[k] lane r = bytes 4k ... 4k + 3 of row r's run.
KG_INLINE void kg_load8_t(const uint8_t *const *wr, int64_t b, size_t bb, size_t off, __m256i *v) {
    for (int r = 0; r < 8; r++) v[r] = _mm256_loadu_si256((const __m256i *)(wr[r] + (size_t)b * bb + off));
    ck_transpose8_epi32(v);
}

/// Unpacks super-block b of the eight weight rows wr[0..7] into u8 (tmp: scratch for the rows' scale fields).
/// The values are unpacked from the packed bytes after one transpose of each 32-byte run of the eight rows: the
/// unpacking is per byte, so it gives the interleaved order directly, with one transpose per 64 values of q4_K /
/// q5_K (or per 128 of q2_K, per ~43 of q6_K) where unpacking each row and then transposing the values took one per
/// 32, and no stores and reloads of the rows' values.
KG_INLINE void kg_unpack8(int type, const uint8_t *const *wr, int64_t b, kg_unpacked *tmp, kg_unpacked8 *u8) {
    __attribute__((aligned(32))) float d[8], m[8];
    __m256i v[8], v2[8];
    for (int r = 0; r < 8; r++) {
        kg_head(type, wr[r], b, &tmp[r]);
        d[r] = tmp[r].d;
        m[r] = tmp[r].m;
        // Each group's scale in both halves of a 32-bit word: groups 0-3 and 8-11 (v), 4-7 and 12-15 (v2).
        v[r] = _mm256_unpacklo_epi16(tmp[r].scale16, tmp[r].scale16);
        v2[r] = _mm256_unpackhi_epi16(tmp[r].scale16, tmp[r].scale16);
    }
    u8->d = _mm256_load_ps(d);
    u8->m = _mm256_load_ps(m);
    ck_transpose8_epi32(v);
    ck_transpose8_epi32(v2);
    for (int k = 0; k < 4; k++) {
        u8->sc[k] = v[k];
        u8->sc[8 + k] = v[4 + k];
        u8->sc[4 + k] = v2[k];
        u8->sc[12 + k] = v2[4 + k];
    }
    for (int r = 0; r < 8; r++) v[r] = tmp[r].mins;
    ck_transpose8_epi32(v);
    for (int p = 0; p < 8; p++) u8->mn[p] = v[p];
    switch (type) {
    case CK_Q4_K:
    case CK_Q5_K: {
        const int five = type == CK_Q5_K;
        const size_t bb = five ? sizeof(ck_block_q5_K) : sizeof(ck_block_q4_K);
        __m256i hv[8];
        if (five) kg_load8_t(wr, b, bb, 16, hv);
        else for (int k = 0; k < 8; k++) hv[k] = _mm256_setzero_si256();
        for (int p = 0; p < 4; p++) {
            kg_load8_t(wr, b, bb, (five ? 48 : 16) + 32 * (size_t)p, v);
            for (int k = 0; k < 8; k++) ck_kq45_split(v[k], hv[k], five, p, &u8->q[2 * p][k], &u8->q[2 * p + 1][k]);
        }
        break;
    }
    case CK_Q2_K:
        for (int h = 0; h < 2; h++) {
            kg_load8_t(wr, b, sizeof(ck_block_q2_K), offsetof(ck_block_q2_K, qs) + 32 * (size_t)h, v);
            for (int g = 0; g < 4; g++)
                for (int k = 0; k < 8; k++) u8->q[4 * h + g][k] = kg_q2_chunk(v[k], g);
        }
        break;
    default:
        for (int h = 0; h < 2; h++) {
            __m256i hb[8];
            kg_load8_t(wr, b, sizeof(ck_block_q6_K), offsetof(ck_block_q6_K, ql) + 64 * (size_t)h, v);
            kg_load8_t(wr, b, sizeof(ck_block_q6_K), offsetof(ck_block_q6_K, ql) + 64 * (size_t)h + 32, v2);
            kg_load8_t(wr, b, sizeof(ck_block_q6_K), offsetof(ck_block_q6_K, qh) + 32 * (size_t)h, hb);
            for (int k = 0; k < 4; k++)
                for (int kk = 0; kk < 8; kk++) u8->q[4 * h + k][kk] = ck_q6_chunk_bytes(v[kk], v2[kk], hb[kk], k);
        }
        break;
    }
}

/// Half h of the exact int32 sums of eight rows against four activation rows: s[c] lane r = Σ_j scale(r, 2j + h) ·
/// Σ q·a over values 32j + 16h ... 32j + 16h + 15 (h = 0: the even-numbered 16-value groups, 1: the odd ones).
/// AVX2: values of a 16-value group are summed in int16 before the one madd by its scale: four maddubs lanes
/// (≤ 2·31·128 each for q2_K/q4_K/q5_K), or two for q6_K (≤ 2·63·128). VNNI: in int32 (see KG_DPBUSD).
KG_INLINE void kg_micro8_half(const kg_unpacked8 *u, int h, int q6, const ck_block_q8_K *const *a, int nc, __m256i *s) {
    for (int c = 0; c < 4; c++) s[c] = _mm256_setzero_si256();
#pragma clang loop unroll(disable)
    for (int j = 0; j < 8; j++) {
#ifdef KG_DPBUSD
        // VNNI: the group's products summed in int32, then one multiply by the scale (the high int16 half of sc).
        (void)q6;
        const __m256i sc = _mm256_srai_epi32(u->sc[2 * j + h], 16);
        __m256i p[4];
        for (int kk = 0; kk < 4; kk++) {
            const int k = 4 * h + kk;
            const __m256i w = u->q[j][k];
            for (int c = 0; c < nc; c++)
                p[c] = KG_DPBUSD(kk == 0 ? _mm256_setzero_si256() : p[c], w, ck_bcast4(a[c]->qs + 32 * j + 4 * k));
        }
        for (int c = 0; c < nc; c++) s[c] = _mm256_add_epi32(s[c], _mm256_mullo_epi32(p[c], sc));
#else
        const __m256i sc = u->sc[2 * j + h];
        __m256i p[4];
        for (int kk = 0; kk < 4; kk++) {
            const int k = 4 * h + kk;
            const __m256i w = u->q[j][k];
            for (int c = 0; c < nc; c++) {
                const __m256i t = _mm256_maddubs_epi16(w, ck_bcast4(a[c]->qs + 32 * j + 4 * k));
                p[c] = kk == 0 ? t : _mm256_add_epi16(p[c], t);
            }
            if (q6 && kk == 1)
                for (int c = 0; c < nc; c++) {
                    s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(p[c], sc));
                    p[c] = _mm256_setzero_si256();
                }
        }
        for (int c = 0; c < nc; c++) s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(p[c], sc));
#endif
    }
}

/// The eight-row micro-kernel: u's eight rows against the super-blocks a[0..3] of four activation rows. acc[c][h]
/// (lane r: weight row r, token c) gets, for each half h, the same float steps as kg_micro gives lane c + 4h of its
/// accumulator — d_w·d_x·Σ − m_w·d_x·Σ(min·bsum), with the same exact int32 sums — so the results are bit for bit
/// those of the two-row micro-kernel (the halves are added at the store, as in ck_tile_store).
KG_INLINE void kg_micro8(const kg_unpacked8 *u, int q6, const ck_block_q8_K *const *a, int nc, __m256 (*acc)[2]) {
    for (int h = 0; h < 2; h++) {
        __m256i s[4];
        kg_micro8_half(u, h, q6, a, nc, s);
        for (int c = 0; c < nc; c++) {
            // Σ over groups 8h ... 8h + 7 of min (or q6_K scale) · bsum: bsums 2p, 2p + 1 as one broadcast word.
            __m256i mt = _mm256_setzero_si256();
            for (int p = 4 * h; p < 4 * h + 4; p++) {
                const __m256i bw = ck_bcast4((const int8_t *)(a[c]->bsums + 2 * p));
                mt = _mm256_add_epi32(mt, _mm256_madd_epi16(u->mn[p], bw));
            }
            const __m256 dx = _mm256_set1_ps(a[c]->d);
            if (q6) {
                s[c] = _mm256_sub_epi32(s[c], _mm256_slli_epi32(mt, 5));
            } else {
                acc[c][h] = _mm256_fnmadd_ps(_mm256_mul_ps(u->m, dx), _mm256_cvtepi32_ps(mt), acc[c][h]);
            }
            acc[c][h] = _mm256_fmadd_ps(_mm256_mul_ps(u->d, dx), _mm256_cvtepi32_ps(s[c]), acc[c][h]);
        }
    }
}

/// Activation rows per tile: as many as half the L2 holds in q8_K blocks (at least 256 KiB, at most 1 MiB), a
/// multiple of 4, at most KG_MAX_TILE. With 256 KiB, rows of 8,960 values (35 super-blocks) got tiles of 24
/// tokens, and unpacking the weights once per 24 tokens cost: on a 2 MiB L2, 1 MiB tiles of 64 tokens ran the
/// 1,536 × 8,960 GEMM at 78–81 instead of 72 GMAC/s (q4_K; q6_K 74–76 instead of 66), one thread.
enum {
    KG_MAX_TILE = 64,
    KG_GATHER_BLOCKS = (256u << 10) / sizeof(ck_block_q8_K),      // on the stack, when no larger buffer is had
    KG_GATHER_MAX_BLOCKS = (1u << 20) / sizeof(ck_block_q8_K),
};

/// Blocks of the gather buffer: half of sysconf's L2 size, within [KG_GATHER_BLOCKS, KG_GATHER_MAX_BLOCKS].
static int64_t kg_gather_blocks(void) {
    static int64_t cached;   // 0 until computed; every thread computes the same value
    int64_t blocks = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (blocks == 0) {
#ifdef _SC_LEVEL2_CACHE_SIZE
        const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);   // glibc; 0 or -1 when the kernel does not say
#else
        const long l2 = 0;
#endif
        const int64_t want = l2 > 0 ? (int64_t)l2 / 2 / (int64_t)sizeof(ck_block_q8_K) : KG_GATHER_BLOCKS;
        blocks = want < KG_GATHER_BLOCKS ? KG_GATHER_BLOCKS : want > KG_GATHER_MAX_BLOCKS ? KG_GATHER_MAX_BLOCKS : want;
        __atomic_store_n(&cached, blocks, __ATOMIC_RELAXED);
    }
    return blocks;
}

static pthread_key_t kg_buffer_key;
static pthread_once_t kg_buffer_once = PTHREAD_ONCE_INIT;
static void kg_buffer_key_init(void) { (void)pthread_key_create(&kg_buffer_key, free); }

/// This thread's gather buffer of KG_GATHER_MAX_BLOCKS blocks (allocated on its first large GEMM, freed when the
/// thread exits), or NULL if it cannot be had.
static ck_block_q8_K *kg_thread_buffer(void) {
    (void)pthread_once(&kg_buffer_once, kg_buffer_key_init);
    ck_block_q8_K *b = pthread_getspecific(kg_buffer_key);
    if (b == NULL) {
        b = aligned_alloc(64, (size_t)KG_GATHER_MAX_BLOCKS * sizeof(ck_block_q8_K));
        if (b != NULL && pthread_setspecific(kg_buffer_key, b) != 0) {
            free(b);
            b = NULL;
        }
    }
    return b;
}

/// Weight rows [r, r + mr) (mr 1 or 2) against the nt activation rows of one tile (nt a multiple of 4), gathered in
/// `xt` as [group][super-block][4 tokens] so a micro-kernel call reads one contiguous 1,168-byte run instead of
/// four rows up to tens of KiB apart (1.1–1.4× on 1,536 × 8,960 rows at 48 tokens, single thread). Tokens t0 + k
/// for k ≥ ncols − t0 are padding and are not stored.
KG_INLINE void kg_rows_tile(int type, const uint8_t *w, size_t wrb, int64_t nb, int64_t r, int mr,
                            const ck_block_q8_K *xt, int64_t t0, int64_t nt, int64_t ncols, float *y, int64_t ys) {
    __attribute__((aligned(32))) kg_unpacked u[2];
    __m256 acc[KG_MAX_TILE / 4][2];
    const int64_t ng = nt / 4;
    for (int64_t g = 0; g < ng; g++) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
    const uint8_t *wr[2] = {w + (size_t)r * wrb, w + (size_t)(r + mr - 1) * wrb};
    for (int64_t b = 0; b < nb; b++) {
        for (int i = 0; i < mr; i++) kg_unpack(type, wr[i], b, &u[i]);
        for (int64_t g = 0; g < ng; g++) {
            const ck_block_q8_K *run = xt + (g * nb + b) * 4;
            const ck_block_q8_K *a[4] = {run, run + 1, run + 2, run + 3};
            const int real = ck_group_tokens(t0, g, ncols);
#define KG_MICRO(N) do { if (type == CK_Q6_K) { if (mr == 2) kg_micro(u, 2, 1, a, N, acc[g]); else kg_micro(u, 1, 1, a, N, acc[g]); } \
                         else { if (mr == 2) kg_micro(u, 2, 0, a, N, acc[g]); else kg_micro(u, 1, 0, a, N, acc[g]); } } while (0)
            CK_BY_GROUP_TOKENS(real, KG_MICRO);
#undef KG_MICRO
        }
    }
    ck_tile_store(acc, ng, mr, t0, ncols, r, y, ys);
}

/// Weight rows [r, r + 8) against the nt activation rows of one tile (as kg_rows_tile): each super-block of the
/// eight rows is unpacked and interleaved once, then serves every group of four tokens of the tile.
KG_INLINE void kg_rows8_tile(int type, const uint8_t *w, size_t wrb, int64_t nb, int64_t r, const ck_block_q8_K *xt,
                             int64_t t0, int64_t nt, int64_t ncols, float *y, int64_t ys) {
    __attribute__((aligned(32))) kg_unpacked tmp[8];
    __attribute__((aligned(32))) kg_unpacked8 u8;
    __m256 acc[KG_MAX_TILE / 4][4][2];
    const int64_t ng = nt / 4;
    for (int64_t g = 0; g < ng; g++)
        for (int c = 0; c < 4; c++) acc[g][c][0] = acc[g][c][1] = _mm256_setzero_ps();
    const uint8_t *wr[8];
    for (int i = 0; i < 8; i++) wr[i] = w + (size_t)(r + i) * wrb;
    const int q6 = type == CK_Q6_K;
    for (int64_t b = 0; b < nb; b++) {
        ck_prefetch_share(w + (size_t)(r + 8) * wrb, 8 * wrb, b, nb);   // the next eight rows
        kg_unpack8(type, wr, b, tmp, &u8);
        for (int64_t g = 0; g < ng; g++) {
            const ck_block_q8_K *run = xt + (g * nb + b) * 4;
            const ck_block_q8_K *a[4] = {run, run + 1, run + 2, run + 3};
            const int real = ck_group_tokens(t0, g, ncols);
#define KG_MICRO8(N) do { if (q6) kg_micro8(&u8, 1, a, N, acc[g]); else kg_micro8(&u8, 0, a, N, acc[g]); } while (0)
            CK_BY_GROUP_TOKENS(real, KG_MICRO8);
#undef KG_MICRO8
        }
    }
    ck_tile8_store(acc, ng, t0, ncols, r, y, ys);
}

KG_FN void KG_NAME(ck_gemm_kquant)(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                 const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    const int64_t nb = n / CK_QK_K;
    if (nb == 0 || ncols <= 0) return;
    // The stack buffer (256 KiB; pool threads have 1 MiB, the engine thread 8 MiB) when it holds every token of the
    // call at the largest tile or the thread buffer cannot be had; else this thread's buffer of up to 1 MiB.
    ck_block_q8_K stack_xt[KG_GATHER_BLOCKS];
    ck_block_q8_K *xt = stack_xt;
    int64_t budget = KG_GATHER_BLOCKS;
    const int64_t want = kg_gather_blocks();
    if (want > KG_GATHER_BLOCKS && KG_GATHER_BLOCKS / nb / 4 * 4 < (ncols < KG_MAX_TILE ? ncols : KG_MAX_TILE)) {
        ck_block_q8_K *tb = kg_thread_buffer();
        if (tb != NULL) {
            xt = tb;
            budget = want;
        }
    }
    int64_t tile = budget / nb / 4 * 4;
    if (tile < 4) {   // rows of more than 57,344 elements (no GGUF model has them): the scalar twin
        ck_gemm_kquant_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        return;
    }
    tile = tile > KG_MAX_TILE ? KG_MAX_TILE : tile;
    const uint8_t *xb = x;
    for (int64_t t0 = 0; t0 < ncols; t0 += tile) {
        const int64_t left = ncols - t0;
        const int64_t nt = left < tile ? (left + 3) / 4 * 4 : tile;
        for (int64_t g = 0; g < nt / 4; g++) {
            const uint8_t *rows[4];
            ck_tile_group_rows(xb, xrb, t0, g, ncols, rows);
            for (int64_t b = 0; b < nb; b++)
                for (int c = 0; c < 4; c++) xt[(g * nb + b) * 4 + c] = ((const ck_block_q8_K *)rows[c])[b];
        }
        int64_t r = r0;
        for (; r + 8 <= r1; r += 8) kg_rows8_tile(type, w, wrb, nb, r, xt, t0, nt, ncols, y, ys);
        for (; r + 2 <= r1; r += 2) kg_rows_tile(type, w, wrb, nb, r, 2, xt, t0, nt, ncols, y, ys);
        if (r < r1) kg_rows_tile(type, w, wrb, nb, r, 1, xt, t0, nt, ncols, y, ys);
    }
}

#else  // not x86-64: the dispatcher never selects it; keep the symbol so the module links.
void KG_NAME(ck_gemm_kquant)(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                         const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    ck_gemm_kquant_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
}
#endif
