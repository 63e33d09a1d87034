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
    IFK_METHOD_RANDOM     /* seeded uniform choice outside the first chunk */
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
 * [0, T) causally by position. Other slots keep their cached K/V. */
ifk_status ifk_recompute(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int T, const int *ids, const int *sel,
                         int n);

/* --reorder's chunk order: each chunk's hit rate |sel ∩ chunk| / len, chunks sorted ascending by
 * (rate, original index) so the richest chunk comes last, next to the prompt. order[i] is the
 * original index of the chunk placed i-th. */
void ifk_reorder(int n_chunks, const int *start, const int *len, const int *sel, int n, int *order);

/* KL(p || q) of two logit vectors' softmax distributions, in nats, computed in double. */
double ifk_kl_logits(const float *p_logits, const float *q_logits, int V);

#endif
