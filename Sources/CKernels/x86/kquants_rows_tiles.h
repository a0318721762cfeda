// The K-quant row kernels — q4_K, q5_K and q6_K weights, read in place in their GGUF layout, times one to four q8_K
// activation rows (decode, an expert's few tokens in a batched MoE step) — included once per instruction set
// (avx2_kquants.c, avx512vnni_rows.c), each time with:
//   KR_NAME(f)         the entry point's name (f ## _avx2, f ## _avx512vnni);
//   KR_FN, KR_INLINE   the attributes of a function / an always-inlined helper compiled for the set;
//   KR_MADD_ADD(s, p, k) s + madd(p, k) on int32 lanes: _mm256_add_epi32 + _mm256_madd_epi16 for AVX2, one
//                      vpdpwssd for AVX512-VNNI. The same exact int32 sums, so every build gives the same bits;
//   KR_SHUFFLE_SCALES  1 to widen q4_K / q5_K sub-block scales from a register (see kq_k45_row), else 0.
// What the kernels compute and why (the GEMM's float steps, batch invariance) is in avx2_kquants.c's head. Block
// layouts: ggml/src/ggml-common.h; written independently.

/// Prefetch distances in bytes ahead of the super-block being read: into L1 (KQ_PREFETCH) and into L2
/// (KQ_PREFETCH_L2), the streaming kernels' (CK_STREAM_PREFETCH*, avx2_common.h). Rows of a range are contiguous, so
/// this runs on into the next row. They are issued whatever the number of activation rows: for two to four (a routed
/// expert's tokens in a batched decode step) the rows stream from DRAM just the same, and prefetching doubled those
/// calls (q4_K 1,408 × 2,048 from DRAM on both threads, two rows: 22 → 38 GMAC/s per thread; BENCHMARKS.md,
/// "2026-12-05 21:00–21:35").
#ifndef KQ_PREFETCH
#define KQ_PREFETCH CK_STREAM_PREFETCH
#endif
#ifndef KQ_PREFETCH_L2
#define KQ_PREFETCH_L2 CK_STREAM_PREFETCH_L2
#endif

/// The exact per-half sums of two int32 vectors: lane 4h = Σ of s's lanes 4h ... 4h + 3, lane 4h + 1 = the same of
/// m (h = 0, 1; other lanes unused). Integer adds, so any order gives the same values.
KR_INLINE __m256i kq_halves_exact(__m256i s, __m256i m) {
    const __m256i v = _mm256_add_epi32(_mm256_unpacklo_epi32(s, m), _mm256_unpackhi_epi32(s, m));   // s0+s2, m0+m2, s1+s3, m1+m3
    return _mm256_add_epi32(v, _mm256_shuffle_epi32(v, 0x4e));
}

/// Lane 0 + lane 4 of an exact row kernel's accumulator: its two halves, added as the GEMM's tile store adds them.
KR_INLINE float kq_halves(__m256 acc) {
    return _mm_cvtss_f32(_mm256_castps256_ps128(acc)) + _mm_cvtss_f32(_mm256_extractf128_ps(acc, 1));
}

/// Chunk p (elements 64p..64p+63) of a q4_K/q5_K super-block against nc activation rows: sumi[c] += the
/// sub-block-scaled int32 sums (see kq_k45_row).
KR_INLINE void kq_k45_chunk(const uint8_t *qs, __m256i hv, int five, int p, const int16_t *sc16, __m256i scv,
                            int shuffle, const ck_block_q8_K *const *a, int64_t b, int nc, __m256i *sumi) {
    __m256i lo, hi;
    ck_kq45_chunk_bytes(qs, hv, five, p, &lo, &hi);
    // Scales 2p and 2p + 1 as int16 in every lane: broadcast from sc16, or (shuffle) byte 2p / 2p + 1 of scv with a
    // zeroed high byte (control 0x80).
    const __m256i sl = shuffle ? _mm256_shuffle_epi8(scv, _mm256_set1_epi16((short)(0x8000 + 2 * p)))
                               : _mm256_set1_epi16(sc16[2 * p]);
    const __m256i sh = shuffle ? _mm256_shuffle_epi8(scv, _mm256_set1_epi16((short)(0x8001 + 2 * p)))
                               : _mm256_set1_epi16(sc16[2 * p + 1]);
    for (int c = 0; c < nc; c++) {
        const int8_t *aq = a[c][b].qs + 64 * p;
        const __m256i ql = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)aq));
        const __m256i qh = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(aq + 32)));
        sumi[c] = KR_MADD_ADD(KR_MADD_ADD(sumi[c], ql, sl), qh, sh);
    }
}

