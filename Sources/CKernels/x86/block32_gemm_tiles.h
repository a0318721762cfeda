// The prefill GEMM for weights in 32-element blocks with one fp16 scale — q4_0, q5_0, iq4_nl, q8_0, read in place in
// their GGUF layout — times q8_0 activations: Y[c, r] = W[r] · X[c] for a range of weight rows and four or more
// activation rows (prefill chunks, grouped experts, multi-sequence decode steps). The scalar twin is
// ck_gemm_block32_ref (ref/gemm_block32.c); one activation row keeps the per-row dot products.
// Included once per instruction set (avx2_gemm_block32.c, avxvnni_gemm_block32.c, avx512vnni_gemm_block32.c), each
// time with:
//   B32_NAME(f)   the entry point's name (f ## _avx2, f ## _avxvnni, f ## _avx512vnni);
//   B32_FN        the attribute of a function compiled for the set (target features);
//   B32_INLINE    the same for an always-inlined helper;
//   B32_DPBUSD    if defined, the 256-bit vpdpbusd intrinsic: the eight-row path then keeps every type in offset
//                 form (unsigned w + o with o = 8 for q4_0, 16 for q5_0, 128 for q8_0 and iq4_nl) and adds a half
//                 block's byte products into int32 with four vpdpbusd per token, where AVX2 takes four maddubs, three
//                 int16 adds and a madd (q4_0 / q5_0) or four sign, maddubs, madd and add (q8_0 / iq4_nl). The half
//                 block's sum less o·Σa is the same exact integer, so every build gives the same bits.
//
// These types are the fallbacks GGUF writers use where a K-quant does not fit (rows whose length is not a
// multiple of 256: DeepSeek-V2-Lite's 1,408-wide expert down projections are q8_0, q5_0 or iq4_nl), so they carry a
// large share of an MoE's prefill work. The per-row dot products unpack every weight block again for every token;
// here weight rows are unpacked once per tile of tokens, eight at a time (then pairs for the rows left over).
//
// Blocking:
//   for each tile of activation rows (≤ 64, and ≤ 8192 block scales: the tokens' q8_0 scales as floats,
//                                      converted once per tile, laid out so four tokens' scales are one load;
//                                      for the offset types also o · Σa of each half block)
//     for each group of eight weight rows (b32_rows8, b32_micro8): blocks interleaved four bytes at a time, so one
//       maddubs (or vpdpbusd) against four broadcast activation bytes gives eight rows' partial sums in their own
//       lanes; q4_0 / q5_0 stay unsigned and add a half block's four maddubs in int16; the same exact int32
//       half-block sums and the same FMA per half block as the pairs path below, so the same bits
//       (a tile of one to four tokens: b32_small8 reads the eight rows' blocks as stored, with no
//       interleaving, and gathers each row's half-block sums into its lane with a reduction tree: the same exact
//       sums and float steps, so the same bits)
//     for each pair of weight rows left
//       for each segment of ≤ 128 blocks: unpack both rows' blocks (values, |values|, scales) into L1 scratch
//         for each group of 4 activation rows, over the segment's blocks: a 2 x 4 micro-kernel
//             s[c] = madd(maddubs(|w|, sign(a[c], w)), 1)     (exact int32: |w|·sign(a, w) = w·a; w ≠ −128)
//           the four tokens' sums folded into one vector (lanes k, k + 4: token k) and added into a float
//           accumulator with one FMA per row and block: acc += (d_w · d_x[0..3]) · fold(s).
// Block layouts: ggml/src/ggml-common.h; written independently.
#include "ckernels.h"
#include "../internal.h"
#include <string.h>

#if defined(__x86_64__)
#include "avx2_common.h"

enum {
    B32_SEG_BLOCKS = 128,   // blocks unpacked per weight row at a time (4,096 elements)
    B32_MAX_TILE = 64,      // activation rows per tile
    B32_MAX_SCALES = 8192,  // activation block scales per tile (tile × blocks per row)
    B32_SMALL_TOKENS = 4,   // tiles of at most this many tokens (one group) take b32_small8
};

