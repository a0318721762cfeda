// The tile, pass and entry functions of the eight-row GEMMs over repacked q4_1 and q8_0 weights (layouts:
// include/ckernels.h; repacks and scalar twins: ref/gemm_x8.c), included once per instruction set, each time with:
//   CK_X8_NAME(f)     the entry points' names (f ## _avx2, f ## _avxvnni, f ## _avx512vnni);
//   CK_X8_FN          the attribute of a function compiled for the set (target features);
//   CK_X8_INLINE      the same for an always-inlined helper;
//   CK_X8_DPBUSD      if defined, the 256-bit vpdpbusd intrinsic (AVX-VNNI's VEX form or AVX512-VNNI's EVEX form), which
//                     multiplies unsigned by signed bytes and adds four products into each int32 lane of the
//                     accumulator in one instruction; left undefined: AVX2 maddubs (int16 pair sums) widened with madd;
//   CK_X8_Q8_TOKENS   the widest q8_0 tile in tokens (4, or 8 where VNNI frees the registers that madd's constant and
//                     the int16 partial sums took);
//   CK_X8_PAIRS       if defined, the includer has defined q4_1_x16_rows and q8_0_x16_rows (same arguments as the
//                     tiles' passes, for rows r...r+15 and all tokens), which take row groups two at a time in passes
//                     of at least 8 tokens; the 8-row tiles here take a group left over and every pass of fewer
//                     tokens (see CK_X8_PAIR_ROWS);
//   CK_X8_PREFETCH    if defined, how many bytes ahead of the block in use the tiles prefetch (default 2048).
// Every build computes the same exact integer block sums (no int16 saturation is reachable: see the tiles) and the
// same float steps in the same order, so their results are bit-identical to each other and batch-invariant.
// A tile is 8 weight rows × up to 8 (q4_1) or CK_X8_Q8_TOKENS (q8_0) activation rows (tokens): each weight block is
// loaded and unpacked once per tile, and each token's activation block (quantized once per matmul call) is read as
// 4-byte broadcasts. With the rows interleaved 4 bytes at a time, a byte dot product leaves row i's partial sums in
// 32-bit lane i, so the eight per-row dot products of a block come out in row order with no horizontal adds.
#if defined(__x86_64__)
#include "avx2_common.h"
#include <string.h>

#ifndef CK_X8_PREFETCH
#define CK_X8_PREFETCH 2048
#endif

/// Floats per token and block that a q8_0 pass keeps in its scale buffer: the scale d, and in VNNI builds the int32
/// −128·Σa beside it (see q8_0_x8_tile).
#ifdef CK_X8_DPBUSD
#define CK_X8_Q8_SCALES 2
#else
#define CK_X8_Q8_SCALES 1
#endif

/// Unrolls a loop over the tokens of a tile, so their accumulators stay in registers.
#define CK_UNROLL_TOKENS _Pragma("clang loop unroll(full)")

/// Rows [r0, r1) of a pass (`wp`, `nb`, `xb`, `xrb`, `ncols`, `y`, `ys`, `ds` in scope): pairs of row groups through
/// FMT_x16_rows where the includer has them (CK_X8_PAIRS), then one group at a time through FMT_x8_tile, in token
/// tiles of 8 (when EIGHT), 4 and a tail; BLOCK_BYTES per row group and block.
/// Pairs of row groups only for passes of 8 tokens or more: with fewer, each block's multiply-adds are too few to hide
/// two streams of weights from DRAM, and on Zen 4 (512-bit operations issued as two 256-bit halves) the one-stream
/// 8-row tiles read them faster (two threads, 48 q4_1 matrices of 1,536 × 576 each, 70 MB: one token 17 → 34 GB/s,
/// four tokens 95 → 175 GMAC/s; BENCHMARKS.md, "2026-12-06 18:47–19:16").
#ifdef CK_X8_PAIRS
#define CK_X8_PAIR_ROWS(FMT)                                                                                       \
    if (ncols >= 8)                                                                                                \
        for (; r + 16 <= r1; r += 16) FMT##_x16_rows(wp, nb, xb, xrb, ncols, y, ys, ds, r);
