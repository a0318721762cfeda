// The grouped-query attention kernels (x86/attention_tiles.h) built for AVX512-VL: 32 vector registers, so more query
// heads per pass over the K / V rows; the same bits as the AVX2 build. Selected with the AVX512-VNNI kernel set
// (dispatch.c).
#include "ckernels.h"
#include "../internal.h"

#define AT_NAME(f) f##_avx512
#define AT_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define AT_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define AT_WIDE 1
#include "attention_tiles.h"

#if !defined(__x86_64__)   // the dispatcher never selects them; keep the symbols so the module links
void ck_attn_scores_gqa_avx512(int kv_type, const float *q, int64_t qs, int64_t g, int64_t d, const void *k_base,
                               size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float scale, float *s,
                               int64_t ss) {
    ck_attn_scores_gqa_ref(kv_type, q, qs, g, d, k_base, slot_bytes, table, bs, n, scale, s, ss);
}
void ck_attn_values_gqa_avx512(int kv_type, const float *w, int64_t ws, int64_t g, int64_t d, const void *v_base,
                               size_t slot_bytes, const int32_t *table, int64_t bs, int64_t n, float *out, int64_t os) {
    ck_attn_values_gqa_ref(kv_type, w, ws, g, d, v_base, slot_bytes, table, bs, n, out, os);
}
#endif