/// One weight row's segment unpacked for the micro-kernel.
typedef struct {
    int8_t v[B32_SEG_BLOCKS * CK_QK];    // signed values (−128 ... 127; −128 only in q8_0, where |w| = 128 as a
                                         // byte still gives |w|·sign(a, w) = w·a)
    uint8_t a[B32_SEG_BLOCKS * CK_QK];   // their absolute values
    float d[B32_SEG_BLOCKS];             // block scales
} b32_row;

/// Bytes per block of the three types.
B32_INLINE size_t b32_block_bytes(int type) {
    return type == CK_Q5_0 ? sizeof(ck_block_q5_0) : type == CK_Q4_0 ? sizeof(ck_block_q4_0)
         : type == CK_Q8_0 ? sizeof(ck_block_q8_0) : sizeof(ck_block_iq4_nl);
}

/// The 32 nibbles of qs[16] in element order: low nibbles are elements 0...15 (low lane), high ones 16...31.
B32_INLINE __m256i b32_nibbles(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

/// The 32 signed values of one block.
B32_INLINE __m256i b32_values(int type, const uint8_t *blk) {
    switch (type) {
    case CK_Q8_0:
        return _mm256_loadu_si256((const __m256i *)((const ck_block_q8_0 *)blk)->qs);
    case CK_Q4_0:
        return _mm256_sub_epi8(b32_nibbles(((const ck_block_q4_0 *)blk)->qs), _mm256_set1_epi8(8));
    case CK_Q5_0: {
        const ck_block_q5_0 *x = (const ck_block_q5_0 *)blk;
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        // Byte j takes byte j / 8 of qh (every 32-bit lane holds qh), then bit j % 8 of it becomes 0x10.
        const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
            _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
        const __m256i hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
        return _mm256_sub_epi8(_mm256_or_si256(b32_nibbles(x->qs), hb), _mm256_set1_epi8(16));
    }
    default: {   // iq4_nl: the nibbles index the 16 non-linear levels
        const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)ck_iq4nl_values));
        return _mm256_shuffle_epi8(table, b32_nibbles(((const ck_block_iq4_nl *)blk)->qs));
    }
    }
}

/// Unpacks blocks [b0, b0 + nbs) of weight row `wr`.
B32_INLINE void b32_unpack(int type, const uint8_t *wr, int64_t b0, int64_t nbs, b32_row *u) {
    const size_t bb = b32_block_bytes(type);
    for (int64_t b = 0; b < nbs; b++) {
        const uint8_t *blk = wr + (size_t)(b0 + b) * bb;
        const __m256i v = b32_values(type, blk);
        _mm256_storeu_si256((__m256i *)(u->v + 32 * b), v);
        _mm256_storeu_si256((__m256i *)(u->a + 32 * b), _mm256_sign_epi8(v, v));
        uint16_t d16;
        memcpy(&d16, blk, 2);   // every block starts with its fp16 scale
        u->d[b] = ck_h2f(d16);
    }
}

/// Four int32 vectors (tokens 0...3) folded into one: lanes k and k + 4 hold partial sums of token k.
B32_INLINE __m256i b32_fold4(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
}

/// `mr` (1 or 2) unpacked rows against four activation rows a[0..3] (q8_0, pointing at the segment's first block)
/// over nbs blocks; dx: the four tokens' block scales, four floats per block. acc[r] lanes k, k + 4: token k.
B32_INLINE void b32_micro(const b32_row *u, int mr, const ck_block_q8_0 *const *a, int nc, int64_t nbs, const float *dx,
                         __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nbs; b++) {
        const __m256 dxv = _mm256_broadcast_ps((const __m128 *)(dx + 4 * b));
        for (int r = 0; r < mr; r++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(u[r].v + 32 * b));
            const __m256i aw = _mm256_loadu_si256((const __m256i *)(u[r].a + 32 * b));
            __m256i s[4];
            for (int c = 0; c < 4; c++) {   // tokens nc...3 are padding: 0, never stored
                if (c >= nc) { s[c] = _mm256_setzero_si256(); continue; }
                const __m256i av = _mm256_loadu_si256((const __m256i *)a[c][b].qs);
                s[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(av, w)), ones);
            }
            const __m256 f = _mm256_cvtepi32_ps(b32_fold4(s[0], s[1], s[2], s[3]));
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(u[r].d[b]), dxv), f, acc[r]);
        }
    }
}

