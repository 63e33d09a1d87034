/* query.c — the single-process query pipeline (query.h). */
#include "query.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* The chunks of a query's documents, in document order: store coordinates and context slots. */
typedef struct {
    int n;
    int *doc, *chunk; /* (n) manifest document index and chunk index */
    int *len;         /* (n) tokens; chunk 0 counts its BOS (len + 1) */
    int T;
    int *ids;         /* (T) token ids by slot in the current order */
    int *ids0;        /* (T) token ids in the original order: what a full prefill reads */
} plan_;

static void plan_free_(plan_ *p) {
    free(p->doc), free(p->chunk), free(p->len), free(p->ids), free(p->ids0);
    memset(p, 0, sizeof *p);
}

static ifk_status plan_make_(ifk_store *st, const ifk_query_docs *qd, plan_ *p) {
    const ifk_manifest *man = ifk_store_manifest(st);
    memset(p, 0, sizeof *p);
    for (int i = 0; i < qd->n_docs; i++) p->n += man->docs[qd->docs[i]].n_chunks;
    IFK_CHECK_ARG(p->n > 0, "the chosen documents hold no tokens");
    p->doc = malloc(sizeof(int) * p->n), p->chunk = malloc(sizeof(int) * p->n);
    p->len = malloc(sizeof(int) * p->n);
    if (!p->doc || !p->chunk || !p->len) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    int k = 0;
    p->T = 0;
    for (int i = 0; i < qd->n_docs; i++) {
        const ifk_doc_rec *r = &man->docs[qd->docs[i]];
        for (int c = 0; c < r->n_chunks; c++, k++) {
            p->doc[k] = qd->docs[i];
            p->chunk[k] = c;
            p->len[k] = r->chunk_len[c] + (k == 0);
            p->T += p->len[k];
        }
    }
    p->ids = malloc(sizeof(int) * (size_t)p->T);
    p->ids0 = malloc(sizeof(int) * (size_t)p->T);
    if (!p->ids || !p->ids0) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    p->ids0[0] = -1; /* BOS, filled by the caller who knows the model */
    for (int k = 0, slot = 1; k < p->n; k++) {
        IFK_CHECK(ifk_store_read_tokens(st, p->doc[k], p->chunk[k], p->ids0 + slot));
        slot += p->len[k] - (k == 0);
    }
    return IFK_OK;
}

/* Loads the chunks into the cache in `order`: BOS at slot 0 (computed: at position 0 it sees only
 * itself, so every chunk's dropped prefix had exactly this K/V), then each chunk's K/V and tokens
 * at the next slots with their local positions (prefix_len + j). global: rotate each chunk to its
 * contiguous global positions (one fused rotation); otherwise leave the local ones (--reorder's
 * first scoring). */
static ifk_status gather_(const ifk_model *m, ifk_store *st, ifk_state *s, ifk_kvcache *c, plan_ *p, const int *order,
                          int global, float *kbuf, float *vbuf, double *t_load, double *t_rotate) {
    const ifk_config *cfg = &m->cfg;
    const int L = cfg->n_layers, Hkv = cfg->n_kv_heads, Dh = cfg->head_dim, pre = ifk_store_manifest(st)->p.prefix_len;
    const int h0 = s->tp ? s->tp->rank * Hkv : 0; /* this rank's KV heads, and only those, are read */
    double t0 = ifk_now();
    c->len = 0;
    int bos = cfg->bos_id, zero = 0;
    IFK_CHECK(ifk_forward(m, s, c, &bos, &zero, 1, NULL, 0));
    p->ids[0] = bos;
    int slot = 1;
    for (int i = 0; i < p->n; i++) {
        const int k = order[i], n = p->len[k] - (k == 0);
        IFK_CHECK(ifk_store_read_chunk(st, p->doc[k], p->chunk[k], h0, Hkv, kbuf, vbuf, p->ids + slot));
        for (int l = 0; l < L; l++)
            for (int h = 0; h < Hkv; h++) {
                const size_t src = ((size_t)l * Hkv + h) * (size_t)n * Dh;
                memcpy(ifk_kv_k(c, l, h) + (size_t)slot * Dh, kbuf + src, sizeof(float) * (size_t)n * Dh);
                memcpy(ifk_kv_v(c, l, h) + (size_t)slot * Dh, vbuf + src, sizeof(float) * (size_t)n * Dh);
            }
        for (int j = 0; j < n; j++) c->pos[slot + j] = pre + j;
        slot += n;
    }
    c->len = slot;
    double t1 = ifk_now();
    *t_load += (t1 - t0) * 1e3;
    if (global) {
        /* chunk tokens were rotated at pre + j; their global position is slot + j */
        slot = 1;
        for (int i = 0; i < p->n; i++) {
            const int k = order[i], n = p->len[k] - (k == 0);
            ifk_kvcache_rerotate(c, m->inv_freq, cfg->rope_style, slot, n, slot - pre);
            slot += n;
        }
    }
    *t_rotate += (ifk_now() - t1) * 1e3;
    return IFK_OK;
}

