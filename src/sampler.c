/* sampler.c — greedy / temperature / top-p sampling, as llama2.c's run.c does it. */
#include "sampler.h"

#include <stdlib.h>

#include "kernels.h"

ifk_status ifk_sampler_init(ifk_sampler *s, int vocab, float temperature, float topp, uint64_t seed) {
    IFK_CHECK_ARG(temperature >= 0.0f, "--temperature %g is negative", temperature);
    IFK_CHECK_ARG(topp >= 0.0f && topp <= 1.0f, "--topp %g is outside [0, 1]", topp);
    s->vocab = vocab;
    s->temperature = temperature;
    s->topp = topp;
    s->rng = seed;
    s->probs = ifk_malloc(sizeof(float) * (size_t)vocab, "sampler probabilities");
    s->idx = ifk_malloc(sizeof(int) * (size_t)vocab, "sampler index");
    if (!s->probs || !s->idx) {
        ifk_sampler_free(s);
        return IFK_ERR_OOM;
    }
    return IFK_OK;
}

void ifk_sampler_free(ifk_sampler *s) {
    free(s->probs);
    free(s->idx);
    s->probs = NULL;
    s->idx = NULL;
}

int ifk_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static uint32_t random_u32_(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

static float random_f32_(uint64_t *state) { return (random_u32_(state) >> 8) / 16777216.0f; }

static int sample_mult_(const float *p, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) return i;
    }
    return n - 1;
}

static const float *cmp_probs_;
static int cmp_desc_(const void *a, const void *b) {
    float pa = cmp_probs_[*(const int *)a], pb = cmp_probs_[*(const int *)b];
    return pa > pb ? -1 : pa < pb ? 1 : 0;
}

/* nucleus sampling: among the most probable tokens whose mass first exceeds topp. Tokens below
 * (1-topp)/(n-1) cannot be in the nucleus and are dropped before the sort, as llama2.c does. */
static int sample_topp_(ifk_sampler *s, float coin) {
    const float cutoff = (1.0f - s->topp) / (float)(s->vocab - 1);
    int n0 = 0;
    for (int i = 0; i < s->vocab; i++)
        if (s->probs[i] >= cutoff) s->idx[n0++] = i;
    cmp_probs_ = s->probs;
    qsort(s->idx, (size_t)n0, sizeof(int), cmp_desc_);
    float cum = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cum += s->probs[s->idx[i]];
        if (cum > s->topp) { last = i; break; }
    }
    float r = coin * cum, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += s->probs[s->idx[i]];
        if (r < cdf) return s->idx[i];
    }
    return s->idx[last];
}

int ifk_sample(ifk_sampler *s, float *logits) {
    if (s->temperature == 0.0f) return ifk_argmax(logits, s->vocab);
    for (int i = 0; i < s->vocab; i++) s->probs[i] = logits[i] / s->temperature;
    ifk_softmax(s->probs, s->vocab);
    float coin = random_f32_(&s->rng);
    if (s->topp <= 0.0f || s->topp >= 1.0f) return sample_mult_(s->probs, s->vocab, coin);
    return sample_topp_(s, coin);
}