/// out[c] = dot(row `w` of q4_K (five = 0) or q5_K (five = 1), a[c]) over nb super-blocks, c in 0..<nc (nc ≤ 4),
/// with the GEMM's float steps (see avx2_kquants.c's head). Always inlined with constant nc and five, so each call site
/// is a specialised kernel.
KR_INLINE void kq_k45_row(const uint8_t *w, int64_t nb, const ck_block_q8_K *const *a, int nc, int five, float *out) {
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const size_t bbytes = five ? sizeof(ck_block_q5_K) : sizeof(ck_block_q4_K);
    __m256 acc[4];
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * bbytes;
        // Whatever nc is: batched decode (a routed expert's one to four tokens) streams its rows from DRAM too.
        _mm_prefetch((const char *)blk + KQ_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + KQ_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + KQ_PREFETCH + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + KQ_PREFETCH_L2, _MM_HINT_T1);
        _mm_prefetch((const char *)blk + KQ_PREFETCH_L2 + 64, _MM_HINT_T1);
        _mm_prefetch((const char *)blk + KQ_PREFETCH_L2 + 128, _MM_HINT_T1);
        uint16_t d16, m16;
        memcpy(&d16, blk, 2);
        memcpy(&m16, blk + 2, 2);
        const uint8_t *qs = blk + (five ? 48 : 16);
        uint64_t scb, mnb;
        ck_kq_scales45(blk + 4, &scb, &mnb);
        // mn[j] twice per sub-block j, as int16: madd with the 16 bsums gives mn[j] * Σa over sub-block j.
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mnb), dup));
        // The eight scales as int16 in memory (broadcast per chunk), or with KR_SHUFFLE_SCALES and one or two
        // activation rows as bytes in both 128-bit lanes of a register, widened with one shuffle each: fewer uops, but
        // eight shuffle controls held in registers, which only the 32-register builds can spare (the AVX2 build and
        // three or four rows were slower with it: BENCHMARKS.md, "2026-12-07 05:35").
        const int shuffle = KR_SHUFFLE_SCALES && nc <= 2;
        int16_t sc16[8];
        __m256i scv = _mm256_setzero_si256();
        if (shuffle) scv = _mm256_broadcastsi128_si256(_mm_cvtsi64_si128((long long)scb));
        else _mm_storeu_si128((__m128i *)sc16, _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)scb)));
        const __m256i hv = five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
        __m256i sumi[4];
        for (int c = 0; c < nc; c++) sumi[c] = _mm256_setzero_si256();
        // One or two activation rows: the four chunks unrolled (+7 to +12 % single-thread); more rows keep the loop
        // rolled (unrolled, their accumulators spill: 49 -> 30 GMAC/s at four rows).
        if (nc <= 2) {
#pragma clang loop unroll(full)
            for (int p = 0; p < 4; p++) kq_k45_chunk(qs, hv, five, p, sc16, scv, shuffle, a, b, nc, sumi);
        } else {
#pragma clang loop unroll(disable)
            for (int p = 0; p < 4; p++) kq_k45_chunk(qs, hv, five, p, sc16, scv, shuffle, a, b, nc, sumi);
        }
        const float dw = ck_h2f(d16), mw = ck_h2f(m16);
        for (int c = 0; c < nc; c++) {
            const float dy = a[c][b].d;
            const __m256i pm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[c][b].bsums), mins);
            // The GEMM's float steps (kg_micro8): sumi lanes 0-3 hold the even 16-value groups, 4-7 the odd ones
            // (half h = 0, 1 of its s); pm lanes 0-3 groups 0-7, 4-7 groups 8-15 (its mt halves). Per half,
            // acc −= m_w·d_x·mt_h, then acc += d_w·d_x·s_h (lane 4h).
            const __m256 f = _mm256_cvtepi32_ps(kq_halves_exact(sumi[c], pm));
            acc[c] = _mm256_fnmadd_ps(_mm256_set1_ps(mw * dy), _mm256_permute_ps(f, 0x55), acc[c]);
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy), f, acc[c]);
        }
    }
    for (int c = 0; c < nc; c++) out[c] = kq_halves(acc[c]);
}