#else
#define CK_X8_PAIR_ROWS(FMT)
#endif
#define CK_X8_ROW_GROUPS(FMT, BLOCK_BYTES, EIGHT)                                                                   \
    do {                                                                                                           \
        int64_t r = r0;                                                                                            \
        CK_X8_PAIR_ROWS(FMT)                                                                                       \
        for (; r < r1; r += 8) {                                                                                   \
            const uint8_t *grp = (const uint8_t *)wp + (size_t)(r / 8) * (size_t)nb * (BLOCK_BYTES);               \
            CK_TOKEN_TILES(ncols, EIGHT, CK_X8_TILE_##FMT);                                                        \
        }                                                                                                          \
    } while (0)
#define CK_X8_TILE_q4_1(c, NC) q4_1_x8_tile(grp, nb, xb, xrb, ds, c, NC, y, ys, r)
#define CK_X8_TILE_q8_0(c, NC) q8_0_x8_tile(grp, nb, xb, xrb, ds, c, NC, y, ys, r)

/// The body of an entry point: the tokens in passes of as many as the 16 KiB stack buffer of their block scales
/// (SCALES floats per token and block) holds, each through FMT_x8_cols; rows too wide for one token's scales (past
/// 131072 / SCALES elements: no GGUF model has them) go to the scalar twin.
#define CK_X8_PASSES(FMT, SCALES)                                                                                   \
    do {                                                                                                           \
        const int64_t nb = n / CK_QK;                                                                              \
        float ds[CK_X8_SCALES];                                                                                    \
        const int64_t per = CK_X8_SCALES / (nb * (SCALES));                                                        \
        if (per == 0) {                                                                                            \
            ck_matmul_##FMT##_x8_ref(wp, n, r0, r1, x, xrb, ncols, y, ys);                                         \
            return;                                                                                                \
        }                                                                                                          \
        for (int64_t c = 0; c < ncols; c += per)                                                                   \
            FMT##_x8_cols(wp, nb, r0, r1, (const char *)x + (size_t)c * xrb, xrb, ncols - c < per ? ncols - c : per, \
                          y + c * ys, ys, ds);                                                                     \
    } while (0)

/// The start of a tile over tokens c0...c0+NC-1 (NC ≤ 8) of activation rows of BLOCK_T blocks: `a[q]` the token's
/// blocks, `acc[q]` its eight row sums, zeroed.
#define CK_X8_TILE_TOKENS(BLOCK_T)                                                                                  \
    const BLOCK_T *a[8];                                                                                           \
    __m256 acc[8];                                                                                                 \
    for (int q = 0; q < NC; q++) {                                                                                 \
        a[q] = (const BLOCK_T *)(x + (size_t)(c0 + q) * xrb);                                                      \
        acc[q] = _mm256_setzero_ps();                                                                              \
    }

/// One 8-row × NC-token tile (NC ≤ 8) over all nb blocks of row group `grp`; tokens c0..c0+NC-1; y[(c0+q)*ys + r + i].
/// AVX2: integer sums stay in int16 for a whole block: |each maddubs lane| ≤ 2·15·127 and eight are added (≤ 30480);
/// VNNI: they are int32 from the start.
/// Word by word (k outer, tokens inner), so each unpacked weight word serves up to eight tokens: eight tokens per
/// tile ran 1.06–1.09× the four of before (84 → 89–91 GMAC/s, one thread, 1536 × 576 and 576 × 1536 at 8 and 16
/// tokens), with the same integer sums and float steps per token.
CK_X8_INLINE void q4_1_x8_tile(const uint8_t *grp, int64_t nb, const char *x, size_t xrb, const float *ds, int64_t c0,
                            const int NC, float *y, int64_t ys, int64_t r) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
#ifndef CK_X8_DPBUSD
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    CK_X8_TILE_TOKENS(ck_block_q8_1)
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * 160;
        ck_prefetch_ahead(blk, 160, CK_X8_PREFETCH);
        const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        const __m256 mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16)));
        __m256i s[8];
        _Pragma("clang loop unroll(full)")
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 32 + 32 * k));
            const __m256i lo = _mm256_and_si256(v, m4);                         // elements 4k..4k+3 of each row
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);   // elements 16+4k..16+4k+3
            CK_UNROLL_TOKENS
            for (int q = 0; q < NC; q++) {
                const int8_t *qa = a[q][b].qs;
#ifdef CK_X8_DPBUSD
                const __m256i t = CK_X8_DPBUSD(k == 0 ? _mm256_setzero_si256() : s[q], lo, ck_bcast4(qa + 4 * k));
                s[q] = CK_X8_DPBUSD(t, hi, ck_bcast4(qa + 16 + 4 * k));
#else
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ck_bcast4(qa + 4 * k)),
                                                   _mm256_maddubs_epi16(hi, ck_bcast4(qa + 16 + 4 * k)));
                s[q] = k == 0 ? p : _mm256_add_epi16(s[q], p);
