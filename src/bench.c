/* bench.c — the GEMM peaks and FLOP counts behind `infoflow bench`. */
#include "bench.h"

#include <stdlib.h>

#include "engine.h"
#include "sys.h"
#include "kernels.h"

double ifk_bench_gemm_peak(ifk_gemm_backend backend, ifk_wdtype wdt, int M, int N, int K, double min_seconds,
                           const char **impl) {
    ifk_gemm_backend was = ifk_gemm_get_backend();
    if (ifk_gemm_set_backend(backend) != 0) return 0.0;
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb), *c = malloc(sizeof(float) * nc);
    void *bw = malloc(ifk_wdtype_size(wdt) * nb);
    double best = 0.0;
    if (!a || !b || !c || !bw) goto out;
    for (size_t i = 0; i < na; i++) a[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < nb; i++) b[i] = (float)(i % 5) * 0.01f;
    ifk_weights_from_f32(bw, wdt, b, nb);
    /* the projection shape: Y(M,N) = X(M,K) W(N,K)^T, weights as the model stores them */
    ifk_matmul_w(c, a, bw, wdt, M, K, N); /* warm-up: primitive creation, thread start, page faults */
    if (impl) *impl = ifk_matmul_w_impl(wdt, M, K, N);
    double start = ifk_now();
    do {
        double t0 = ifk_now();
        ifk_matmul_w(c, a, bw, wdt, M, K, N);
        double g = 2.0 * M * (double)N * K / (ifk_now() - t0) / 1e9;
        if (g > best) best = g;
    } while (ifk_now() - start < min_seconds);
out:
    free(a), free(b), free(c), free(bw);
    ifk_gemm_set_backend(was);
    return best;
}

double ifk_rows_flops(const ifk_config *c, const int *pos, int n) {
    double D = c->dim, L = c->n_layers, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double keys = 0;
    for (int i = 0; i < n; i++) keys += (pos ? pos[i] : i) + 1.0;
    return 2.0 * n * L * (D * q + 2 * D * kv + q * D + 3 * D * c->hidden_dim) + 4.0 * L * q * keys;
}

double ifk_kv_rows_flops(const ifk_config *c, const int *pos, int n) {
    double D = c->dim, q = (double)c->n_heads * c->head_dim, keys = 0;
    for (int i = 0; i < n; i++) keys += (pos ? pos[i] : i) + 1.0;
    return ifk_rows_flops(c, pos, n) - 2.0 * n * (D * q + q * D + 3 * D * c->hidden_dim) - 4.0 * q * keys;
}

double ifk_score_flops(const ifk_config *c, int T, int P, int hi) {
    double D = c->dim, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double keys = 0;
    for (int i = 0; i < P; i++) keys += T + i + 1.0;
    const double qkv = D * q + 2 * D * kv, rest = q * D + 3 * D * c->hidden_dim;
    return 2.0 * P * ((hi + 1) * qkv + hi * rest) + 4.0 * (hi + 1) * q * keys;
}

double ifk_bench_read_bandwidth(size_t bytes, double min_seconds) {
    size_t n = bytes / sizeof(float);
    float *x = malloc(n * sizeof(float));
    if (!x || n == 0) {
        free(x);
        return 0.0;
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)(i & 15);
    double best = 0.0, start = ifk_now(), sink = 0.0;
    int first = 1;
    do {
        double t0 = ifk_now();
        sink += ifk_read_sum(x, n);
        double dt = ifk_now() - t0;
        if (!first && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
        first = 0;
    } while (ifk_now() - start < min_seconds || best == 0.0);
    free(x);
    return sink == -1.0 ? 0.0 : best; /* sink keeps the reads alive */
}

double ifk_prefill_flops(const ifk_config *c, int T) {
    double D = c->dim, L = c->n_layers, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double proj = 2.0 * T * L * (D * q + 2 * D * kv + q * D + 3 * D * c->hidden_dim);
    double attn = 2.0 * 2.0 * L * q * (double)T * T / 2.0;
    return proj + attn + 2.0 * D * c->vocab_size;
}

void ifk_largest_gemm(const ifk_config *c, int *out, int *in) {
    const int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    const int shapes[5][2] = {{q, c->dim}, {kv, c->dim}, {c->dim, q}, {c->hidden_dim, c->dim}, {c->dim, c->hidden_dim}};
    double best = 0;
    for (int i = 0; i < 5; i++)
        if ((double)shapes[i][0] * shapes[i][1] > best)
            best = (double)shapes[i][0] * shapes[i][1], *out = shapes[i][0], *in = shapes[i][1];
}
