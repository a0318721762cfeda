// Timings of the few-row matmul kernels (decode, an expert's one to four tokens in a batched MoE step), AVX2 build
// against the AVX512-VNNI build (x86/avx512vnni_rows.c), one thread, thread CPU time; each line also says whether
// the two builds gave the same bits. Shapes: an expert of DeepSeek-V2-Lite (gate/up 1,408 × 2,048 in q4_K / q5_K /
// q6_K, down 2,048 × 1,408 in q5_0 / q8_0 / q4_0 / iq4_nl). "cache": one matrix, called again and again (L2/L3,
// compute-bound); "dram": copies rotated over > 256 MiB so every call streams from memory, as decode does.
// Build and run from the repository root:
//   clang -O3 -I Sources/CKernels/include scripts/rows_kernels_bench.c Sources/CKernels/*.c \
//         Sources/CKernels/ref/*.c Sources/CKernels/x86/*.c Sources/CQuantize/*.c -I Sources/CQuantize/include \
//         -lm -o /tmp/rowsbench && /tmp/rowsbench
// With -DAVX2_ONLY it builds against a tree without the VNNI row kernels (before 2430e04) and times AVX2 alone.
#include "ckernels.h"
#include "ck_quantize.h"
#include "../Sources/CKernels/internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*rows_fn)(int, const void *, size_t, int64_t, int64_t, int64_t, const void *, size_t, int64_t, float *,
                        int64_t);

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float urand(void) { return (float)(rand() % 2001 - 1000) / 1000.0f; }

/// Best-of-`reps` GMAC/s of `f` over `copies` copies of a rows × n matrix (one call per copy per repetition).
static double gmacs(rows_fn f, int type, const uint8_t *w, size_t wrb, int64_t rows, int64_t n, int copies,
                    const uint8_t *x, size_t xrb, int nc, float *y, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = cpu_seconds();
        for (int c = 0; c < copies; c++) f(type, w + (size_t)c * rows * wrb, wrb, n, 0, rows, x, xrb, nc, y, rows);
        const double t = (cpu_seconds() - t0) / copies;
        if (t < best) best = t;
    }
    return (double)rows * n * nc / best / 1e9;
}

int main(void) {
    const struct { const char *name; int type; int64_t rows, n; int kquant; } shapes[] = {
        {"q4_K", CK_Q4_K, 1408, 2048, 1}, {"q5_K", CK_Q5_K, 1408, 2048, 1}, {"q6_K", CK_Q6_K, 1408, 2048, 1},
        {"q5_0", CK_Q5_0, 2048, 1408, 0}, {"q8_0", CK_Q8_0, 2048, 1408, 0}, {"q4_0", CK_Q4_0, 2048, 1408, 0},
        {"iq4_nl", CK_IQ4_NL, 2048, 1408, 0},
    };
#ifdef AVX2_ONLY
    printf("| type | rows × n | tokens | where | AVX2 GMAC/s |\n| --- | --- | ---: | --- | ---: |\n");
#else
    const int vnni = ck_cpu_runs_kernel_level(3);
    printf("| type | rows × n | tokens | where | AVX2 GMAC/s | AVX512-VNNI GMAC/s | ratio | bits |\n");
    printf("| --- | --- | ---: | --- | ---: | ---: | ---: | --- |\n");
#endif
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int type = shapes[s].type;
        const int64_t rows = shapes[s].rows, n = shapes[s].n;
        const size_t wrb = ck_row_size(type, n);
        const int xtype = shapes[s].kquant ? CK_Q8_K : CK_Q8_0;
        const size_t xrb = ck_row_size(xtype, n);
        const int copies = (int)((256u << 20) / (rows * wrb)) + 1;
        uint8_t *w = malloc((size_t)copies * rows * wrb);
        float *row = malloc((size_t)n * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < n; i++) row[i] = urand();
            ckq_quantize_rows(type, row, w + (size_t)r * wrb, 1, n);
        }
        for (int c = 1; c < copies; c++) memcpy(w + (size_t)c * rows * wrb, w, rows * wrb);
        uint8_t *x = malloc(4 * xrb);
        for (int c = 0; c < 4; c++) {
            for (int64_t i = 0; i < n; i++) row[i] = urand();
            if (xtype == CK_Q8_K) ck_quantize_row_q8_K(row, x + c * xrb, n);
            else ck_quantize_row_q8_0(row, x + c * xrb, n);
        }
        float *y0 = calloc((size_t)rows * 4, sizeof(float)), *y1 = calloc((size_t)rows * 4, sizeof(float));
        const rows_fn avx2 = shapes[s].kquant ? ck_matmul_kquant_avx2 : ck_matmul_block32_rows_avx2;
#ifndef AVX2_ONLY
        const rows_fn v512 = shapes[s].kquant ? ck_matmul_kquant_avx512vnni : ck_matmul_block32_rows_avx512vnni;
#endif
        const int maxc = shapes[s].kquant ? 4 : 3;
        for (int nc = 1; nc <= maxc; nc++)
            for (int where = 0; where < 2; where++) {
                const int cp = where ? copies : 1, reps = where ? 5 : 200;
                const double a = gmacs(avx2, type, w, wrb, rows, n, cp, x, xrb, nc, y0, reps);
#ifdef AVX2_ONLY
                printf("| %s | %lld × %lld | %d | %s | %.1f |\n", shapes[s].name, (long long)rows, (long long)n, nc,
                       where ? "dram" : "cache", a);
#else
                if (!vnni) {
                    printf("| %s | %lld × %lld | %d | %s | %.1f | (no AVX512-VNNI) | | |\n", shapes[s].name,
                           (long long)rows, (long long)n, nc, where ? "dram" : "cache", a);
                    continue;
                }
                const double b = gmacs(v512, type, w, wrb, rows, n, cp, x, xrb, nc, y1, reps);
                printf("| %s | %lld × %lld | %d | %s | %.1f | %.1f | %.2f | %s |\n", shapes[s].name, (long long)rows,
                       (long long)n, nc, where ? "dram" : "cache", a, b, b / a,
                       memcmp(y0, y1, (size_t)rows * nc * sizeof(float)) ? "DIFFERENT" : "same");
#endif
            }
        free(w); free(row); free(x); free(y0); free(y1);
    }
    return 0;
}
