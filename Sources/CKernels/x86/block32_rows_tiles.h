// The few-row matmul of weights in 32-element blocks (q4_0, q5_0, q8_0, iq4_nl) against one to three q8_0
// activation rows, included once per instruction set (avx2_block32_rows.c, avx512vnni_rows.c), each time with:
//   B32R_NAME(f)             the entry point's name (f ## _avx2, f ## _avx512vnni);
//   B32R_FN, B32R_INLINE     the attributes of a function / an always-inlined helper compiled for the set;
//   B32R_VNNI                if defined (AVX512-VNNI + BW + VL): each block's four-byte product sums are one vpdpbusd
//                            (AVX2: maddubs + madd), and q5_0's fifth bits are added under a byte mask made from qh
//                            (AVX2: the bits spread to bytes and compared). The same exact int32 sums and the same
//                            float steps, so every build gives the same bits.
// What the kernel computes and why is in avx2_block32_rows.c's head. Layouts: ggml/src/ggml-common.h; written
// independently.

/// Prefetch distances into L1 / L2, bytes ahead of the four blocks being read: the streaming kernels'
/// (CK_STREAM_PREFETCH*, avx2_common.h).
#ifndef B32R_PREFETCH
#define B32R_PREFETCH CK_STREAM_PREFETCH
#endif
#ifndef B32R_PREFETCH_L2
#define B32R_PREFETCH_L2 CK_STREAM_PREFETCH_L2
#endif

enum {
    B32R_MAXC = 3,            // activation rows per pass
    B32R_MAX_BLOCKS = 1024,   // blocks per row with precomputed activation terms (n ≤ 32,768; longer rows: per-row dots)
};

/// Bytes per block.
B32R_INLINE size_t b32r_block_bytes(int type) {
    return type == CK_Q5_0 ? sizeof(ck_block_q5_0) : type == CK_Q8_0 ? sizeof(ck_block_q8_0)
         : type == CK_Q4_0 ? sizeof(ck_block_q4_0) : sizeof(ck_block_iq4_nl);
}

/// The 32 nibbles of qs[16] in element order (low nibbles: elements 0...15 in the low lane; high: 16...31), from one
/// broadcast load, one variable shift and one mask.
B32R_INLINE __m256i b32r_nibbles(const uint8_t *qs) {
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

/// Block `blk`'s 32 weights as bytes: unsigned (q4_0: 0...15, q5_0: 0...31, before the offset) or signed (q8_0,
/// iq4_nl).
B32R_INLINE __m256i b32r_weights(int type, const uint8_t *blk) {
    switch (type) {
    case CK_Q8_0:
        return _mm256_loadu_si256((const __m256i *)((const ck_block_q8_0 *)blk)->qs);
    case CK_Q4_0:
        return b32r_nibbles(((const ck_block_q4_0 *)blk)->qs);
    case CK_Q5_0: {
        const ck_block_q5_0 *x = (const ck_block_q5_0 *)blk;
#ifdef B32R_VNNI   // AVX512BW: 16 added to the bytes whose qh bit is set, under that mask
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        const __m256i nib = b32r_nibbles(x->qs);
        return _mm256_mask_add_epi8(nib, (__mmask32)qh, nib, _mm256_set1_epi8(0x10));
#else
        return _mm256_or_si256(b32r_nibbles(x->qs), _mm256_and_si256(ck_bit_bytes(x->qh), _mm256_set1_epi8(0x10)));
#endif
    }
    default: {
        const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)ck_iq4nl_values));
        return _mm256_shuffle_epi8(table, b32r_nibbles(((const ck_block_iq4_nl *)blk)->qs));
    }
    }
}

/// Whether the type's weights are stored with an offset (unsigned in b32r_weights).
B32R_INLINE int b32r_offset(int type) { return type == CK_Q4_0 ? 8 : type == CK_Q5_0 ? 16 : 0; }