/// Half h (elements 128h..128h+127) of a q6_K super-block against nc activation rows: sumi[c] += the
/// scaled int32 sums (see kq_q6_row).
KR_INLINE void kq_q6_half(const ck_block_q6_K *x, __m256i s16, const __m256i *ctl, int h,
                          const ck_block_q8_K *const *a, int64_t b, int nc, __m256i *sumi) {
    const __m256i sh = _mm256_broadcastsi128_si256(h ? _mm256_extracti128_si256(s16, 1) : _mm256_castsi256_si128(s16));
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
    const __m256i l2 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
    for (int k = 0; k < 4; k++) {
        const __m256i q = ck_q6_chunk_bytes(l1, l2, hb, k);
        const __m256i s = _mm256_shuffle_epi8(sh, ctl[k]);
        for (int c = 0; c < nc; c++) {
            const __m256i av = _mm256_loadu_si256((const __m256i *)(a[c][b].qs + 128 * h + 32 * k));
            sumi[c] = KR_MADD_ADD(sumi[c], _mm256_maddubs_epi16(q, av), s);
        }
    }
}

/// out[c] = dot(row `w` of q6_K, a[c]) over nb super-blocks, c in 0..<nc (nc ≤ 4), with the GEMM's float steps;
/// always inlined like kq_k45_row.
KR_INLINE void kq_q6_row(const ck_block_q6_K *w, int64_t nb, const ck_block_q8_K *const *a, int nc, float *out) {
    // For a vector holding int16 scales s[0..7] in both 128-bit lanes, control k broadcasts s[2k] over the low
    // lane and s[2k+1] over the high lane: the scales of the two 16-element sub-blocks of a 32-byte chunk.
    const __m256i ctl[4] = {
        _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
        _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
        _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11),
        _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15),
    };
    __m256 acc[4];
    for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const ck_block_q6_K *x = w + b;
        for (int l = 0; l < 4; l++) _mm_prefetch((const char *)x + KQ_PREFETCH + 64 * l, _MM_HINT_T0);   // any nc
        for (int l = 0; l < 4; l++) _mm_prefetch((const char *)x + KQ_PREFETCH_L2 + 64 * l, _MM_HINT_T1);
        const __m128i s8 = _mm_loadu_si128((const __m128i *)x->scales);
        const __m256i s16 = _mm256_cvtepi8_epi16(s8);   // scales 0..15 as int16, in bsums order
        __m256i sumi[4];
        for (int c = 0; c < nc; c++) sumi[c] = _mm256_setzero_si256();
        if (nc <= 2) {   // as in kq_k45_row: unrolled for one or two activation rows only
#pragma clang loop unroll(full)
            for (int h = 0; h < 2; h++) kq_q6_half(x, s16, ctl, h, a, b, nc, sumi);
        } else {
#pragma clang loop unroll(disable)
            for (int h = 0; h < 2; h++) kq_q6_half(x, s16, ctl, h, a, b, nc, sumi);
        }
        const float dw = ck_h2f(x->d);
        for (int c = 0; c < nc; c++) {
            // Σ sc·(q − 32)·a = Σ sc·q·a − 32·Σ_k sc[k]·bsums[k], per half as in the GEMM (kg_micro8: s_h − 32·mt_h,
            // sumi lanes 0-3 / 4-7 the even / odd groups, off lanes 0-3 / 4-7 groups 0-7 / 8-15), one FMA each.
            const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[c][b].bsums), s16);
            const __m256i t = _mm256_sub_epi32(sumi[c], _mm256_slli_epi32(off, 5));
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[c][b].d),
                                     _mm256_cvtepi32_ps(kq_halves_exact(t, _mm256_setzero_si256())), acc[c]);
        }
    }
    for (int c = 0; c < nc; c++) out[c] = kq_halves(acc[c]);
}