/// Eight weight rows' segment of blocks interleaved four bytes at a time (lane r of each vector: weight row r), for
/// the eight-row micro-kernel. q4_0 and q5_0 keep their unsigned values (0...15, 0...31), the offset (8, 16) is
/// applied through the activations' half-block sums; q8_0 and iq4_nl keep |w| and w for the sign trick.
typedef struct {
    __m256i q[B32_SEG_BLOCKS][8];   // [block][word k]: values 4k ... 4k + 3 of each row, unsigned or |w|
    __m256i v[B32_SEG_BLOCKS][8];   // the signed values (q8_0, iq4_nl only)
    __m256 d[B32_SEG_BLOCKS];       // block scales
} b32_rows8;

/// The offset the eight-row path's values carry (w = q − offset): q4_0 8, q5_0 16; the signed types 0 (AVX2: the
/// sign trick) or, with B32_DPBUSD, 128 (the unsigned operand of vpdpbusd).
B32_INLINE int b32_offset(int type) {
#ifdef B32_DPBUSD
    return type == CK_Q4_0 ? 8 : type == CK_Q5_0 ? 16 : 128;
#else
    return type == CK_Q4_0 ? 8 : type == CK_Q5_0 ? 16 : 0;
#endif
}

/// Unpacks blocks [b0, b0 + nbs) of the eight rows starting at `wr` (wrb bytes apart) into u, and prefetches the share
/// of block b0 + b of the next eight rows' nb blocks with each block (a segment's whole share at once stalled on the
/// prefetches).
B32_INLINE void b32_unpack8(int type, const uint8_t *wr, size_t wrb, int64_t b0, int64_t nbs, int64_t nb, b32_rows8 *u) {
    const size_t bb = b32_block_bytes(type);
    const int off = b32_offset(type);
    for (int64_t b = 0; b < nbs; b++) {
        ck_prefetch_share(wr + 8 * wrb, 8 * wrb, b0 + b, nb);
        __m256i v[8], q[8];
        __attribute__((aligned(32))) float d[8];
        for (int r = 0; r < 8; r++) {
            const uint8_t *blk = wr + (size_t)r * wrb + (size_t)(b0 + b) * bb;
            v[r] = b32_values(type, blk);
            q[r] = off ? _mm256_add_epi8(v[r], _mm256_set1_epi8((char)off)) : _mm256_sign_epi8(v[r], v[r]);
            uint16_t d16;
            memcpy(&d16, blk, 2);
            d[r] = ck_h2f(d16);
        }
        u->d[b] = _mm256_load_ps(d);
        ck_transpose8_epi32(q);
        for (int k = 0; k < 8; k++) u->q[b][k] = q[k];
        if (!off) {
            ck_transpose8_epi32(v);
            for (int k = 0; k < 8; k++) u->v[b][k] = v[k];
        }
    }
}

