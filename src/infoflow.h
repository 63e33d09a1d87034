/* infoflow.h — the method's steps at query time (../shared/docs/algorithm.md §3–§9), as calls
 * into the forward pass. Local: nothing here reads a store or talks to another rank; the driver
 * (mpi/query.c) gathers the cached chunks into a KV cache and calls these in order.
 *
 * The context lives in cache slots 0..T-1: slot 0 is BOS, then the chunks back to back. The
 * positions the slots carry (c->pos) are what scoring and recompute see: contiguous global
 * positions after ifk_kvcache_rerotate, or each chunk's local ones for the first scoring pass of
 * --reorder. A prompt always goes to slots T.., at positions T... */
#ifndef IFK_INFOFLOW_H
#define IFK_INFOFLOW_H

#include "forward.h"

typedef enum {
    IFK_METHOD_FULL = 0,  /* plain prefill of the whole context: the quality reference */
    IFK_METHOD_NONE,      /* the re-rotated cache as is */
    IFK_METHOD_INFOFLOW,  /* attention-norm selection under global positions */
    IFK_METHOD_CACHEBLEND,/* layer-1 V deviation after an exact layer 0 */
    IFK_METHOD_EPIC,      /* the first R of every chunk */
    IFK_METHOD_RANDOM,    /* seeded uniform choice outside the first chunk */
    IFK_METHOD_INFOFLOW_DEV /* attention-weighted deviation: InfoFlow's score x CacheBlend's (ifk_dev_opts) */
} ifk_method;

const char *ifk_method_name(ifk_method m);
ifk_status ifk_method_parse(const char *s, ifk_method *m);

/* The default scoring band for L layers: [floor(0.55 L), max(lo, ceil(0.8 L) - 1)] (0-based);
 * 5 layers -> 2..3, 32 -> 17..25, 40 -> 22..31. */
void ifk_default_score_layers(int L, int *lo, int *hi);

/* InfoFlow's score of every context slot: the prompt (P tokens at positions T..T+P-1, written to
 * scratch slots T..T+P-1; c->len stays T) runs through layers 0..hi over the cache; at each layer
 * l in [lo, hi] the softmax attention of every prompt row (causal among the prompt) over context
 * + prompt keys is averaged over query heads, A[q][k]; s_l[k] = sqrt(sum_q A[q][k]^2); score[k]
 * is the mean of s_l[k] over the band, for k < T. psum is scratch of P*(T+P) floats.
 * Tensor-parallel: collective over s->tp; the score is valid on rank 0 only. */
ifk_status ifk_score_infoflow(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int T, const int *prompt, int P,
                              int lo, int hi, float *psum, float *score);

/* CacheBlend's score: layer 0 recomputed exactly for all T context tokens (ids), then each
 * token's squared distance between fresh and cached layer-1 V, summed over KV heads and dims.
 * Tensor-parallel: collective; valid on rank 0 only. */
ifk_status ifk_score_cacheblend(const ifk_model *m, ifk_state *s, const ifk_kvcache *c, const int *ids, int T,
                                float *score);

/* The variants of infoflow-dev (docs/method.md "Attention-weighted deviation"). The defaults: V
 * deviation at layer 1, attention norm over prompt rows, product with the deviation squared
 * (alpha 2; the oracle's method is alpha 1). */
typedef enum { IFK_DEV_V = 0, IFK_DEV_K, IFK_DEV_KV } ifk_dev_source;   /* which cached tensor's error */
typedef enum { IFK_DEV_PRODUCT = 0, IFK_DEV_RANKSUM } ifk_dev_combine;  /* how the two signals meet */
typedef enum { IFK_DEV_ATTN_NORM = 0, IFK_DEV_ATTN_SUM } ifk_dev_attn;  /* L2 over prompt rows, or sum */
typedef enum { IFK_DEV_EXACT = 0, IFK_DEV_POSITION } ifk_dev_estimate;  /* recomputed, or a position prior */
typedef struct {
    ifk_dev_source source;
    int layer;               /* deviation layer, >= 1: layers 0..layer-1 are recomputed exactly for all T */
    ifk_dev_combine combine;
    double alpha;            /* product: attention * deviation^alpha (deviation = the L2 norm) */
    ifk_dev_attn attn;
    ifk_dev_estimate estimate;
} ifk_dev_opts;

/* The defaults (V, layer 1, product, alpha 2, norm, exact). */
void ifk_dev_opts_default(ifk_dev_opts *o);
/* Parses "key=value,..." over the defaults: source=v|k|kv, layer=N (1..L-1), combine=product|ranksum,
 * alpha=X (0 < X <= 8), attn=norm|sum, estimate=exact|position. Unknown keys or values: IFK_ERR_ARG
 * naming them. L: the model's layers. */
