/* bench.c — the sgemm peak and FLOP counts behind `infoflow bench`. */
#include "bench.h"

#include <stdlib.h>

#include "engine.h"
#include "sys.h"
#include "kernels.h"

double ifk_bench_sgemm_peak(int n, double min_seconds) {
    size_t nn = (size_t)n * n;
    float *a = malloc(sizeof(float) * nn), *b = malloc(sizeof(float) * nn), *c = malloc(sizeof(float) * nn);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0.0;
    }
    for (size_t i = 0; i < nn; i++) a[i] = (float)(i % 7) * 0.01f, b[i] = (float)(i % 5) * 0.01f;
    ifk_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm-up: thread start, page faults */
    double best = 0.0, start = ifk_now();
    do {
        double t0 = ifk_now();
        ifk_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double g = 2.0 * n * n * (double)n / (ifk_now() - t0) / 1e9;
        if (g > best) best = g;
    } while (ifk_now() - start < min_seconds);
    free(a), free(b), free(c);
    return best;
}

double ifk_rows_flops(const ifk_config *c, const int *pos, int n) {
    double D = c->dim, L = c->n_layers, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double keys = 0;
    for (int i = 0; i < n; i++) keys += (pos ? pos[i] : i) + 1.0;
    return 2.0 * n * L * (D * q + 2 * D * kv + q * D + 3 * D * c->hidden_dim) + 4.0 * L * q * keys;
}

double ifk_prefill_flops(const ifk_config *c, int T) {
    double D = c->dim, L = c->n_layers, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double proj = 2.0 * T * L * (D * q + 2 * D * kv + q * D + 3 * D * c->hidden_dim);
    double attn = 2.0 * 2.0 * L * q * (double)T * T / 2.0;
    return proj + attn + 2.0 * D * c->vocab_size;
}
