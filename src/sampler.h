/* sampler.h — next-token choice from logits: greedy, temperature, top-p; llama2.c's xorshift RNG
 * so that a seed gives the same tokens as llama2.c's run.c. Also transformers' top-k and
 * repetition penalty (for generation_config.json), in transformers' order: penalty, temperature,
 * top-k, top-p. Local. */
#ifndef IFK_SAMPLER_H
#define IFK_SAMPLER_H

#include <stdint.h>

#include "status.h"

typedef struct {
    int vocab;
    float temperature; /* 0: greedy */
    float topp;        /* in (0,1): nucleus sampling; otherwise plain multinomial */
    int top_k;         /* > 0: only the k most probable tokens (ties at the k-th kept); 0: off */
    float penalty;     /* repetition penalty (1: off): a seen token's logit l becomes l/p (l > 0) or l*p */
    unsigned char *seen; /* (V) tokens seen so far, when penalty != 1 */
    uint64_t rng;
    float *probs;      /* (V) scratch */
    int *idx;          /* (V) scratch for top-p */
} ifk_sampler;

/* vocab logits per step; temperature >= 0; topp in [0, 1]; seed >= 1 (llama2.c's xorshift state,
 * which stays 0 from 0). Errors: IFK_ERR_ARG (a bad setting, named as its option), IFK_ERR_OOM. */
ifk_status ifk_sampler_init(ifk_sampler *s, int vocab, float temperature, float topp, uint64_t seed);
void ifk_sampler_free(ifk_sampler *s);
/* Sets top-k (0: off) and the repetition penalty (1: off; > 0). */
ifk_status ifk_sampler_set_hf(ifk_sampler *s, int top_k, float penalty);
/* Marks token id as seen (prompt and generated tokens): no-op without a penalty. */
void ifk_sampler_seen(ifk_sampler *s, int id);
/* Picks the next token; logits (V) are modified (penalised, scaled and softmaxed). */
int ifk_sample(ifk_sampler *s, float *logits);
int ifk_argmax(const float *x, int n);

#endif
