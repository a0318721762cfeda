// Helpers shared by the AVX2 translation units (x86-64 only; not part of the public module).
#ifndef SPUTNIK_CKERNELS_AVX2_COMMON_H
#define SPUTNIK_CKERNELS_AVX2_COMMON_H
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

/// A function compiled for AVX2 + FMA + F16C (selected at run time by CPUID, see dispatch.c).
#define CK_AVX2 __attribute__((target("avx2,fma,f16c")))
/// An always-inlined helper compiled for the same features.
#define CK_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/// Software prefetch distances, bytes ahead of the weight block being read, of the few-row kernels that stream
/// weights from DRAM (decode; an expert's few tokens): into L1 (CK_STREAM_PREFETCH) and into L2
/// (CK_STREAM_PREFETCH_L2). On a Zen 4 EPYC, 1 KiB / 4 KiB (the values tuned earlier on a Xeon) left each thread's
/// stream latency-bound: Qwen2.5-Coder-1.5B Q4_K_M tg64 on two threads went 24.7–28.7 → 31.6–36.3 t/s with 4 KiB /
/// 16 KiB, and 8 KiB / 32 KiB, 2 KiB / 16 KiB and 4 KiB / 8 KiB were no better (BENCHMARKS.md, "2026-12-07 05:55").
#ifndef CK_STREAM_PREFETCH
#define CK_STREAM_PREFETCH 4096
#endif
#ifndef CK_STREAM_PREFETCH_L2
#define CK_STREAM_PREFETCH_L2 16384
#endif

/// Sum of the 8 lanes.
CK_INLINE float ck_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// IEEE binary16 → float (F16C).
CK_INLINE float ck_h2f(uint16_t h) { return _cvtsh_ss(h); }

/// acc + the four blocks' dot products, for blocks of 32 whose exact int32 partial sums are p0...p3 (eight lanes
/// each), weight scales dw0...dw3 and activation scales dx0...dx3 (fp16 bits): two hadds fold the sums into one
/// vector (lanes k and k + 4: block k) and one FMA applies the four d_w·d_x at once. Used by the four-blocks-per-
/// step q5_0 and iq4_nl dot products (each with its one-block form for the tail).
CK_INLINE __m256 ck_acc_blocks4(__m256 acc, __m256i p0, __m256i p1, __m256i p2, __m256i p3, uint16_t dw0, uint16_t dw1,
                                uint16_t dw2, uint16_t dw3, uint16_t dx0, uint16_t dx1, uint16_t dx2, uint16_t dx3) {
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16((short)dw0, (short)dw1, (short)dw2, (short)dw3, 0, 0, 0, 0));
    const __m128 dx = _mm_cvtph_ps(_mm_setr_epi16((short)dx0, (short)dx1, (short)dx2, (short)dx3, 0, 0, 0, 0));
    const __m128 d = _mm_mul_ps(dw, dx);
    return _mm256_fmadd_ps(_mm256_set_m128(d, d), _mm256_cvtepi32_ps(s), acc);
}

/// Byte i = 0xFF when bit i of the 32-bit little-endian word at qh4 is set, else 0 (q5_0 / q5_1 fifth bits).
CK_INLINE __m256i ck_bit_bytes(const uint8_t *qh4) {
    uint32_t bits;
    __builtin_memcpy(&bits, qh4, 4);
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    const __m256i mask = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
}

/// The eight 6-bit scales (bytes 0..7 of *sc) and mins (*mn) of a q4_K/q5_K `scales[12]` (layout in
/// ref/formats.c, ck_k_scale_min), with 32-bit operations on the three 4-byte words.
CK_INLINE void ck_kq_scales45(const uint8_t *s12, uint64_t *sc, uint64_t *mn) {
    uint32_t a, b, c;
    __builtin_memcpy(&a, s12, 4);
    __builtin_memcpy(&b, s12 + 4, 4);
    __builtin_memcpy(&c, s12 + 8, 4);
    const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
    const uint32_t sc_hi = (c & lo4) | (((a >> 6) & lo2) << 4);
    const uint32_t mn_hi = ((c >> 4) & lo4) | (((b >> 6) & lo2) << 4);
    *sc = (uint64_t)(a & lo6) | (uint64_t)sc_hi << 32;
    *mn = (uint64_t)(b & lo6) | (uint64_t)mn_hi << 32;
}

/// Runs the tiles of a GEMM over tokens [0, ncols): TILE(c, NC) for tiles of 8 tokens (when `eight`), then of 4, then
/// one tail of 3, 2 or 1, each NC a constant so that the tile's loops over its tokens unroll and its accumulators
/// stay in registers.
#define CK_TOKEN_TILES(ncols, eight, TILE)                                                                          \
    do {                                                                                                            \
        int64_t c_ = 0;                                                                                             \
        if (eight)                                                                                                  \
            for (; c_ + 8 <= (ncols); c_ += 8) TILE(c_, 8);                                                         \
        for (; c_ + 4 <= (ncols); c_ += 4) TILE(c_, 4);                                                             \
        switch ((ncols) - c_) {                                                                                     \
        case 3: TILE(c_, 3); break;                                                                                 \
        case 2: TILE(c_, 2); break;                                                                                 \
        case 1: TILE(c_, 1); break;                                                                                 \
        default: break;                                                                                             \
        }                                                                                                           \
    } while (0)