#endif
            }
        }
        CK_UNROLL_TOKENS
        for (int q = 0; q < NC; q++) {
#ifdef CK_X8_DPBUSD
            const __m256i isum = s[q];                                     // row i's block dot in lane i
#else
            const __m256i isum = _mm256_madd_epi16(s[q], ones);            // row i's block dot in lane i
#endif
            const float *dsq = ds + ((c0 + q) * nb + b) * 2;   // the token's block scale d and sum s as float
            acc[q] = _mm256_fmadd_ps(_mm256_mul_ps(dv, _mm256_broadcast_ss(dsq)), _mm256_cvtepi32_ps(isum), acc[q]);
            acc[q] = _mm256_fmadd_ps(mv, _mm256_broadcast_ss(dsq + 1), acc[q]);
        }
    }
    for (int q = 0; q < NC; q++) _mm256_storeu_ps(y + (c0 + q) * ys + r, acc[q]);
}

/// Floats of the stack buffer holding the activation scales of a pass over tokens (see q4_1_x8_cols).
enum { CK_X8_SCALES = 4096 };

/// Rows [r0, r1) × `ncols` tokens: first the tokens' q8_1 block scales d and sums s as floats into
/// ds `[ncols, nb, 2]` (once per pass instead of once per row group; F16C conversion is exact, so results are
/// unchanged), then the 8 × 4 tiles.
CK_X8_FN static void q4_1_x8_cols(const void *wp, int64_t nb, int64_t r0, int64_t r1, const char *xb, size_t xrb,
                                 int64_t ncols, float *y, int64_t ys, float *ds) {
    for (int64_t c = 0; c < ncols; c++) {
        const ck_block_q8_1 *a = (const ck_block_q8_1 *)(xb + (size_t)c * xrb);
        for (int64_t b = 0; b < nb; b++) {
            ds[(c * nb + b) * 2] = ck_h2f(a[b].d);
            ds[(c * nb + b) * 2 + 1] = ck_h2f(a[b].s);
        }
    }
    CK_X8_ROW_GROUPS(q4_1, 160, 1);
}

CK_X8_FN void CK_X8_NAME(ck_matmul_q4_1_x8)(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
                                   int64_t ncols, float *y, int64_t ys) {
    CK_X8_PASSES(q4_1, 2);   // scale d and sum s per token and block
}

/// q8_0: the same tiling. The byte dot products need an unsigned operand.
/// - VNNI: each weight word is offset to w + 128 (one xor per word and block) and vpdpbusd adds (w + 128)·a into
///   int32 sums that start at −128·Σa, the token's block sum that q8_0_x8_cols stores beside its scale: the same
///   exact Σ w·a, with one instruction per word and token where the sign form below took three (Zen 4, AVX512-VNNI,
///   two threads, 16 tokens: 160–172 → 184–217 GMAC/s; BENCHMARKS.md, "2026-12-06 18:47–19:16").
/// - AVX2: maddubs pairs of (w + 128)·a would saturate int16, so each weight word is made |w| once per block and its
///   signs moved onto the broadcast activations (|w|·sign(a, w) = w·a); two maddubs lanes (≤ 2·127·127) cannot share
///   an int16 either, so each word's sums are widened with madd and added in int32.
CK_X8_INLINE void q8_0_x8_tile(const uint8_t *grp, int64_t nb, const char *x, size_t xrb, const float *ds, int64_t c0,
                            const int NC, float *y, int64_t ys, int64_t r) {
#ifdef CK_X8_DPBUSD
    const __m256i bias = _mm256_set1_epi8((char)0x80);
#else
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    CK_X8_TILE_TOKENS(ck_block_q8_0)   // NC ≤ CK_X8_Q8_TOKENS
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * 272;
        ck_prefetch_ahead(blk, 272, CK_X8_PREFETCH);
        const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        // Word by word (k outer, tokens inner): one weight word and its |w| (VNNI: w + 128) live at a time beside the
        // NC int32 sums, where loading all eight words and their |w| first (16 registers) spilled; 1.27× on a 49152 × 576
        // head at 16 tokens, one thread (43 → 54 GMAC/s), with the same integer sums and float steps.
        __m256i isum[8];
        CK_UNROLL_TOKENS
        for (int q = 0; q < NC; q++)
#ifdef CK_X8_DPBUSD
            isum[q] = _mm256_set1_epi32(ck_x8_q8_offset(ds, (c0 + q) * nb + b));
#else
            isum[q] = _mm256_setzero_si256();
#endif
        _Pragma("clang loop unroll(full)")
        for (int k = 0; k < 8; k++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * k));   // elements 4k..4k+3 of each row