/// The eight-row micro-kernel: u's rows against four activation rows a[0..3] (q8_0, at the segment's first block)
/// over nbs blocks. dx: the tokens' block scales ([block][4 tokens]); ao: offset · Σa over each half block
/// ([block][4 tokens][2 halves]; q4_0 / q5_0, and every type in the VNNI builds). acc[c][h] (lane r: row r, token c) gets, per block and half,
/// the same FMA with the same exact int32 sum as lane c + 4h of b32_micro's accumulator, so the results are bit
/// for bit those of the two-row path. Unsigned types add the four maddubs of a half block in int16 (≤ 4·2·31·128).
B32_INLINE void b32_micro8(const b32_rows8 *u, int sgn, const ck_block_q8_0 *const *a, int nc, int64_t nbs, const float *dx,
                          const int32_t *ao, __m256 (*acc)[2]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nbs; b++) {
        for (int h = 0; h < 2; h++) {
            __m256i s[4];
            for (int kk = 0; kk < 4; kk++) {
                const int k = 4 * h + kk;
                const __m256i w = u->q[b][k];
                for (int c = 0; c < nc; c++) {   // tokens nc...3 are padding, never stored
                    const __m256i xv = ck_bcast4(a[c][b].qs + 4 * k);
#ifdef B32_DPBUSD
                    s[c] = B32_DPBUSD(kk == 0 ? _mm256_setzero_si256() : s[c], w, xv);   // offset form, every type
#else
                    if (sgn) {
                        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(w, _mm256_sign_epi8(xv, u->v[b][k])), ones);
                        s[c] = kk == 0 ? p : _mm256_add_epi32(s[c], p);
                    } else {
                        const __m256i p = _mm256_maddubs_epi16(w, xv);
                        s[c] = kk == 0 ? p : _mm256_add_epi16(s[c], p);
                    }
#endif
                }
            }
            for (int c = 0; c < nc; c++) {
#ifdef B32_DPBUSD
                (void)sgn;
                (void)ones;
                const __m256i is = _mm256_sub_epi32(s[c], _mm256_set1_epi32(ao[(b * 4 + c) * 2 + h]));
#else
                const __m256i is = sgn ? s[c]
                    : _mm256_sub_epi32(_mm256_madd_epi16(s[c], ones), _mm256_set1_epi32(ao[(b * 4 + c) * 2 + h]));
#endif
                acc[c][h] = _mm256_fmadd_ps(_mm256_mul_ps(u->d[b], _mm256_set1_ps(dx[b * 4 + c])), _mm256_cvtepi32_ps(is),
                                            acc[c][h]);
            }
        }
    }
}

/// The eight-row path for a tile of one to four tokens: each of the eight rows' blocks is read as it is stored, with
/// no interleaving (b32_unpack8's transposes cost more than so few tokens' products: the GEMM then ran at a third of
/// the few-row kernel's speed, and a prompt step computes every matmul with the GEMM whatever its token count, so a
/// few-token prompt step or an expert with one or two of a step's tokens paid that). Per row and token a block's 32
/// products summed four at a time into int32 lanes (VNNI: one vpdpbusd in offset form; AVX2: maddubs and madd, on
/// the unsigned values of q4_0 / q5_0 or, for q8_0 / iq4_nl, |w| against the activations carrying w's signs), then a
/// reduction tree puts each row's half-block sums in lane r: the same exact int32 half-block sums as b32_micro8
/// (exact integer adds in any order give the same integer) and the same float steps, so the same bits. Blocks
/// [b0, b0 + nbs) of rows wr + i·wrb (i < 8), of nb in all (the next rows are prefetched as b32_unpack8 does); a[c]
/// at block b0; dx, ao as b32_micro8's.
B32_INLINE void b32_small8(int type, const uint8_t *wr, size_t wrb, int64_t b0, int64_t nbs, int64_t nb,
                           const ck_block_q8_0 *const *a, int nc, const float *dx, const int32_t *ao, __m256 (*acc)[2]) {
    const size_t bb = b32_block_bytes(type);
    const int offset = b32_offset(type);
    const __m256i off = _mm256_set1_epi8((char)offset);
#ifndef B32_DPBUSD
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int64_t b = 0; b < nbs; b++) {
        ck_prefetch_share(wr + 8 * wrb, 8 * wrb, b0 + b, nb);
        __m256i q[8];
#ifndef B32_DPBUSD
        __m256i v[8];   // the signed values (q8_0 / iq4_nl: offset 0, the sign trick)
#endif
        uint64_t dh[2] = {0, 0};   // the eight fp16 scales, four per word (integer loads and shifts, one vcvtph2ps)
        for (int r = 0; r < 8; r++) {
            const uint8_t *blk = wr + (size_t)r * wrb + (size_t)(b0 + b) * bb;
#ifdef B32_DPBUSD
            q[r] = _mm256_add_epi8(b32_values(type, blk), off);
#else
            v[r] = b32_values(type, blk);
            q[r] = offset ? _mm256_add_epi8(v[r], off) : _mm256_sign_epi8(v[r], v[r]);
#endif
            uint16_t d16;
            memcpy(&d16, blk, 2);
            dh[r >> 2] |= (uint64_t)d16 << (16 * (r & 3));
        }
        __asm__("" : "+r"(dh[0]), "+r"(dh[1]));   // keeps the words in general registers (no vpinsrw chain)
        const __m256 dw = _mm256_cvtph_ps(_mm_set_epi64x((long long)dh[1], (long long)dh[0]));
        for (int c = 0; c < nc; c++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)a[c][b].qs);
            __m256i s[8];
            for (int r = 0; r < 8; r++) {   // lanes 0-3: half 0, 4-7: half 1
#ifdef B32_DPBUSD
                s[r] = B32_DPBUSD(_mm256_setzero_si256(), q[r], xv);
#else
                s[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], offset ? xv : _mm256_sign_epi8(xv, v[r])), ones);
