/* decode.h — the one decode loop: `generate` and the query's answer both run it. Local, or
 * collective over s->tp under tensor parallelism (rank 0's token is broadcast). */
#ifndef IFK_DECODE_H
#define IFK_DECODE_H

#include "forward.h"
#include "model.h"
#include "sampler.h"

/* Called for each token as it is decided: prev is the token before it. */
typedef void (*ifk_token_fn)(int prev, int tok, void *ctx);

typedef struct {
    int n;          /* tokens emitted */
    double first_s; /* from the call to the first token decided (after its broadcast) */
    double total_s; /* the whole call */
} ifk_decode_stats;

/* Decodes after a prefill: logits (V, overwritten) hold the last prefilled row, prev is the last
 * prefilled token, and the cache's next slot c->len is the next position. Each step picks a token
 * (smp, or greedy argmax when smp is NULL; under s->tp rank 0's pick is broadcast), stops before
 * emitting BOS or EOS, emits it to out[] (if not NULL, room for max_new) and fn, and feeds it
 * through the model at position c->len unless max_new tokens are out or the cache is full: the
 * last token is never fed (llama2.c's loop). Errors: those of ifk_forward and the broadcast.
 * Collective over s->tp when set. */
ifk_status ifk_decode(const ifk_model *m, ifk_state *s, ifk_kvcache *c, float *logits, int prev, int max_new,
                      ifk_sampler *smp, int *out, ifk_token_fn fn, void *ctx, ifk_decode_stats *ds);

typedef struct {
    int n_prompt;       /* prompt tokens, BOS included */
    int n_generated;    /* sampled tokens */
    double prefill_s;   /* batched prefill of the prompt, first token included */
    double decode_s;    /* every later token */
} ifk_gen_stats;

/* llama2.c's generation: prompt ids[n] (BOS first) prefilled in one batch at positions 0..n-1,
 * then ifk_decode until `steps` positions are filled (the prompt included) or BOS/EOS is sampled.
 * steps is clamped to the model's positions. fn also sees the prompt's tokens after BOS. Local.
 * Errors: IFK_ERR_ARG (empty prompt, prompt longer than steps or the model), IFK_ERR_OOM. */
ifk_status ifk_generate(const ifk_model *m, ifk_sampler *smp, const int *ids, int n, int steps, ifk_token_fn fn,
                        void *ctx, ifk_gen_stats *stats);

/* ifk_generate on a tensor-parallel group: m is this rank's slice (ifk_model_slice), every rank of
 * tp calls it with the same arguments, every forward is collective over tp and each step's token is
 * rank 0's sample, broadcast (ifk_decode); the text differs from one rank's only where the
 * reductions' rounding moves a sample. tp NULL: ifk_generate, bitwise. fn may be NULL on every
 * rank but rank 0. Collective over tp when set. Errors: as ifk_generate, and the hooks'. */
ifk_status ifk_generate_tp(const ifk_model *m, ifk_tp *tp, ifk_sampler *smp, const int *ids, int n, int steps,
                           ifk_token_fn fn, void *ctx, ifk_gen_stats *stats);

#endif