/// Four activation bytes q[0..3] in every 32-bit lane (the x8 and eight-row GEMM micro-kernels).
CK_INLINE __m256i ck_bcast4(const int8_t *q) {
    int32_t v;
    __builtin_memcpy(&v, q, 4);
    return _mm256_set1_epi32(v);
}

/// The int32 stored (as its bits) after the scale of entry `i` of a q8_0 pass's scale buffer in the VNNI builds of the
/// eight-row GEMMs (x86/gemm_x8_tiles.h, q8_0_x8_cols): −128 × the sum of the activation block's values.
CK_INLINE int32_t ck_x8_q8_offset(const float *ds, int64_t i) {
    int32_t v;
    __builtin_memcpy(&v, ds + i * 2 + 1, 4);
    return v;
}

/// In-register transpose of an 8 × 8 matrix of 32-bit words: v[i] lane k becomes v[k] lane i (the eight-row GEMM
/// micro-kernels interleave eight weight rows with it).
CK_INLINE void ck_transpose8_epi32(__m256i *v) {
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
        v[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
    }
}

/// Stores the results of a GEMM tile's groups: acc[g][i] holds weight row r + i for tokens t0 + 4g + k in lanes k
/// and k + 4 (partial sums, added here); tokens past ncols are not stored. y[t * y_stride + row].
CK_INLINE void ck_tile_store(__m256 (*acc)[2], int64_t ng, int mr, int64_t t0, int64_t ncols, int64_t r, float *y,
                             int64_t y_stride) {
    for (int64_t g = 0; g < ng; g++)
        for (int i = 0; i < mr; i++) {
            __attribute__((aligned(32))) float v[8];
            _mm256_store_ps(v, acc[g][i]);
            for (int c = 0; c < 4; c++) {
                const int64_t t = t0 + 4 * g + c;
                if (t < ncols) y[t * y_stride + r + i] = v[c] + v[c + 4];
            }
        }
}

/// Stores the results of an eight-row GEMM tile: acc[g][c][h] (lane i: weight row r + i) holds token t0 + 4g + c's two
/// half sums, added here; tokens past ncols are not stored. y[t * y_stride + row].
CK_INLINE void ck_tile8_store(__m256 (*acc)[4][2], int64_t ng, int64_t t0, int64_t ncols, int64_t r, float *y,
                              int64_t y_stride) {
    for (int64_t g = 0; g < ng; g++)
        for (int c = 0; c < 4; c++) {
            const int64_t t = t0 + 4 * g + c;
            if (t < ncols) _mm256_storeu_ps(y + t * y_stride + r, _mm256_add_ps(acc[g][c][0], acc[g][c][1]));
        }
}

/// Prefetches every cache line of [p, p + bytes) into L1, or into L2 when `l2` (a constant after inlining).
/// Prefetches past the end of a mapping do not fault.
CK_INLINE void ck_prefetch_range(const void *p, size_t bytes, int l2) {
    const uintptr_t end = (uintptr_t)p + bytes;
    for (uintptr_t a = (uintptr_t)p & ~(uintptr_t)63; a < end; a += 64) {
        if (l2) _mm_prefetch((const char *)a, _MM_HINT_T1);
        else _mm_prefetch((const char *)a, _MM_HINT_T0);
    }
}

/// Prefetches into L1 the `bytes` bytes that start `ahead` bytes after `p`: the repacked x8 GEMMs walk one row group's
/// blocks in order and then the next group's, a single stream that the hardware prefetchers alone served at memory
/// latency (q4_1, 1,536 × 576 from DRAM on both threads, eight tokens, 2 KiB ahead: 64–70 → 86–93 GMAC/s per thread;
/// one token 14 → 19; 1 KiB ahead reached 83–85; BENCHMARKS.md, "2026-12-05 21:50–22:00"). The AVX512-VNNI build
/// goes 4 KiB ahead: its tiles take a block in fewer cycles (Zen 4, eight tokens: 168 → 250 GMAC/s over both
/// threads; 4 KiB and 6 KiB alike, 1 KiB slower; BENCHMARKS.md, "2026-12-06 18:47–19:16").
CK_INLINE void ck_prefetch_ahead(const void *p, size_t bytes, size_t ahead) {
    ck_prefetch_range((const char *)p + ahead, bytes, 0);
}

