// AVX512-VNNI GEMMs over q4_1 and q8_0 weights repacked in groups of 8 rows with 4-byte interleaving (layouts:
// include/ckernels.h; repacks and scalar twins: ref/gemm_x8.c): for Intel Ice Lake / Sapphire Rapids servers on and
// AMD Zen 4 on. Selected at run time (dispatch.c) when CPUID reports AVX512 F + BW + VL + VNNI.
//
// Row groups go two at a time: a 512-bit vector holds word k of group g in its low half and of group g + 1 in its
// high half, so one vpdpbusd against four broadcast activation bytes leaves the partial sums of rows r...r+15 in
// lanes 0...15. A tile is 16 rows × up to 8 tokens (16 + 16 of the 32 vector registers for the int32 block sums and
// the float accumulators), for passes of 8 tokens or more. A row group left over, and every pass of fewer tokens
// (decode at batch sizes 1–7: one stream of weights reads faster from DRAM), go through the 8-row tiles of
// gemm_x8_tiles.h, built here with the EVEX 256-bit vpdpbusd (AVX512-VL), since AVX512-VNNI CPUs need not have
// AVX-VNNI's VEX form (Zen 4 has not).
//
// Each (row, token) output is the same exact int32 block sum followed by the same float operations in the same
// order as in the AVX2 and AVX-VNNI tiles, so all three are bit-identical and batch-invariant.
//
// Measured (one thread, this project's Xeon host, 2026-12-06; scratch harness against the AVX2 pair in the same
// process): q4_1 1536 × 576 and 576 × 1536 at 8 tokens 79–86 → 172–175 GMAC/s, at 16 tokens 84 → 165; one token
// 50 → 65 with the weights in L2. From DRAM on Zen 4 the 16-row tiles read one token's weights at half the 8-row
// tiles' rate, hence the 8-token threshold (BENCHMARKS.md, "2026-12-06 18:47–19:16").
#include "ckernels.h"
#include "../internal.h"

#if defined(__x86_64__)
#include "avx2_common.h"

/// Prefetch distance of the 16-row tiles here and of the 8-row tiles of gemm_x8_tiles.h (see ck_prefetch_ahead).
#define CK_X8_PREFETCH 4096

#define CK_Z_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
/// An always-inlined helper compiled for AVX2 + AVX512 F/BW/VL/VNNI.
#define CK_Z_INLINE static inline __attribute__((always_inline, target(CK_Z_TARGET)))

/// Word `off` (32 bytes) of two row groups' blocks: group g in the low half, group g + 1 in the high half.
CK_Z_INLINE __m512i ck_z_pair(const uint8_t *b0, const uint8_t *b1, size_t off) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + off))),
                              _mm256_loadu_si256((const __m256i *)(b1 + off)), 1);
}

/// Eight fp16 scales at `off` of each of two blocks as sixteen floats (group g's rows in lanes 0...7).
CK_Z_INLINE __m512 ck_z_scales(const uint8_t *b0, const uint8_t *b1, size_t off) {
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + off))),
                                                   _mm_loadu_si128((const __m128i *)(b1 + off)), 1));
}

/// Four activation bytes q[0..3] in every 32-bit lane of a 512-bit vector.
CK_Z_INLINE __m512i ck_z_bcast4(const int8_t *q) {
    int32_t v;
    __builtin_memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/// One 16-row × NC-token q4_1 tile (NC ≤ 8): row groups g0 and g0 + 1 (blocks at grp and grp + nb · 160), tokens
/// c0...c0+NC-1; y[(c0+q)*ys + r + i] for i in 0...15. The float steps are q4_1_x8_tile's, lane by lane.
CK_Z_INLINE void q4_1_x16_tile(const uint8_t *grp, int64_t nb, const char *x, size_t xrb, const float *ds, int64_t c0,
                               const int NC, float *y, int64_t ys, int64_t r) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const ck_block_q8_1 *a[8];
    __m512 acc[8];
    for (int q = 0; q < NC; q++) {
        a[q] = (const ck_block_q8_1 *)(x + (size_t)(c0 + q) * xrb);
        acc[q] = _mm512_setzero_ps();
    }
    const uint8_t *grp1 = grp + (size_t)nb * 160;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *b0 = grp + (size_t)b * 160, *b1 = grp1 + (size_t)b * 160;
        ck_prefetch_ahead(b0, 160, CK_X8_PREFETCH);
        ck_prefetch_ahead(b1, 160, CK_X8_PREFETCH);
        const __m512 dv = ck_z_scales(b0, b1, 0), mv = ck_z_scales(b0, b1, 16);
        __m512i s[8];
        _Pragma("clang loop unroll(full)")
        for (int k = 0; k < 4; k++) {
            const __m512i v = ck_z_pair(b0, b1, 32 + 32 * (size_t)k);
            const __m512i lo = _mm512_and_si512(v, m4);                         // elements 4k..4k+3 of each row
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);   // elements 16+4k..16+4k+3
            _Pragma("clang loop unroll(full)")
            for (int q = 0; q < NC; q++) {
                const int8_t *qa = a[q][b].qs;
                const __m512i t = _mm512_dpbusd_epi32(k == 0 ? _mm512_setzero_si512() : s[q], lo, ck_z_bcast4(qa + 4 * k));
                s[q] = _mm512_dpbusd_epi32(t, hi, ck_z_bcast4(qa + 16 + 4 * k));
            }
        }
        _Pragma("clang loop unroll(full)")
        for (int q = 0; q < NC; q++) {
            const float *dsq = ds + ((c0 + q) * nb + b) * 2;   // the token's block scale d and sum s as float
            acc[q] = _mm512_fmadd_ps(_mm512_mul_ps(dv, _mm512_set1_ps(dsq[0])), _mm512_cvtepi32_ps(s[q]), acc[q]);
            acc[q] = _mm512_fmadd_ps(mv, _mm512_set1_ps(dsq[1]), acc[q]);
        }
    }
    for (int q = 0; q < NC; q++) _mm512_storeu_ps(y + (c0 + q) * ys + r, acc[q]);
}