#endif
            }
            // lo: [r0h0 r1h0 r2h0 r3h0 | r0h1 r1h1 r2h1 r3h1], hi: the same for rows 4...7.
            const __m256i lo = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
            const __m256i hi = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
            const __m256i half[2] = {_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31)};
            for (int h = 0; h < 2; h++) {
                const __m256i is = offset ? _mm256_sub_epi32(half[h], _mm256_set1_epi32(ao[(b * 4 + c) * 2 + h])) : half[h];
                acc[c][h] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(dx[b * 4 + c])), _mm256_cvtepi32_ps(is),
                                            acc[c][h]);
            }
        }
    }
}

/// Group g of the tile of activation rows that starts at t0 (q8_0 rows `xrb` bytes apart, ncols in all): a[c] points
/// at block s0 of its row c (rows past ncols alias the last real one); returns how many of the four are real tokens.
B32_INLINE int b32_group(const uint8_t *xb, size_t xrb, int64_t t0, int64_t g, int64_t ncols, int64_t s0,
                         const ck_block_q8_0 **a) {
    const uint8_t *rows[4];
    ck_tile_group_rows(xb, xrb, t0, g, ncols, rows);
    for (int c = 0; c < 4; c++) a[c] = (const ck_block_q8_0 *)rows[c] + s0;
    return ck_group_tokens(t0, g, ncols);
}

