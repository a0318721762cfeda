// Kernel-level timings behind the K-quant profile in BENCHMARKS.md (issue 20): one thread, thread CPU time
// (CLOCK_THREAD_CPUTIME_ID, so time the scheduler gives to other tenants is not counted), random weights with
// small fp16 scales. Build and run from the repository root:
//   clang -O3 -I Sources/CKernels/include scripts/kquant_kernels_bench.c Sources/CKernels/*.c \
//         Sources/CKernels/ref/*.c Sources/CKernels/x86/*.c -lm -o /tmp/kqbench && /tmp/kqbench
// decode: one q8_K activation row against each weight shape of a Qwen2.5-Coder-1.5B Q4_K_M layer and its output
//         head (ck_matmul_rows, the decode path), weights rotated over > 96 MiB of copies so every call streams
//         from DRAM as decode does: µs per call and GB/s of weights.
// prefill: 512 activation rows against 512 weight rows of each prefill shape: the GEMM (ck_gemm_kquant_avx2)
//          and the per-row kernel it replaced for ≥ 4 rows (ck_matmul_kquant_avx2), GMAC/s.
#include "ckernels.h"
#include "../Sources/CKernels/internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// Random blocks of `type` (q4_K or q6_K) with the fp16 scales set to 2^-15 · 2 (0x2000).
static uint8_t *random_weights(int type, size_t bytes) {
    uint8_t *w = malloc(bytes);
    for (size_t k = 0; k < bytes; k++) w[k] = (uint8_t)rand();
    const size_t bs = type == CK_Q4_K ? sizeof(ck_block_q4_K) : sizeof(ck_block_q6_K);
    const uint16_t h = 0x2000;
    for (size_t b = 0; b < bytes / bs; b++) {
        if (type == CK_Q6_K) memcpy(w + b * bs + 208, &h, 2);
        else { memcpy(w + b * bs, &h, 2); memcpy(w + b * bs + 2, &h, 2); }
    }
    return w;
}

static uint8_t *random_activations(int64_t cols, int64_t rows) {
    const size_t xrb = ck_row_size(CK_Q8_K, cols);
    float *xf = malloc(sizeof(float) * (size_t)cols);
    uint8_t *x = malloc(xrb * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) xf[k] = rand() / (float)RAND_MAX - 0.5f;
        ck_quantize_row_q8_K(xf, x + (size_t)r * xrb, cols);
    }
    free(xf);
    return x;
}

int main(void) {
    static const struct { const char *name; int type; int rows, cols; } m[] = {
        {"attn_q", CK_Q4_K, 1536, 1536}, {"attn_k", CK_Q4_K, 256, 1536}, {"attn_v", CK_Q6_K, 256, 1536},
        {"attn_output", CK_Q4_K, 1536, 1536}, {"ffn_gate", CK_Q4_K, 8960, 1536}, {"ffn_up", CK_Q4_K, 8960, 1536},
        {"ffn_down", CK_Q6_K, 1536, 8960}, {"ffn_down", CK_Q4_K, 1536, 8960}, {"output", CK_Q6_K, 151936, 1536},
    };
    printf("decode, 1 thread\n| matrix | type | rows x cols | MiB | µs per call | GB/s |\n| --- | --- | --- | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        const size_t rb = ck_row_size(m[i].type, m[i].cols), bytes = rb * (size_t)m[i].rows;
        const int copies = (int)((96u << 20) / bytes) + 2;
        uint8_t *w = random_weights(m[i].type, bytes * (size_t)copies);
        uint8_t *x = random_activations(m[i].cols, 1);
        float *y = malloc(sizeof(float) * (size_t)m[i].rows);
        const int reps = (int)(400e6 / bytes) + copies;
        const double c0 = cpu_seconds();
        for (int r = 0; r < reps; r++)
            ck_matmul_rows(m[i].type, w + (size_t)(r % copies) * bytes, rb, m[i].cols, 0, m[i].rows, x, 0, 1, y, m[i].rows);
        const double t = (cpu_seconds() - c0) / reps;
        printf("| %s | %s | %d x %d | %.2f | %.1f | %.1f |\n", m[i].name, m[i].type == CK_Q4_K ? "q4_K" : "q6_K",
               m[i].rows, m[i].cols, bytes / 1048576.0, t * 1e6, bytes / t / 1e9);
        free(w); free(x); free(y);
    }
    printf("\nprefill, 512 rows x 512 tokens, 1 thread\n| shape | type | GEMM GMAC/s | per-row kernel GMAC/s |\n| --- | --- | ---: | ---: |\n");
    static const struct { int type; int cols; } p[] = {{CK_Q4_K, 1536}, {CK_Q6_K, 1536}, {CK_Q4_K, 8960}, {CK_Q6_K, 8960}};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        const int64_t rows = 512, tokens = 512, n = p[i].cols;
        const size_t rb = ck_row_size(p[i].type, n), xrb = ck_row_size(CK_Q8_K, n);
        uint8_t *w = random_weights(p[i].type, rb * (size_t)rows);
        uint8_t *x = random_activations(n, tokens);
        float *y = malloc(sizeof(float) * (size_t)(rows * tokens));
        double best[2] = {1e9, 1e9};
        for (int rep = 0; rep < 3; rep++) {
            for (int k = 0; k < 2; k++) {
                const double c0 = cpu_seconds();
                if (k == 0) ck_gemm_kquant_avx2(p[i].type, w, rb, n, 0, rows, x, xrb, tokens, y, rows);
                else ck_matmul_kquant_avx2(p[i].type, w, rb, n, 0, rows, x, xrb, tokens, y, rows);
                const double t = cpu_seconds() - c0;
                if (t < best[k]) best[k] = t;
            }
        }
        const double mac = (double)rows * tokens * n;
        printf("| 512 x %d | %s | %.1f | %.1f |\n", p[i].cols, p[i].type == CK_Q4_K ? "q4_K" : "q6_K",
               mac / best[0] / 1e9, mac / best[1] / 1e9);
        free(w); free(x); free(y);
    }
    return 0;
}