/* The slots each chunk spans in the current order (chunk 0 with BOS when it is first). */
static void spans_(const plan_ *p, const int *order, int *start, int *len) {
    int slot = 0;
    for (int i = 0; i < p->n; i++) {
        const int k = order[i], n = p->len[k] - (k == 0) + (i == 0);
        start[i] = slot;
        len[i] = n;
        slot += n;
    }
}

static void comm_mark_(const ifk_tp *tp, ifk_query_result *r, int ph, double *sec, double *bytes);

/* Prefills the prompt at slots/positions T.. and greedily decodes up to steps tokens (stopping
 * at BOS/EOS). First logits go to first (V). */
static ifk_status answer_(const ifk_model *m, ifk_state *s, ifk_kvcache *c, const int *prompt, int P, int steps,
                          float *first, int *out, int *n_out, double *t_prompt, double *t_first, ifk_query_result *r,
                          double *csec, double *cbytes) {
    const ifk_config *cfg = &m->cfg;
    int *pos = malloc(sizeof(int) * (size_t)P);
    float *logits = malloc(sizeof(float) * (size_t)cfg->vocab_size);
    ifk_status st = IFK_OK;
    if (!pos || !logits) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto done;
    }
    const int T = c->len;
    for (int i = 0; i < P; i++) pos[i] = T + i;
    double t0 = ifk_now();
    IFK_CHECK_GOTO(st, ifk_forward(m, s, c, prompt, pos, P, logits, 0), done);
    double t1 = ifk_now();
    if (r) comm_mark_(s->tp, r, IFK_PHASE_PROMPT, csec, cbytes);
    memcpy(first, logits, sizeof(float) * (size_t)cfg->vocab_size);
    *n_out = 0;
    for (int i = 0; i < steps; i++) {
        int next = ifk_argmax(logits, cfg->vocab_size);
        if (s->tp) IFK_CHECK_GOTO(st, s->tp->bcast_ints(&next, 1, s->tp->ctx), done); /* rank 0 decides */
        if (i == 0 && t_first) *t_first = (ifk_now() - t1) * 1e3;
        if (next == cfg->bos_id || next == cfg->eos_id) break;
        out[(*n_out)++] = next;
        if (i + 1 == steps || c->len >= c->capacity) break;
        int p = c->len;
        IFK_CHECK_GOTO(st, ifk_forward(m, s, c, &next, &p, 1, logits, 0), done);
    }
    if (t_prompt) *t_prompt = (t1 - t0) * 1e3;
done:
    free(pos);
    free(logits);
    return st;
}

void ifk_query_result_free(ifk_query_result *r) {
    free(r->order), free(r->selected), free(r->answer), free(r->first_logits), free(r->full_answer);
    memset(r, 0, sizeof *r);
}

