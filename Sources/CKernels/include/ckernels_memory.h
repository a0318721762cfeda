// CKernels memory-streaming kernels: the read loop of the bandwidth probe (sputnik-tools bench --bandwidth), and
// prefetch hints (no results, so no twins).
// Same `_ref` twin contract as ckernels.h: the unsuffixed name dispatches to the AVX2 variant when the CPU has it.
#ifndef SPUTNIK_CKERNELS_MEMORY_H
#define SPUTNIK_CKERNELS_MEMORY_H
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Wrapping sum of the `bytes / 8` little-endian uint64 words at `p` (`p` 32-byte aligned, `bytes` a multiple of
/// 128): reads every byte once, in order, with 32-byte loads into four independent accumulators (AVX2), so the
/// loop is bound by memory, not by the adds. The sum lets a caller check that every byte was read.
uint64_t ck_read_sum(const void *p, size_t bytes);
uint64_t ck_read_sum_ref(const void *p, size_t bytes);
uint64_t ck_read_sum_avx2(const void *p, size_t bytes);

/// Hints the first `bytes` (rounded up to 64-byte lines) at `p` into L2 (`prefetcht1`), so a stream that is about
/// to start elsewhere (the next expert's slice) has its first lines and page walk under way. No-op off x86.
void ck_prefetch_l2(const void *p, size_t bytes);

/// Hints into L2 the first `row_bytes` of the rows of positions [0, n) of a paged KV cache: position p's row starts at
/// `base + (table[p / block_size] * block_size + p % block_size) * slot_bytes`. Issued before an attention item
/// reads them, so the reads of a short context's scattered K and V rows overlap instead of each waiting on DRAM.
/// No-op off x86.
void ck_prefetch_paged_rows(const void *base, size_t slot_bytes, const int32_t *table, int64_t block_size, int64_t n,
                            size_t row_bytes);

#ifdef __cplusplus
}
#endif
#endif