/// One 16-row × NC-token q8_0 tile (NC ≤ 8): the offset form of q8_0_x8_tile (gemm_x8_tiles.h): each weight word is
/// made w + 128 once per block, vpdpbusd adds (w + 128)·a into int32 sums that start at −128·Σa (stored after the
/// token's scale in ds), the same exact Σ w·a; the float steps are q8_0_x8_tile's, lane by lane.
CK_Z_INLINE void q8_0_x16_tile(const uint8_t *grp, int64_t nb, const char *x, size_t xrb, const float *ds, int64_t c0,
                               const int NC, float *y, int64_t ys, int64_t r) {
    const ck_block_q8_0 *a[8];
    __m512 acc[8];
    for (int q = 0; q < NC; q++) {
        a[q] = (const ck_block_q8_0 *)(x + (size_t)(c0 + q) * xrb);
        acc[q] = _mm512_setzero_ps();
    }
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const uint8_t *grp1 = grp + (size_t)nb * 272;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *b0 = grp + (size_t)b * 272, *b1 = grp1 + (size_t)b * 272;
        ck_prefetch_ahead(b0, 272, CK_X8_PREFETCH);
        ck_prefetch_ahead(b1, 272, CK_X8_PREFETCH);
        const __m512 dv = ck_z_scales(b0, b1, 0);
        __m512i isum[8];
        _Pragma("clang loop unroll(full)")
        for (int q = 0; q < NC; q++) isum[q] = _mm512_set1_epi32(ck_x8_q8_offset(ds, (c0 + q) * nb + b));
        _Pragma("clang loop unroll(full)")
        for (int k = 0; k < 8; k++) {
            const __m512i wu = _mm512_xor_si512(ck_z_pair(b0, b1, 16 + 32 * (size_t)k), bias);   // elements 4k..4k+3
            _Pragma("clang loop unroll(full)")
            for (int q = 0; q < NC; q++) isum[q] = _mm512_dpbusd_epi32(isum[q], wu, ck_z_bcast4(a[q][b].qs + 4 * k));
        }
        _Pragma("clang loop unroll(full)")
        for (int q = 0; q < NC; q++)
            acc[q] = _mm512_fmadd_ps(_mm512_mul_ps(dv, _mm512_set1_ps(ds[((c0 + q) * nb + b) * 2])), _mm512_cvtepi32_ps(isum[q]), acc[q]);
    }
    for (int q = 0; q < NC; q++) _mm512_storeu_ps(y + (c0 + q) * ys + r, acc[q]);
}

/// Defines FMT_x16_rows: rows r...r+15 of a repacked FMT matrix (blocks of BLOCK_BYTES per row group) × `ncols`
/// tokens, scales in ds as in the 8-row passes of gemm_x8_tiles.h, which call it.
#define CK_Z_ROWS(FMT, BLOCK_BYTES)                                                                                    \
    __attribute__((target(CK_Z_TARGET))) static void FMT##_x16_rows(const void *wp, int64_t nb, const char *xb,       \
                                                                     size_t xrb, int64_t ncols, float *y, int64_t ys, \
                                                                     const float *ds, int64_t r) {                    \
        const uint8_t *grp = (const uint8_t *)wp + (size_t)(r / 8) * (size_t)nb * (BLOCK_BYTES);                       \
        CK_TOKEN_TILES(ncols, 1, CK_Z_TILE_##FMT);                                                                     \
    }
#define CK_Z_TILE_q4_1(c, NC) q4_1_x16_tile(grp, nb, xb, xrb, ds, c, NC, y, ys, r)
#define CK_Z_TILE_q8_0(c, NC) q8_0_x16_tile(grp, nb, xb, xrb, ds, c, NC, y, ys, r)
CK_Z_ROWS(q4_1, 160)
CK_Z_ROWS(q8_0, 272)

#define CK_X8_PAIRS 1
#endif

#define CK_X8_NAME(f) f##_avx512vnni
#define CK_X8_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define CK_X8_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define CK_X8_DPBUSD _mm256_dpbusd_epi32
#define CK_X8_Q8_TOKENS 8
#include "gemm_x8_tiles.h"
