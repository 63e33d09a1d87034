/* decode.c — the decode loop and llama2.c's generation (decode.h). */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include "sys.h"

ifk_status ifk_decode(const ifk_model *m, ifk_state *s, ifk_kvcache *c, float *logits, int prev, int max_new,
                      ifk_sampler *smp, int *out, ifk_token_fn fn, void *ctx, ifk_decode_stats *ds) {
    const ifk_config *cfg = &m->cfg;
    const double t0 = ifk_now();
    memset(ds, 0, sizeof *ds);
    for (int i = 0; i < max_new; i++) {
        int next = smp ? ifk_sample(smp, logits) : ifk_argmax(logits, cfg->vocab_size);
        if (s->tp) IFK_CHECK(s->tp->bcast_ints(&next, 1, s->tp->ctx)); /* rank 0 decides */
        if (i == 0) ds->first_s = ifk_now() - t0;
        if (ifk_config_is_stop(cfg, next)) break; /* BOS or any id of the eos_token_id list */
        if (out) out[ds->n] = next;
        ds->n++;
        if (smp) ifk_sampler_seen(smp, next); /* the repetition penalty's history */
        if (fn) fn(prev, next, ctx);
        prev = next;
        if (i + 1 == max_new || c->len >= c->capacity) break;
        int p = c->len;
        IFK_CHECK(ifk_forward(m, s, c, &next, &p, 1, logits, 0));
    }
    ds->total_s = ifk_now() - t0;
    return IFK_OK;
}

ifk_status ifk_generate(const ifk_model *m, ifk_sampler *smp, const int *ids, int n, int steps, ifk_token_fn fn,
                        void *ctx, ifk_gen_stats *stats) {
    return ifk_generate_tp(m, NULL, smp, ids, n, steps, fn, ctx, stats);
}

ifk_status ifk_generate_tp(const ifk_model *m, ifk_tp *tp, ifk_sampler *smp, const int *ids, int n, int steps,
                           ifk_token_fn fn, void *ctx, ifk_gen_stats *stats) {
    const ifk_config *c = &m->cfg;
    if (steps <= 0 || steps > c->seq_len) steps = c->seq_len;
    IFK_CHECK_ARG(n >= 1, "empty prompt (no tokens, not even BOS)");
    IFK_CHECK_ARG(n <= c->seq_len, "prompt is %d tokens but the model has only %d positions", n, c->seq_len);
    IFK_CHECK_ARG(n <= steps, "prompt is %d tokens but --steps is %d (steps count the prompt)", n, steps);
    memset(stats, 0, sizeof *stats);
    stats->n_prompt = n;
    ifk_kvcache cache;
    ifk_state s = {.tp = tp};
    IFK_CHECK(ifk_kvcache_init(&cache, c, steps));
    int *pos = malloc(sizeof(int) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)c->vocab_size);
    ifk_status st = IFK_OK;
    if (!pos || !logits) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory for the prompt");
        goto done;
    }
    for (int i = 0; i < n; i++) pos[i] = i;
    double t0 = ifk_now();
    IFK_CHECK_GOTO(st, ifk_forward(m, &s, &cache, ids, pos, n, logits, 0), done);
    double t_prefill = ifk_now() - t0;
    for (int i = 0; i < n; i++) ifk_sampler_seen(smp, ids[i]);
    if (fn)
        for (int i = 1; i < n; i++) fn(ids[i - 1], ids[i], ctx);
    /* positions n..steps-1 are fed; the token sampled at the last one is emitted, not fed */
    ifk_decode_stats ds;
    IFK_CHECK_GOTO(st, ifk_decode(m, &s, &cache, logits, ids[n - 1], steps - n + 1, smp, NULL, fn, ctx, &ds), done);
    stats->n_generated = ds.n;
    stats->prefill_s = t_prefill + ds.first_s;
    stats->decode_s = ds.total_s - ds.first_s;
done:
    free(pos);
    free(logits);
    ifk_state_free(&s);
    ifk_kvcache_free(&cache);
    return st;
}