B32_FN void B32_NAME(ck_gemm_block32)(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                  const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    if (type != CK_Q4_0 && type != CK_Q5_0 && type != CK_IQ4_NL && type != CK_Q8_0) return;
    const int64_t nb = n / CK_QK;
    if (nb == 0 || ncols <= 0) return;
    int64_t tile = B32_MAX_SCALES / nb / 4 * 4;
    tile = tile < 4 ? 4 : tile > B32_MAX_TILE ? B32_MAX_TILE : tile;
    if (tile * nb > B32_MAX_SCALES) {   // rows of more than 65,536 elements (no GGUF model has them): the twin
        ck_gemm_block32_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
        return;
    }
    __attribute__((aligned(32))) b32_row u[2];
    __attribute__((aligned(32))) b32_rows8 u8;
    __attribute__((aligned(32))) float dx[B32_MAX_SCALES];   // [group][block][4 tokens]
    int32_t ao[2 * B32_MAX_SCALES];                           // [group][block][4 tokens][2 halves] (offset types)
    const int off = b32_offset(type);
    const uint8_t *wb = w, *xb = x;
    for (int64_t t0 = 0; t0 < ncols; t0 += tile) {
        const int64_t left = ncols - t0;
        const int64_t nt = left < tile ? (left + 3) / 4 * 4 : tile, ng = nt / 4;
        // Tokens past ncols (padding of the last group) alias the last real one and are never stored.
        for (int64_t g = 0; g < ng; g++) {
            const uint8_t *rows[4];
            ck_tile_group_rows(xb, xrb, t0, g, ncols, rows);
            for (int c = 0; c < 4; c++) {
                const ck_block_q8_0 *ab = (const ck_block_q8_0 *)rows[c];
                for (int64_t b = 0; b < nb; b++) {
                    dx[(g * nb + b) * 4 + c] = ck_h2f(ab[b].d);
                    if (!off) continue;
                    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1),
                        _mm256_loadu_si256((const __m256i *)ab[b].qs)), _mm256_set1_epi16(1));
                    __attribute__((aligned(32))) int32_t l[8];
                    _mm256_store_si256((__m256i *)l, s);
                    ao[((g * nb + b) * 4 + c) * 2] = off * (l[0] + l[1] + l[2] + l[3]);
                    ao[((g * nb + b) * 4 + c) * 2 + 1] = off * (l[4] + l[5] + l[6] + l[7]);
                }
            }
        }
        int64_t r = r0;
        for (; r + 8 <= r1; r += 8) {   // eight rows at a time
            __m256 acc[B32_MAX_TILE / 4][4][2];
            for (int64_t g = 0; g < ng; g++)
                for (int c = 0; c < 4; c++) acc[g][c][0] = acc[g][c][1] = _mm256_setzero_ps();
            for (int64_t s0 = 0; s0 < nb; s0 += B32_SEG_BLOCKS) {
                const int64_t nbs = nb - s0 < B32_SEG_BLOCKS ? nb - s0 : B32_SEG_BLOCKS;
                if (ncols - t0 <= B32_SMALL_TOKENS) {   // a tile of one group: the rows as stored
                    for (int64_t g = 0; g < ng; g++) {
                        const ck_block_q8_0 *a[4];
                        const int real = b32_group(xb, xrb, t0, g, ncols, s0, a);
#define B32_SMALL8(N) b32_small8(type, wb + (size_t)r * wrb, wrb, s0, nbs, nb, a, N, dx + (g * nb + s0) * 4, \
                                 ao + (g * nb + s0) * 8, acc[g])
                        CK_BY_GROUP_TOKENS(real, B32_SMALL8);
#undef B32_SMALL8
                    }
                    continue;
                }
                b32_unpack8(type, wb + (size_t)r * wrb, wrb, s0, nbs, nb, &u8);
                for (int64_t g = 0; g < ng; g++) {
                    const ck_block_q8_0 *a[4];
                    const int real = b32_group(xb, xrb, t0, g, ncols, s0, a);
                    const float *dxs = dx + (g * nb + s0) * 4;
                    const int32_t *aos = ao + (g * nb + s0) * 8;
#define B32_MICRO8(N) do { if (off) b32_micro8(&u8, 0, a, N, nbs, dxs, aos, acc[g]); \
                           else b32_micro8(&u8, 1, a, N, nbs, dxs, aos, acc[g]); } while (0)
                    CK_BY_GROUP_TOKENS(real, B32_MICRO8);
#undef B32_MICRO8
                }
            }
            ck_tile8_store(acc, ng, t0, ncols, r, y, ys);
        }
        for (; r < r1; r += 2) {
            const int mr = r + 1 < r1 ? 2 : 1;
            __m256 acc[B32_MAX_TILE / 4][2];
            for (int64_t g = 0; g < ng; g++) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
            for (int64_t s0 = 0; s0 < nb; s0 += B32_SEG_BLOCKS) {
                const int64_t nbs = nb - s0 < B32_SEG_BLOCKS ? nb - s0 : B32_SEG_BLOCKS;
                for (int i = 0; i < mr; i++) b32_unpack(type, wb + (size_t)(r + i) * wrb, s0, nbs, &u[i]);
                for (int64_t g = 0; g < ng; g++) {
                    const ck_block_q8_0 *a[4];
                    const int real = b32_group(xb, xrb, t0, g, ncols, s0, a);
#define B32_MICRO(N) do { if (mr == 2) b32_micro(u, 2, a, N, nbs, dx + (g * nb + s0) * 4, acc[g]); \
                          else b32_micro(u, 1, a, N, nbs, dx + (g * nb + s0) * 4, acc[g]); } while (0)
                    CK_BY_GROUP_TOKENS(real, B32_MICRO);
#undef B32_MICRO
                }
            }
            ck_tile_store(acc, ng, mr, t0, ncols, r, y, ys);
        }
    }
}

#else  // not x86-64: the dispatcher never selects it; keep the symbol so the module links.
void B32_NAME(ck_gemm_block32)(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                               const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    ck_gemm_block32_ref(type, w, wrb, n, r0, r1, x, xrb, ncols, y, ys);
}
#endif