/// One weight row against `nc` (1...4) activation rows starting at x + c0 * xrb; results to y[(c0 + c) * ys + r].
KR_INLINE void kq_row_cols(int type, const uint8_t *wr, int64_t nb, const uint8_t *x, size_t xrb, int64_t c0, int nc,
                           float *y, int64_t ys, int64_t r) {
    const ck_block_q8_K *a[4];
    for (int c = 0; c < nc; c++) a[c] = (const ck_block_q8_K *)(x + (size_t)(c0 + c) * xrb);
    float out[4];
#define KQ_CASES(CALL) switch (nc) { case 4: CALL(4); break; case 3: CALL(3); break; case 2: CALL(2); break; default: CALL(1); }
    switch (type) {
    case CK_Q4_K:
#define KQ4(N) kq_k45_row(wr, nb, a, N, 0, out)
        KQ_CASES(KQ4)
        break;
    case CK_Q5_K:
#define KQ5(N) kq_k45_row(wr, nb, a, N, 1, out)
        KQ_CASES(KQ5)
        break;
    default:
#define KQ6(N) kq_q6_row((const ck_block_q6_K *)wr, nb, a, N, out)
        KQ_CASES(KQ6)
        break;
    }
#undef KQ4
#undef KQ5
#undef KQ6
#undef KQ_CASES
    for (int c = 0; c < nc; c++) y[(c0 + c) * ys + r] = out[c];
}

KR_FN void KR_NAME(ck_matmul_kquant)(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                   const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    const int64_t nb = n / CK_QK_K;
    // Cache blocking for many activation rows: a block of KQ_ROWS weight rows (tens of KiB, stays in L2) meets
    // tiles of activation rows of about 16 KiB (stay in L1), four at a time per weight row. Decode (one
    // activation row) streams the weight rows in order.
    enum { KQ_ROWS = 16 };
    int64_t tile = (int64_t)((16u << 10) / (xrb ? xrb : 1));
    tile = tile < 4 ? 4 : tile / 4 * 4;
    const int64_t rblock = ncols > 4 ? KQ_ROWS : r1 - r0;
    const uint8_t *wb = w, *xb = x;
    for (int64_t rb = r0; rb < r1; rb += rblock) {
        const int64_t re = r1 - rb < rblock ? r1 : rb + rblock;
        for (int64_t t0 = 0; t0 < ncols; t0 += tile) {
            const int64_t t1 = ncols - t0 < tile ? ncols : t0 + tile;
            for (int64_t r = rb; r < re; r++) {
                const uint8_t *wr = wb + (size_t)r * wrb;
                int64_t c = t0;
                for (; c + 4 <= t1; c += 4) kq_row_cols(type, wr, nb, xb, xrb, c, 4, y, ys, r);
                if (c < t1) kq_row_cols(type, wr, nb, xb, xrb, c, (int)(t1 - c), y, ys, r);
            }
        }
    }
}
