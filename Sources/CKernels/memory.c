// The bandwidth probe's read loop (ckernels_memory.h): scalar twin, AVX2 variant and the dispatching entry point;
// and the prefetch hints the engine issues ahead of streams it is about to read (an expert's next slice, a paged KV
// cache's rows). Kept apart from dispatch.c's kernel table: none of them computes a model result.
#include "ckernels.h"
#include "ckernels_memory.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

uint64_t ck_read_sum_ref(const void *p, size_t bytes) {
    const uint64_t *w = (const uint64_t *)p;
    uint64_t s = 0;
    for (size_t i = 0; i < bytes / 8; i++) s += w[i];
    return s;
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
uint64_t ck_read_sum_avx2(const void *p, size_t bytes) {
    const __m256i *v = (const __m256i *)p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const size_t n = bytes / 128;
    for (size_t i = 0; i < n; i++, v += 4) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(v));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(v + 1));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(v + 2));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(v + 3));
    }
    const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#else
uint64_t ck_read_sum_avx2(const void *p, size_t bytes) { return ck_read_sum_ref(p, bytes); }
#endif

uint64_t ck_read_sum(const void *p, size_t bytes) {
    return ck_has_avx2() ? ck_read_sum_avx2(p, bytes) : ck_read_sum_ref(p, bytes);
}

void ck_prefetch_l2(const void *p, size_t bytes) {
#if defined(__x86_64__)
    const char *c = (const char *)p;
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T1);
#else
    (void)p; (void)bytes;
#endif
}

void ck_prefetch_paged_rows(const void *base, size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n,
                            size_t row_bytes) {
#if defined(__x86_64__)
    for (int64_t b = 0; b * block_size < n; b++) {
        const char *block = (const char *)base + (size_t)((int64_t)table[b] * block_size) * slot_bytes;
        const int64_t m = n - b * block_size < block_size ? n - b * block_size : block_size;
        for (int64_t o = 0; o < m; o++)
            for (size_t i = 0; i < row_bytes; i += 64) _mm_prefetch(block + (size_t)o * slot_bytes + i, _MM_HINT_T1);
    }
#else
    (void)base; (void)slot_bytes; (void)table; (void)block_size; (void)n; (void)row_bytes;
#endif
}
