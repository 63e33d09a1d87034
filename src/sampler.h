/* sampler.h — next-token choice from logits: greedy, temperature, top-p; llama2.c's xorshift RNG
 * so that a seed gives the same tokens as llama2.c's run.c. Local. */
#ifndef IFK_SAMPLER_H
#define IFK_SAMPLER_H

#include <stdint.h>

#include "status.h"

typedef struct {
    int vocab;
    float temperature; /* 0: greedy */
    float topp;        /* in (0,1): nucleus sampling; otherwise plain multinomial */
    uint64_t rng;
    float *probs;      /* (V) scratch */
    int *idx;          /* (V) scratch for top-p */
} ifk_sampler;

ifk_status ifk_sampler_init(ifk_sampler *s, int vocab, float temperature, float topp, uint64_t seed);
void ifk_sampler_free(ifk_sampler *s);
/* Picks the next token; logits (V) are modified (scaled and softmaxed) unless greedy. */
int ifk_sample(ifk_sampler *s, float *logits);
int ifk_argmax(const float *x, int n);

#endif
