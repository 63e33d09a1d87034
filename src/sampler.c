/* sampler.c — greedy / temperature / top-p sampling, as llama2.c's run.c does it. */
#include "sampler.h"

#include <stdlib.h>

#include "kernels.h"

ifk_status ifk_sampler_init(ifk_sampler *s, int vocab, float temperature, float topp, uint64_t seed) {
    IFK_CHECK_ARG(temperature >= 0.0f, "--temperature %g is negative", temperature);
    IFK_CHECK_ARG(topp >= 0.0f && topp <= 1.0f, "--topp %g is outside [0, 1]", topp);
    /* llama2.c's xorshift: a zero state stays zero, and every coin would be 0.0 */
    IFK_CHECK_ARG(seed != 0, "--seed 0: the sampler needs a seed >= 1");
    s->vocab = vocab;
    s->temperature = temperature;
    s->topp = topp;
    s->rng = seed;
    s->top_k = 0;
    s->penalty = 1.0f;
    s->seen = NULL;
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
    free(s->seen);
    s->probs = NULL;
    s->idx = NULL;
    s->seen = NULL;
}

ifk_status ifk_sampler_set_hf(ifk_sampler *s, int top_k, float penalty) {
    IFK_CHECK_ARG(top_k >= 0, "top_k %d is negative", top_k);
    IFK_CHECK_ARG(penalty > 0.0f, "repetition penalty %g is not positive", penalty);
    s->top_k = top_k;
    s->penalty = penalty;
    if (penalty != 1.0f && !s->seen) {
        s->seen = ifk_calloc((size_t)s->vocab, 1, "sampler seen tokens");
        if (!s->seen) return IFK_ERR_OOM;
    }
    return IFK_OK;
}

void ifk_sampler_seen(ifk_sampler *s, int id) {
    if (s->seen && id >= 0 && id < s->vocab) s->seen[id] = 1;
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

/* transformers' TopKLogitsWarper: drop every token below the k-th largest probability. */
static void top_k_(ifk_sampler *s) {
    if (s->top_k <= 0 || s->top_k >= s->vocab) return;
    for (int i = 0; i < s->vocab; i++) s->idx[i] = i;
    cmp_probs_ = s->probs;
    qsort(s->idx, (size_t)s->vocab, sizeof(int), cmp_desc_);
    const float kth = s->probs[s->idx[s->top_k - 1]];
    double z = 0.0;
    for (int i = 0; i < s->vocab; i++) {
        if (s->probs[i] < kth) s->probs[i] = 0.0f;
        z += s->probs[i];
    }
    for (int i = 0; i < s->vocab; i++) s->probs[i] = (float)(s->probs[i] / z);
}

int ifk_sample(ifk_sampler *s, float *logits) {
    if (s->seen) /* transformers' RepetitionPenaltyLogitsProcessor, before any warper */
        for (int i = 0; i < s->vocab; i++)
            if (s->seen[i]) logits[i] = logits[i] > 0 ? logits[i] / s->penalty : logits[i] * s->penalty;
    if (s->temperature == 0.0f) return ifk_argmax(logits, s->vocab);
    for (int i = 0; i < s->vocab; i++) s->probs[i] = logits[i] / s->temperature;
    ifk_softmax(s->probs, s->vocab);
    top_k_(s);
    float coin = random_f32_(&s->rng);
    if (s->topp <= 0.0f || s->topp >= 1.0f) return sample_mult_(s->probs, s->vocab, coin);
    return sample_topp_(s, coin);
}
