/* bench.h — measurement helpers for `infoflow bench`: the sgemm peak measured in the same run, and
 * FLOP counts of a prefill (the same formula as ../shared/bench/torch_prefill.py). Local. */
#ifndef IFK_BENCH_H
#define IFK_BENCH_H

#include "model.h"

/* Best GFLOP/s of an n x n x n sgemm through ifk_gemm over at least min_seconds. */
double ifk_bench_sgemm_peak(int n, double min_seconds);
/* FLOPs of a T-token prefill: projections and MLP for every row, causal attention counted as half
 * of the T x T products, and the classifier for the last row. */
double ifk_prefill_flops(const ifk_config *c, int T);
/* FLOPs of n rows at positions pos[n] (pos NULL: 0..n-1) attending causally to every key at or
 * before their position, as a prefill or a selective recompute runs them: projections and MLP
 * for every row, and 4 H Dh (pos + 1) per row and layer for the attention; no classifier. The
 * same count for both, so that their GFLOP/s compare. */
double ifk_rows_flops(const ifk_config *c, const int *pos, int n);

#endif
