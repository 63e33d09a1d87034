/* bench.h — measurement helpers for `infoflow bench`: GEMM peaks and the memory read bandwidth measured
 * in the same run, and FLOP counts of a prefill (the same formula as ../shared/bench/torch_prefill.py).
 * Local. */
#ifndef IFK_BENCH_H
#define IFK_BENCH_H

#include "model.h"

/* Best GFLOP/s (2 M N K / s) of the projection Y(M,N) = X(M,K) W(N,K)^T with W in dtype wdt, through
 * backend, over at least min_seconds after a warm-up. *impl (optional) gets the implementation that ran.
 * 0 when the backend is not built in or memory runs out. Restores the previous backend. */
double ifk_bench_gemm_peak(ifk_gemm_backend backend, ifk_wdtype wdt, int M, int N, int K, double min_seconds,
                           const char **impl);
/* STREAM-like read bandwidth in GB/s: best pass of a vectorized sum over a buffer of `bytes` (take it
 * well above the last-level cache), with the threads ifk_blas_set_threads set. */
double ifk_bench_read_bandwidth(size_t bytes, double min_seconds);
/* FLOPs of a T-token prefill: projections and MLP for every row, causal attention counted as half
 * of the T x T products, and the classifier for the last row. */
double ifk_prefill_flops(const ifk_config *c, int T);
/* FLOPs of n rows at positions pos[n] (pos NULL: 0..n-1) attending causally to every key at or
 * before their position, as a prefill or a selective recompute runs them: projections and MLP
 * for every row, and 4 H Dh (pos + 1) per row and layer for the attention; no classifier. The
 * same count for both, so that their GFLOP/s compare. */
double ifk_rows_flops(const ifk_config *c, const int *pos, int n);
/* ifk_rows_flops for rows whose last layer stops at its K/V (ifk_layer_kv: a prefill into a cache
 * without logits, a selective recompute): that layer's q projection, attention, output projection
 * and MLP not counted. */
double ifk_kv_rows_flops(const ifk_config *c, const int *pos, int n);
/* FLOPs of InfoFlow's scoring forward (ifk_score_attention): the P prompt rows at positions
 * T..T+P-1 through layers 0..hi, attending causally to the T context keys and the prompt's, with
 * layer hi stopping at its attention probabilities (no output projection, no MLP). Counted as
 * ifk_rows_flops counts. */
double ifk_score_flops(const ifk_config *c, int T, int P, int hi);
/* The (out, in) shape of the model's largest per-layer weight matrix (the MLP's, for Llama shapes). */
void ifk_largest_gemm(const ifk_config *c, int *out, int *in);

#endif