/// The fp16 scales of blocks 0...3 at `blk` (`bb` bytes apart; d is each block's first field) as floats.
B32R_INLINE __m128 b32r_scales4(const uint8_t *blk, size_t bb) {
    uint16_t d0, d1, d2, d3;
    memcpy(&d0, blk, 2);
    memcpy(&d1, blk + bb, 2);
    memcpy(&d2, blk + 2 * bb, 2);
    memcpy(&d3, blk + 3 * bb, 2);
    uint64_t v = (uint64_t)d0 | (uint64_t)d1 << 16 | (uint64_t)d2 << 32 | (uint64_t)d3 << 48;
    // Keeps the word in a general register: otherwise the compiler rebuilds it with vpinsrw (two vector uops each).
    __asm__("" : "+r"(v));
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/// *p broadcast to eight lanes by a load (vbroadcastss m32: no shuffle uop); the asm keeps the compiler from
/// replacing the store and load with register shuffles.
B32R_INLINE __m256 b32r_broadcast(const float *p) {
    __m256 r;
    __asm__("vbroadcastss %1, %0" : "=x"(r) : "m"(*p));
    return r;
}

/// The eight int32 sums of four byte products each of unsigned `u` and signed `x` (exact: u ≤ 128 here — |w| or an
/// offset-form value — so a pair of products is at most 2 · 128 · 127 = 32,512 and maddubs does not saturate): one
/// vpdpbusd (AVX512-VNNI) or maddubs + madd.
B32R_INLINE __m256i b32r_dot(__m256i u, __m256i x) {
#ifdef B32R_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
#endif
}

/// Rows [r0, r1) against nc ≤ 3 activation rows a[c] with precomputed block scales dx[c][b] and, for offset types,
/// terms ox[c][b] = o·d_x·Σx over block b. Always inlined with constant type and nc.
B32R_INLINE void b32r_pass(int type, const uint8_t *w, size_t wrb, int64_t nb, int64_t r0, int64_t r1,
                         const ck_block_q8_0 *const *a, const float (*dx)[B32R_MAX_BLOCKS],
                         const float (*ox)[B32R_MAX_BLOCKS], int nc, float *y, int64_t ys) {
    const size_t bb = b32r_block_bytes(type);
    const int off = b32r_offset(type);
    const int lines = (int)((4 * bb + 63) / 64);
    // Two float accumulators per activation row, consecutive blocks alternating (halves the FMA chain). Every row
    // takes the same operations in the same order whatever nc is, so an activation row's results do not depend on
    // which rows share its pass (n > 1 choices of one greedy request stay identical). Blocks are the outer loop so
    // only one block's weights are live across the rows (with three rows, all four blocks' weights spilled).
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * wrb;
        __m256 acc[B32R_MAXC][2];
        __m128 corr[B32R_MAXC];
        for (int c = 0; c < nc; c++) {
            acc[c][0] = acc[c][1] = _mm256_setzero_ps();
            corr[c] = _mm_setzero_ps();
        }
        int64_t b = 0;
        for (; b + 4 <= nb; b += 4) {
            const uint8_t *blk = wr + (size_t)b * bb;
            for (int l = 0; l < lines; l++) {
                _mm_prefetch((const char *)blk + B32R_PREFETCH + 64 * l, _MM_HINT_T0);
                _mm_prefetch((const char *)blk + B32R_PREFETCH_L2 + 64 * l, _MM_HINT_T1);
            }
            const __m128 dw = b32r_scales4(blk, bb);
            __attribute__((aligned(16))) float sc[B32R_MAXC][4];
            for (int c = 0; c < nc; c++) {
                _mm_store_ps(sc[c], _mm_mul_ps(dw, _mm_loadu_ps(&dx[c][b])));
                if (off) corr[c] = _mm_fmadd_ps(dw, _mm_loadu_ps(&ox[c][b]), corr[c]);
            }
            for (int i = 0; i < 4; i++) {
                const __m256i s = b32r_weights(type, blk + i * bb);
                const __m256i u = off ? s : _mm256_sign_epi8(s, s);
                for (int c = 0; c < nc; c++) {
                    const __m256i xv = _mm256_loadu_si256((const __m256i *)a[c][b + i].qs);
                    const __m256i p = b32r_dot(u, off ? xv : _mm256_sign_epi8(xv, s));
                    acc[c][i & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), b32r_broadcast(&sc[c][i]), acc[c][i & 1]);
                }
            }
        }
        for (; b < nb; b++) {
            const uint8_t *blk = wr + (size_t)b * bb;
            const __m256i sv = b32r_weights(type, blk);
            const __m256i uv = off ? sv : _mm256_sign_epi8(sv, sv);
            uint16_t d16;
            memcpy(&d16, blk, 2);
            const float dw = ck_h2f(d16);
            for (int c = 0; c < nc; c++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)a[c][b].qs);
                const __m256i p = b32r_dot(uv, off ? xv : _mm256_sign_epi8(xv, sv));
                acc[c][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * dx[c][b]), acc[c][0]);
                if (off) corr[c] = _mm_add_ss(corr[c], _mm_set_ss(dw * ox[c][b]));
            }
        }
        for (int c = 0; c < nc; c++) {
            float v = ck_hsum_ps(_mm256_add_ps(acc[c][0], acc[c][1]));
            if (off) {
                __m128 t = _mm_add_ps(corr[c], _mm_movehl_ps(corr[c], corr[c]));
                t = _mm_add_ss(t, _mm_movehdup_ps(t));
                v -= _mm_cvtss_f32(t);
            }
            y[c * ys + r] = v;
        }
    }
}