ifk_status ifk_dev_opts_parse(const char *spec, int L, ifk_dev_opts *o);
/* "source=v,layer=1,..." (all keys) into buf. */
void ifk_dev_opts_format(const ifk_dev_opts *o, char *buf, size_t n);

/* Each context token's squared deviation at `layer` (>= 1): layers 0..layer-1 run exactly over all
 * T context tokens (ids, at the cache's positions), then layer `layer`'s fresh V (source V), K
 * after RoPE at the same positions (K), or both (KV) are compared with the cached ones:
 * dev2[t] = sum over KV heads and dims of (fresh - cached)^2. Layer 1, V is CacheBlend's score.
 * Tensor-parallel: collective; each rank sums its own KV heads, the total is on rank 0 only. */
ifk_status ifk_score_deviation(const ifk_model *m, ifk_state *s, const ifk_kvcache *c, const int *ids, int T,
                               int layer, ifk_dev_source source, float *dev2);

/* The attention signal of ifk_score_infoflow with a choice of reduction over prompt rows:
 * sum_rows = 0: sqrt(sum_q A[q][k]^2) (InfoFlow's); 1: sum_q A[q][k] (the column sum: with a
 * per-token deviation d_k, sum_q A[q][k] d_k = |sum_q A[q][k] dv_k|, the first-order error of the
 * prompt rows' mean output). Same arguments, collectivity and validity as ifk_score_infoflow. */
ifk_status ifk_score_attention(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int T, const int *prompt, int P,
                               int lo, int hi, int sum_rows, float *psum, float *score);

/* infoflow-dev's combination, local: att[T] (>= 0) and dev2[T] (squared deviations, or the
 * position prior's weights squared) into score[T] (may alias att). product: att * sqrt(dev2)^alpha;
 * ranksum: -(rank of att + rank of dev), rank 0 the largest (ties: lower slot first). */
ifk_status ifk_dev_combine_scores(const float *att, const float *dev2, int T, const ifk_dev_opts *o, float *score);

/* The position prior of estimate=position, squared like a deviation: for every slot of chunk c >= 1
 * (start[c], len[c]), 1 / (1 + j) at offset j; 0 in chunk 0 (exact already). No model run. */
void ifk_dev_position_prior(int n_chunks, const int *start, const int *len, int T, float *dev2);

/* infoflow-dev's score of every context slot: the attention signal (band lo..hi, over the prompt)
 * combined with the deviation (exact, or the position prior over the chunk spans) per o. psum:
 * P*(T+P) floats of scratch. No first-chunk exclusion (its deviation is 0). Tensor-parallel:
 * collective; valid on rank 0 only. */
ifk_status ifk_score_infoflow_dev(const ifk_model *m, ifk_state *s, ifk_kvcache *c, const int *ids, int T,
                                  const int *prompt, int P, int lo, int hi, const ifk_dev_opts *o, int n_chunks,
                                  const int *start, const int *len, float *psum, float *score);

/* The n best slots of score[from..T) (higher first, lower slot on ties), returned ascending. */
ifk_status ifk_select_top(const float *score, int T, int from, int n, int *sel);
/* EPIC: the first floor(R * len) slots of every chunk (chunk 0 counts its BOS). Returns the count. */
int ifk_select_epic(int n_chunks, const int *start, const int *len, double R, int *sel);
/* n slots drawn uniformly without replacement from [from, T), seeded, ascending. */
void ifk_select_random(int T, int from, int n, uint64_t seed, int *sel);
/* floor(R * T), the budget in tokens. */
int ifk_budget(double R, int T);

/* Selective recompute: the n selected slots (ascending; ids their tokens) go through every layer
 * at their positions: layer l's input is their own layer l-1 output (layer 0: embeddings); at
 * each layer their new K/V overwrite slots sel first, then they attend to every context slot
 * [0, T) causally by position. Other slots keep their cached K/V. The last layer stops at its K/V
 * (ifk_layer_kv): the rows' final hidden states are discarded (algorithm.md §6), so s->x is not
 * their output. */
ifk_status ifk_recompute(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int T, const int *ids, const int *sel,
                         int n);

/* --reorder's chunk order: each chunk's hit rate |sel ∩ chunk| / len, chunks sorted ascending by
 * (rate, original index) so the richest chunk comes last, next to the prompt. order[i] is the
 * original index of the chunk placed i-th. */
void ifk_reorder(int n_chunks, const int *start, const int *len, const int *sel, int n, int *order);

/* KL(p || q) of two logit vectors' softmax distributions, in nats, computed in double. */
double ifk_kl_logits(const float *p_logits, const float *q_logits, int V);

#endif