#ifdef CK_X8_DPBUSD
            const __m256i wu = _mm256_xor_si256(w, bias);
            CK_UNROLL_TOKENS
            for (int q = 0; q < NC; q++) isum[q] = CK_X8_DPBUSD(isum[q], wu, ck_bcast4(a[q][b].qs + 4 * k));
#else
            const __m256i aw = _mm256_sign_epi8(w, w);
            CK_UNROLL_TOKENS
            for (int q = 0; q < NC; q++)
                isum[q] = _mm256_add_epi32(isum[q], _mm256_madd_epi16(
                    _mm256_maddubs_epi16(aw, _mm256_sign_epi8(ck_bcast4(a[q][b].qs + 4 * k), w)), ones));
#endif
        }
        CK_UNROLL_TOKENS
        for (int q = 0; q < NC; q++)
            acc[q] = _mm256_fmadd_ps(_mm256_mul_ps(dv, _mm256_broadcast_ss(ds + ((c0 + q) * nb + b) * CK_X8_Q8_SCALES)),
                                     _mm256_cvtepi32_ps(isum[q]), acc[q]);
    }
    for (int q = 0; q < NC; q++) _mm256_storeu_ps(y + (c0 + q) * ys + r, acc[q]);
}

/// Rows [r0, r1) × `ncols` tokens, the tokens' q8_0 block scales first converted into ds `[ncols, nb,
/// CK_X8_Q8_SCALES]` (VNNI builds: each scale followed by the bits of the int32 −128·Σa of the block's values).
CK_X8_FN static void q8_0_x8_cols(const void *wp, int64_t nb, int64_t r0, int64_t r1, const char *xb, size_t xrb,
                                 int64_t ncols, float *y, int64_t ys, float *ds) {
    for (int64_t c = 0; c < ncols; c++) {
        const ck_block_q8_0 *a = (const ck_block_q8_0 *)(xb + (size_t)c * xrb);
        for (int64_t b = 0; b < nb; b++) {
            ds[(c * nb + b) * CK_X8_Q8_SCALES] = ck_h2f(a[b].d);
#ifdef CK_X8_DPBUSD
            int32_t sum = 0;
            for (int i = 0; i < CK_QK; i++) sum += a[b].qs[i];
            const int32_t offset = -128 * sum;
            memcpy(ds + (c * nb + b) * 2 + 1, &offset, sizeof offset);
#endif
        }
    }
    CK_X8_ROW_GROUPS(q8_0, 272, CK_X8_Q8_TOKENS == 8);
}

CK_X8_FN void CK_X8_NAME(ck_matmul_q8_0_x8)(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
                                   int64_t ncols, float *y, int64_t ys) {
    CK_X8_PASSES(q8_0, CK_X8_Q8_SCALES);   // scale d (VNNI: and −128·Σa) per token and block
}

#undef CK_UNROLL_TOKENS
#undef CK_X8_TILE_TOKENS
#undef CK_X8_PASSES
#undef CK_X8_PAIR_ROWS
#undef CK_X8_ROW_GROUPS
#undef CK_X8_TILE_q4_1
#undef CK_X8_TILE_q8_0
#undef CK_X8_Q8_SCALES

#else  // not x86-64: the dispatcher never selects these; keep the symbols so the module links.
void CK_X8_NAME(ck_matmul_q4_1_x8)(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
                                  int64_t ncols, float *y, int64_t ys) {
    ck_matmul_q4_1_x8_ref(wp, n, r0, r1, x, xrb, ncols, y, ys);
}
void CK_X8_NAME(ck_matmul_q8_0_x8)(const void *wp, int64_t n, int64_t r0, int64_t r1, const void *x, size_t xrb,
                                  int64_t ncols, float *y, int64_t ys) {
    ck_matmul_q8_0_x8_ref(wp, n, r0, r1, x, xrb, ncols, y, ys);
}
#endif