/* The full-prefill reference: BOS + every chunk's tokens + the prompt, from the token ids alone. */
static ifk_status full_(const ifk_model *m, ifk_state *s, ifk_kvcache *c, const int *ids, int T, const int *prompt,
                        int P, int steps, float *first, int *out, int *n_out, double *ttft) {
    double t0 = ifk_now();
    int *all = malloc(sizeof(int) * (size_t)(T + P)), *pos = malloc(sizeof(int) * (size_t)T);
    if (!all || !pos) {
        free(all), free(pos);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    memcpy(all, ids, sizeof(int) * (size_t)T);
    for (int i = 0; i < T; i++) pos[i] = i;
    c->len = 0;
    ifk_status st = ifk_forward(m, s, c, all, pos, T, NULL, 0);
    double tctx = (ifk_now() - t0) * 1e3, tp = 0, tf = 0;
    if (st == IFK_OK) st = answer_(m, s, c, prompt, P, steps, first, out, n_out, &tp, &tf, NULL, NULL, NULL);
    *ttft = tctx + tp + tf; /* to the first token, not the whole answer */
    free(all), free(pos);
    return st;
}

static const char *fmt_bytes_(double b, char *buf) {
    if (b >= 1073741824.0) snprintf(buf, 32, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(buf, 32, "%.1f MiB", b / 1048576.0);
    else snprintf(buf, 32, "%.0f KiB", b / 1024.0);
    return buf;
}

/* Adds the communication since the last mark to phase ph. */
static void comm_mark_(const ifk_tp *tp, ifk_query_result *r, int ph, double *sec, double *bytes) {
    if (!tp) return;
    r->comm_ms[ph] += (tp->comm_seconds - *sec) * 1e3;
    r->comm_bytes[ph] += tp->comm_bytes - *bytes;
    *sec = tp->comm_seconds;
    *bytes = tp->comm_bytes;
}

/* Rank 0's selection (count, then slots) to every rank. */
static ifk_status bcast_sel_(const ifk_tp *tp, int *n, int *sel) {
    if (!tp) return IFK_OK;
    IFK_CHECK(tp->bcast_ints(n, 1, tp->ctx));
    if (*n > 0) IFK_CHECK(tp->bcast_ints(sel, (size_t)*n, tp->ctx));
    return IFK_OK;
}

ifk_status ifk_query_run(const ifk_model *m, ifk_store *st, const ifk_query_docs *qd, const int *prompt, int P,
                         const ifk_query_opts *o, ifk_tp *tp, ifk_query_result *r) {
    const ifk_config *cfg = &m->cfg;
    const ifk_manifest *man = ifk_store_manifest(st);
    memset(r, 0, sizeof *r);
    IFK_CHECK_ARG(P > 0, "the prompt is empty");
    IFK_CHECK_ARG(o->budget >= 0.0 && o->budget <= 1.0, "--budget %g is outside [0, 1]", o->budget);
    int lo = o->score_lo, hi = o->score_hi;
    if (lo < 0) ifk_default_score_layers(cfg->n_layers, &lo, &hi);
    IFK_CHECK_ARG(lo >= 0 && hi >= lo && hi < cfg->n_layers, "--score-layers %d-%d outside the model's layers 0-%d",
                  lo, hi, cfg->n_layers - 1);
    plan_ p;
    ifk_status s_ = IFK_OK;
    ifk_kvcache c = {0};
    ifk_state s = {.tp = tp};
    double csec = tp ? tp->comm_seconds : 0, cbytes = tp ? tp->comm_bytes : 0;
    float *kbuf = NULL, *vbuf = NULL, *score = NULL, *psum = NULL;
    int *order = NULL, *sstart = NULL, *slen = NULL;
    IFK_CHECK_ARG(!o->reorder || o->method == IFK_METHOD_INFOFLOW, "--reorder goes with --method infoflow");
    IFK_CHECK_GOTO(s_, plan_make_(st, qd, &p), done);
    p.ids0[0] = cfg->bos_id;
    const int T = p.T, steps = o->steps > 0 ? o->steps : 1;
    if (T + P + steps > cfg->seq_len) {
        s_ = IFK_FAIL(IFK_ERR_ARG, "context of %d tokens + prompt of %d + %d answer tokens exceed the model's %d positions",
                      T, P, steps, cfg->seq_len);
        goto done;
    }
    {
        /* refuse up front what would not fit, with the estimate, rather than thrash */
        const double f = sizeof(float), L = cfg->n_layers, kvd = (double)cfg->n_kv_heads * cfg->head_dim,
                     qd = (double)cfg->n_heads * cfg->head_dim, D = cfg->dim, F = cfg->hidden_dim;
        const int dense = o->method == IFK_METHOD_FULL || o->method == IFK_METHOD_CACHEBLEND ||
                          o->method == IFK_METHOD_INFOFLOW_DEV; /* rows over the whole context */
        const double slots = T + P + steps, rows = dense
                                                        ? T + P : (ifk_budget(o->budget, T) > P ? ifk_budget(o->budget, T) : P);
        const double kv = 2 * L * kvd * slots * f * (o->compare_full ? 1 : 1);
        const double act = rows * (2 * D + 2 * qd + 2 * kvd + 2 * F) * f + 256.0 * slots * f + (double)P * (T + P) * f +
                           (dense && o->method != IFK_METHOD_FULL ? kvd * T * 2 * f : 0);
        const double avail = ifk_mem_available();
        if (avail > 0 && kv + act > 0.9 * avail) {
            char a[32], b[32], c2[32], d[32];
            s_ = IFK_FAIL(IFK_ERR_OOM, "this query needs about %s (KV cache %s for %d context tokens, activations %s) "
                          "but only %s are available: use fewer documents, a smaller budget, or more ranks",
                          fmt_bytes_(kv + act, a), fmt_bytes_(kv, b), T, fmt_bytes_(act, c2), fmt_bytes_(avail, d));
            goto done;
        }
    }
    r->n_chunks = p.n;
    r->vocab = cfg->vocab_size;
    r->T = T;
    r->n_prompt = P;
    const int V = cfg->vocab_size, maxn = man->p.chunk_tokens;
    const size_t nel = (size_t)cfg->n_layers * cfg->n_kv_heads * maxn * cfg->head_dim;
    kbuf = malloc(sizeof(float) * nel), vbuf = malloc(sizeof(float) * nel);
    score = malloc(sizeof(float) * (size_t)T), psum = malloc(sizeof(float) * (size_t)P * (T + P));
    order = malloc(sizeof(int) * p.n), sstart = malloc(sizeof(int) * p.n), slen = malloc(sizeof(int) * p.n);
    r->order = malloc(sizeof(int) * p.n), r->selected = malloc(sizeof(int) * (size_t)T);
    r->answer = malloc(sizeof(int) * (size_t)steps), r->first_logits = malloc(sizeof(float) * V);
    if (!kbuf || !vbuf || !score || !psum || !order || !sstart || !slen || !r->order || !r->selected || !r->answer ||
        !r->first_logits) {
        s_ = IFK_FAIL(IFK_ERR_OOM, "out of memory for a context of %d tokens", T);
        goto done;
    }
    IFK_CHECK_GOTO(s_, ifk_kvcache_init(&c, cfg, T + P + steps), done);
    for (int i = 0; i < p.n; i++) order[i] = i;
    const int n_budget = ifk_budget(o->budget, T);
    double t_start = ifk_now();
    (void)t_start;

    if (o->method == IFK_METHOD_FULL) {
        /* the store's KV is ignored: the whole context is prefilled from its token ids */
        double tf;
        IFK_CHECK_GOTO(s_, full_(m, &s, &c, p.ids0, T, prompt, P, steps, r->first_logits, r->answer, &r->n_answer, &tf),
                       done);
        comm_mark_(tp, r, IFK_PHASE_PROMPT, &csec, &cbytes);
        r->ttft = tf;
        r->t_prompt = tf;
        memcpy(r->order, order, sizeof(int) * p.n);
        goto compare;
    }

    if (o->reorder && p.n > 1) {
        /* score under each chunk's local positions, reorder by hit rate, then rebuild globally */
        IFK_CHECK_GOTO(s_, gather_(m, st, &s, &c, &p, order, 0, kbuf, vbuf, &r->t_load, &r->t_rotate), done);
        double t0 = ifk_now();
        IFK_CHECK_GOTO(s_, ifk_score_infoflow(m, &s, &c, T, prompt, P, lo, hi, psum, score), done);
        IFK_CHECK_GOTO(s_, ifk_select_top(score, T, 0, n_budget, r->selected), done);
        spans_(&p, order, sstart, slen);
        comm_mark_(tp, r, IFK_PHASE_SCORE, &csec, &cbytes);
        int *neworder = malloc(sizeof(int) * p.n);
        if (!neworder) { s_ = IFK_FAIL(IFK_ERR_OOM, "out of memory"); goto done; }
        ifk_reorder(p.n, sstart, slen, r->selected, n_budget < T ? n_budget : T, neworder);
        if (tp && (s_ = tp->bcast_ints(neworder, (size_t)p.n, tp->ctx)) != IFK_OK) { free(neworder); goto done; }
        comm_mark_(tp, r, IFK_PHASE_SCORE, &csec, &cbytes);
        memcpy(order, neworder, sizeof(int) * p.n);
        free(neworder);
        r->t_score += (ifk_now() - t0) * 1e3;
    }
    IFK_CHECK_GOTO(s_, gather_(m, st, &s, &c, &p, order, 1, kbuf, vbuf, &r->t_load, &r->t_rotate), done);
    comm_mark_(tp, r, IFK_PHASE_LOAD, &csec, &cbytes);
    memcpy(r->order, order, sizeof(int) * p.n);
    spans_(&p, order, sstart, slen);
    const int first_end = slen[0]; /* the first chunk's KV (with BOS) is already exact */
    double t0 = ifk_now();
    int n = 0;
    switch (o->method) {
    case IFK_METHOD_NONE: break;
    case IFK_METHOD_INFOFLOW:
        IFK_CHECK_GOTO(s_, ifk_score_infoflow(m, &s, &c, T, prompt, P, lo, hi, psum, score), done);
        /* the reorder pipeline re-scores with no first-chunk exclusion (§8); plain InfoFlow excludes it */
        n = n_budget < T - (o->reorder ? 0 : first_end) ? n_budget : T - (o->reorder ? 0 : first_end);
        IFK_CHECK_GOTO(s_, ifk_select_top(score, T, o->reorder ? 0 : first_end, n, r->selected), done);
        break;
    case IFK_METHOD_CACHEBLEND:
        IFK_CHECK_GOTO(s_, ifk_score_cacheblend(m, &s, &c, p.ids, T, score), done);
        n = n_budget < T ? n_budget : T;
        IFK_CHECK_GOTO(s_, ifk_select_top(score, T, 0, n, r->selected), done);
        break;
    case IFK_METHOD_INFOFLOW_DEV: { /* attention x deviation, no first-chunk exclusion (its deviation is 0) */
        ifk_dev_opts dv = o->dev;
        if (dv.layer == 0) ifk_dev_opts_default(&dv);
        IFK_CHECK_GOTO(s_, ifk_score_infoflow_dev(m, &s, &c, p.ids, T, prompt, P, lo, hi, &dv, p.n, sstart, slen, psum,
                                                  score), done);
        n = n_budget < T ? n_budget : T;
        IFK_CHECK_GOTO(s_, ifk_select_top(score, T, 0, n, r->selected), done);
        break;
    }
    case IFK_METHOD_EPIC: n = ifk_select_epic(p.n, sstart, slen, o->budget, r->selected); break;
    case IFK_METHOD_RANDOM:
        n = n_budget < T - first_end ? n_budget : T - first_end;
        ifk_select_random(T, first_end, n, o->seed, r->selected);
        break;
    default: break;
    }
    if (n < 0) n = 0;
    IFK_CHECK_GOTO(s_, bcast_sel_(tp, &n, r->selected), done); /* rank 0's selection is the one */
    r->n_selected = n;
    comm_mark_(tp, r, IFK_PHASE_SCORE, &csec, &cbytes);
    double t1 = ifk_now();
    r->t_score += (t1 - t0) * 1e3;
    IFK_CHECK_GOTO(s_, ifk_recompute(m, &s, &c, T, p.ids, r->selected, n), done);
    comm_mark_(tp, r, IFK_PHASE_RECOMPUTE, &csec, &cbytes);
    double t2 = ifk_now();
    r->t_recompute = (t2 - t1) * 1e3;
    c.len = T;
    IFK_CHECK_GOTO(s_, answer_(m, &s, &c, prompt, P, steps, r->first_logits, r->answer, &r->n_answer, &r->t_prompt,
                               &r->t_first, r, &csec, &cbytes), done);
    comm_mark_(tp, r, IFK_PHASE_DECODE, &csec, &cbytes);
    (void)t_start;
    /* ttft ends at the first token, not after the whole answer */
    r->ttft = r->t_load + r->t_rotate + r->t_score + r->t_recompute + r->t_prompt + r->t_first;

compare:
    if (o->compare_full) {
        float *fl = malloc(sizeof(float) * V);
        r->full_answer = malloc(sizeof(int) * (size_t)steps);
        if (!fl || !r->full_answer) {
            free(fl);
            s_ = IFK_FAIL(IFK_ERR_OOM, "out of memory");
            goto done;
        }
        /* the reference reads the context in its original order */
        s_ = full_(m, &s, &c, p.ids0, T, prompt, P, steps, fl, r->full_answer, &r->n_full_answer, &r->full_ttft);
        if (s_ == IFK_OK) {
            r->compared = 1;
            r->kl = ifk_kl_logits(fl, r->first_logits, V);
            r->top1_agree = ifk_argmax(fl, V) == ifk_argmax(r->first_logits, V);
            int k = 0;
            while (k < r->n_answer && k < r->n_full_answer && r->answer[k] == r->full_answer[k]) k++;
            r->leading_agree = k;
        }
        free(fl);
    }
done:
    plan_free_(&p);
    free(kbuf), free(vbuf), free(score), free(psum), free(order), free(sstart), free(slen);
    ifk_state_free(&s);
    ifk_kvcache_free(&c);
    if (s_ != IFK_OK) ifk_query_result_free(r);
    return s_;
}
