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

#endif