/// Prefetches into L2 share `i` of `parts` equal shares of the `bytes` bytes at `p`: the eight-row GEMMs fetch the
/// next group of eight weight rows (contiguous after the current group) while they unpack the current one, one share
/// per super-block or block, so a group that comes from DRAM is not read at memory latency (the hardware
/// prefetchers follow one or two streams, not eight rows a row apart). Into L2, not L1: on Zen 4 the L1 hints
/// stalled on the misses in flight (perf put 14 % of a q6_K GEMM's samples on the prefetch loop); one thread,
/// weights from DRAM, L1 → L2 hint: q6_K 1.2–1.35× at 4–16 tokens, q5_K 1.06–1.12×, q8_0 (block32) 1.33–1.53× at
/// 8–16, q4_K / q2_K unchanged (BENCHMARKS.md, "2026-12-06 22:50").
CK_INLINE void ck_prefetch_share(const void *p, size_t bytes, int64_t i, int64_t parts) {
    const size_t from = bytes * (size_t)i / (size_t)parts, to = bytes * (size_t)(i + 1) / (size_t)parts;
    ck_prefetch_range((const char *)p + from, to - from, 1);
}

/// Real tokens (1...4) in group g of the tile starting at token t0 of ncols: the last group of a tile may be
/// short; its padding tokens are never stored, so the micro-kernels skip their products (a token's own results
/// are the same operations whatever the group holds).
CK_INLINE int ck_group_tokens(int64_t t0, int64_t g, int64_t ncols) {
    const int64_t left = ncols - t0 - 4 * g;
    return left < 4 ? (int)left : 4;
}

/// Runs CALL(N) with the constant N = real (1...4), so each count gets its own specialised micro-kernel.
#define CK_BY_GROUP_TOKENS(real, CALL) \
    switch (real) { case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; default: CALL(4); break; }

/// The four activation rows of group g of a GEMM tile that starts at row t0 (rows x_row_bytes apart): rows
/// t0 + 4g ... t0 + 4g + 3, those past ncols aliasing the last real one (their results are never stored).
CK_INLINE void ck_tile_group_rows(const uint8_t *x, size_t x_row_bytes, int64_t t0, int64_t g, int64_t ncols,
                                  const uint8_t **rows) {
    for (int c = 0; c < 4; c++) {
        int64_t t = t0 + 4 * g + c;
        if (t >= ncols) t = ncols - 1;
        rows[c] = x + (size_t)t * x_row_bytes;
    }
}

/// Chunk p (0...3) of a q4_K (five = 0) or q5_K super-block as unsigned bytes from q = qs[32p ... 32p + 31]: *lo =
/// elements 64p ... 64p + 31 (low nibbles), *hi = 64p + 32 ... 64p + 63 (high nibbles), with the q5_K fifth bit
/// taken from `hv` (the block's 32 qh bytes: bits 2p and 2p + 1). Every step is per byte, so q and hv may be
/// permuted alike (the eight-row GEMM passes them transposed). Layout: ggml-common.h block_q4_K / block_q5_K.
CK_INLINE void ck_kq45_split(__m256i q, __m256i hv, int five, int p, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256i l = _mm256_and_si256(q, m4), h = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (five) {
        const __m256i ml = _mm256_set1_epi8((char)(1 << (2 * p))), mh = _mm256_set1_epi8((char)(2 << (2 * p)));
        l = _mm256_or_si256(l, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, ml), ml), b4));
        h = _mm256_or_si256(h, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, mh), mh), b4));
    }
    *lo = l;
    *hi = h;
}

/// ck_kq45_split of qs[32p ... 32p + 31].
CK_INLINE void ck_kq45_chunk_bytes(const uint8_t *qs, __m256i hv, int five, int p, __m256i *lo, __m256i *hi) {
    ck_kq45_split(_mm256_loadu_si256((const __m256i *)(qs + 32 * p)), hv, five, p, lo, hi);
}

/// Chunk k (0...3) of half h of a q6_K super-block as unsigned 6-bit values (0...63): values 128h + 32k ... + 31,
/// low 4 bits from l1 = ql[64h ...] / l2 = ql[64h + 32 ...] (low nibbles for k < 2), high 2 bits from bits 2k, 2k + 1
/// of hb = qh[32h ...]. Layout: ggml-common.h block_q6_K.
CK_INLINE __m256i ck_q6_chunk_bytes(__m256i l1, __m256i l2, __m256i hb, int k) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i l = (k & 1) ? l2 : l1;
    const __m256i lo4 = k < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
    // Bits 2k, 2k+1 of hb moved to bits 4, 5: mask first, then one shift (none for k = 2); masking first keeps the
    // 16-bit shifts from carrying bits across bytes.
    const __m256i hk = _mm256_and_si256(hb, _mm256_set1_epi8((char)(3 << (2 * k))));
    const __m256i hi2 = k == 0 ? _mm256_slli_epi16(hk, 4) : k == 1 ? _mm256_slli_epi16(hk, 2)
                      : k == 2 ? hk : _mm256_srli_epi16(hk, 2);
    return _mm256_or_si256(lo4, hi2);
}

#endif
#endif