/// Σ of the 32 signed bytes of one q8_0 activation block.
B32R_INLINE int b32r_block_sum(const ck_block_q8_0 *x) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), v), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

B32R_FN void B32R_NAME(ck_matmul_block32_rows)(int type, const void *w, size_t wrb, int64_t n, int64_t r0, int64_t r1,
                                         const void *x, size_t xrb, int64_t ncols, float *y, int64_t ys) {
    const int64_t nb = n / CK_QK;
    if (nb > B32R_MAX_BLOCKS) {   // rows longer than the scratch: the per-row dot products
        const ck_dot_fn dot = type == CK_Q5_0 ? ck_dot_q5_0_q8_0_avx2 : type == CK_Q8_0 ? ck_dot_q8_0_q8_0_avx2
                            : type == CK_Q4_0 ? ck_dot_q4_0_q8_0_avx2 : ck_dot_iq4_nl_q8_0_avx2;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = 0; c < ncols; c++)
                y[c * ys + r] = dot(n, (const char *)w + (size_t)r * wrb, (const char *)x + (size_t)c * xrb);
        return;
    }
    const int off = b32r_offset(type);
    float dx[B32R_MAXC][B32R_MAX_BLOCKS], ox[B32R_MAXC][B32R_MAX_BLOCKS];
    for (int64_t c0 = 0; c0 < ncols; c0 += B32R_MAXC) {
        const int nc = (int)(ncols - c0 < B32R_MAXC ? ncols - c0 : B32R_MAXC);
        const ck_block_q8_0 *a[B32R_MAXC];
        for (int c = 0; c < nc; c++) {
            a[c] = (const ck_block_q8_0 *)((const char *)x + (size_t)(c0 + c) * xrb);
            for (int64_t b = 0; b < nb; b++) {
                dx[c][b] = ck_h2f(a[c][b].d);
                if (off) ox[c][b] = (float)(off * b32r_block_sum(&a[c][b])) * dx[c][b];
            }
        }
        float *yc = y + c0 * ys;
        const uint8_t *wb = w;
#define B32R_CASE(T, N) b32r_pass(T, wb, wrb, nb, r0, r1, a, dx, ox, N, yc, ys)
#define B32R_NC(T) switch (nc) { case 3: B32R_CASE(T, 3); break; case 2: B32R_CASE(T, 2); break; default: B32R_CASE(T, 1); }
        switch (type) {
        case CK_Q4_0: B32R_NC(CK_Q4_0) break;
        case CK_Q5_0: B32R_NC(CK_Q5_0) break;
        case CK_Q8_0: B32R_NC(CK_Q8_0) break;
        default: B32R_NC(CK_IQ4_NL) break;
        }
#undef B32R_NC
#undef B32R_CASE
    }
}
