/* query.c — one query in data-flow order (query.h): plan → gather (+ rotate, on the loader's
 * thread) → score → select → recompute → answer. Each step is a function of the query's state
 * (qrun_) run through step_, which records its wall time and communication (and hands the time it
 * waited for the loader to the load); ifk_query_run reads as the method does. */
#include "query.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "decode.h"
#include "sys.h"
#include "sampler.h"

/* ---- the query's state ------------------------------------------------------------------------- */

/* The chunks of a query's documents, in document order: store coordinates and context slots. */
typedef struct {
    int n;
    int *doc, *chunk; /* (n) manifest document index and chunk index */
    int *len;         /* (n) tokens; chunk 0 counts its BOS (len + 1) */
    int T;
    int *ids;         /* (T) token ids by slot in the current order */
    int *ids0;        /* (T) token ids in the original order: what a full prefill reads */
} plan_;

/* The loader: a thread that fills the cache from the store layer by layer (every chunk's K/V of
 * layer l, each K slab rotated to its global positions as it lands), while the compute runs
 * layer l-1: ifk_layer_forward awaits each layer through the cache's await_layer hook. */
typedef struct {
    int n;                /* chunks, in placement order */
    ifk_chunk_src *src;   /* (n) located by gather_ (every HDF5 call is on the calling thread) */
    int *slot;            /* (n) each chunk's first cache slot */
    float *cs, *sn;       /* (n, Dh/2) each chunk's rotation from local to global positions */
    int *rot;             /* (n) 1 when chunk i is rotated (not --reorder's local pass, not delta 0) */
    pthread_t th;
    int inited, running, stop; /* mu and cv made; the thread not yet joined; asked to stop */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;             /* layers complete */
    ifk_status st;        /* the loader's failure, its message in msg */
    char msg[1024];
    double fill_s, rot_s; /* the loader's own time: checksum and conversion (with any read-rate wait), rotation */
} loader_;

typedef struct {
    /* the call's arguments */
    const ifk_model *m;
    ifk_store *store;
    const ifk_query_docs *qd;
    const int *prompt;
    int P;
    const ifk_query_opts *o;
    ifk_tp *tp;
    ifk_query_result *r;
    /* derived by the plan */
    int lo, hi, steps, n_budget;
    plan_ p;
    ifk_state s;
    ifk_kvcache c;
    loader_ ld;
    double wait_ms;     /* the compute's time blocked on the loader */
    float *score;       /* (T) the selection score of every context slot */
    float *psum;        /* (P, T + P) scoring scratch */
    int *order;         /* (n) chunk order: original index of the chunk placed i-th */
    int *sstart, *slen; /* (n) slots each placed chunk spans (the first with BOS) */
    int local;          /* gather leaves chunks at their local positions (--reorder's first scoring) */
    int from;           /* the first slot the selection may take */
    int n_sel;
    double csec, cbytes; /* communication counters at the last step's end */
} qrun_;

typedef ifk_status (*step_fn_)(qrun_ *x);

/* Runs one step: adds its wall time to *ms and this rank's communication during it to phase. The
 * time it spent waiting for the loader is the load's: it goes to t_load instead. */
static ifk_status step_(qrun_ *x, step_fn_ fn, double *ms, int phase) {
    const double t0 = ifk_now(), w0 = x->wait_ms;
    ifk_status st = fn(x);
    const double waited = x->wait_ms - w0;
    *ms += (ifk_now() - t0) * 1e3 - waited;
    x->r->t_load += waited;
    x->r->t_wait += waited;
    if (x->tp) {
        x->r->comm_ms[phase] += (x->tp->comm_seconds - x->csec) * 1e3;
        x->r->comm_bytes[phase] += x->tp->comm_bytes - x->cbytes;
        x->csec = x->tp->comm_seconds;
        x->cbytes = x->tp->comm_bytes;
    }
    return st;
}
#define STEP(x, fn, field, phase) IFK_CHECK(step_((x), (fn), &(x)->r->field, (phase)))

static void plan_free_(plan_ *p) {
    free(p->doc), free(p->chunk), free(p->len), free(p->ids), free(p->ids0);
    memset(p, 0, sizeof *p);
}

static void loader_free_(qrun_ *x);

static void qrun_free_(qrun_ *x) {
    loader_free_(x);
    plan_free_(&x->p);
    free(x->score), free(x->psum), free(x->order), free(x->sstart), free(x->slen);
    ifk_state_free(&x->s);
    ifk_kvcache_free(&x->c);
}

void ifk_query_result_free(ifk_query_result *r) {
    free(r->order), free(r->selected), free(r->answer), free(r->first_logits), free(r->full_answer);
    memset(r, 0, sizeof *r);
}

static const char *fmt_bytes_(double b, char *buf) {
    if (b >= 1073741824.0) snprintf(buf, 32, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(buf, 32, "%.1f MiB", b / 1048576.0);
    else snprintf(buf, 32, "%.0f KiB", b / 1024.0);
    return buf;
}

/* ---- plan: the chunks, their tokens, what fits ------------------------------------------------- */

static ifk_status plan_chunks_(qrun_ *x) {
    plan_ *p = &x->p;
    for (int i = 0; i < x->qd->n_docs; i++) {
        const ifk_doc_rec *r = ifk_store_doc(x->store, x->qd->docs[i]); /* O(log N) each, kept by the store */
        if (!r) return IFK_ERR_ARG;
        if (r->n_chunks == 0) { /* a store written before the corpus reader refused empty documents */
            char q[96];
            ifk_quote(q, sizeof q, r->id);
            return IFK_FAIL(IFK_ERR_ARG, "%s: document %s holds no tokens", ifk_store_manifest(x->store)->dir, q);
        }
        p->n += r->n_chunks;
    }
    IFK_CHECK_ARG(p->n > 0, "no documents chosen");
    p->doc = malloc(sizeof(int) * p->n), p->chunk = malloc(sizeof(int) * p->n);
    p->len = malloc(sizeof(int) * p->n);
    if (!p->doc || !p->chunk || !p->len) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    int k = 0;
    for (int i = 0; i < x->qd->n_docs; i++) {
        const ifk_doc_rec *r = ifk_store_doc(x->store, x->qd->docs[i]);
        for (int c = 0; c < r->n_chunks; c++, k++) {
            p->doc[k] = x->qd->docs[i];
            p->chunk[k] = c;
            p->len[k] = r->chunk_len[c] + (k == 0);
            p->T += p->len[k];
        }
    }
    p->ids = malloc(sizeof(int) * (size_t)p->T);
    p->ids0 = malloc(sizeof(int) * (size_t)p->T);
    if (!p->ids || !p->ids0) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    p->ids0[0] = x->m->cfg.bos_id;
    for (int k = 0, slot = 1; k < p->n; k++) {
        IFK_CHECK(ifk_store_read_tokens(x->store, p->doc[k], p->chunk[k], p->ids0 + slot));
        slot += p->len[k] - (k == 0);
    }
    return IFK_OK;
}

/* Methods that run rows over the whole context (full prefill; the deviation's exact layer 0). */
static int dense_(ifk_method m) {
    return m == IFK_METHOD_FULL || m == IFK_METHOD_CACHEBLEND || m == IFK_METHOD_INFOFLOW_DEV;
}

/* Refuses up front, with the estimate, a query that would not fit in memory rather than thrash. */
static ifk_status plan_memory_(const qrun_ *x) {
    const ifk_config *cfg = &x->m->cfg;
    const ifk_query_opts *o = x->o;
    const int T = x->p.T, P = x->P;
    const double f = sizeof(float), L = cfg->n_layers, kvd = (double)cfg->n_kv_heads * cfg->head_dim,
                 qd = (double)cfg->n_heads * cfg->head_dim, D = cfg->dim, F = cfg->hidden_dim;
    const double slots = T + P + x->steps,
                 rows = dense_(o->method) ? T + P : (ifk_budget(o->budget, T) > P ? ifk_budget(o->budget, T) : P);
    const double kv = 2 * L * kvd * slots * f;
    /* the attention scratch: one slot per task the forward pass reserves (ifk_state_reserve) */
    const double scratch = (double)ifk_attention_scratch((int)rows, (int)slots, cfg->n_heads, cfg->n_kv_heads,
                                                         cfg->head_dim) * ifk_attention_tasks() * f;
    const double act = rows * (2 * D + 2 * qd + 2 * kvd + 2 * F) * f + scratch + (double)P * (T + P) * f +
                       (dense_(o->method) && o->method != IFK_METHOD_FULL ? kvd * T * 2 * f : 0);
    const double avail = ifk_mem_available();
    if (avail > 0 && kv + act > 0.9 * avail) {
        char a[32], b[32], c[32], d[32];
        return IFK_FAIL(IFK_ERR_OOM, "this query needs about %s (KV cache %s for %d context tokens, activations %s) "
                        "but only %s are available: use fewer documents, a smaller budget, or more ranks",
                        fmt_bytes_(kv + act, a), fmt_bytes_(kv, b), T, fmt_bytes_(act, c), fmt_bytes_(avail, d));
    }
    return IFK_OK;
}

static ifk_status plan_query_(qrun_ *x) {
    const ifk_config *cfg = &x->m->cfg;
    const ifk_query_opts *o = x->o;
    ifk_query_result *r = x->r;
    IFK_CHECK(plan_chunks_(x));
    const int T = x->p.T, P = x->P, steps = x->steps;
    IFK_CHECK_ARG(T + P + steps <= cfg->seq_len,
                  "context of %d tokens + prompt of %d + %d answer tokens exceed the model's %d positions", T, P, steps,
                  cfg->seq_len);
    IFK_CHECK(plan_memory_(x));
    const int n = x->p.n, V = cfg->vocab_size;
    r->n_chunks = n;
    r->vocab = V;
    r->T = T;
    r->n_prompt = P;
    x->score = malloc(sizeof(float) * (size_t)T), x->psum = malloc(sizeof(float) * (size_t)P * (T + P));
    x->order = malloc(sizeof(int) * n), x->sstart = malloc(sizeof(int) * n), x->slen = malloc(sizeof(int) * n);
    r->order = malloc(sizeof(int) * n), r->selected = malloc(sizeof(int) * (size_t)T);
    r->answer = malloc(sizeof(int) * (size_t)steps), r->first_logits = malloc(sizeof(float) * V);
    if (!x->score || !x->psum || !x->order || !x->sstart || !x->slen || !r->order ||
        !r->selected || !r->answer || !r->first_logits)
        return IFK_FAIL(IFK_ERR_OOM, "out of memory for a context of %d tokens", T);
    IFK_CHECK(ifk_kvcache_init(&x->c, cfg, T + P + steps));
    /* fault the cache's pages in now (a pool a server keeps), not one by one inside the load or the
     * prefill: a hint, ignored where the kernel lacks it (before 5.14) */
    const size_t kvb = (size_t)cfg->n_layers * cfg->n_kv_heads * (size_t)x->c.capacity * cfg->head_dim * sizeof(float);
    ifk_prefault(x->c.k, kvb);
    ifk_prefault(x->c.v, kvb);
    for (int i = 0; i < n; i++) x->order[i] = i;
    x->n_budget = ifk_budget(o->budget, T);
    return IFK_OK;
}

/* The slots each chunk spans in the current order (chunk 0 with BOS when it is first). */
static void spans_(qrun_ *x) {
    for (int i = 0, slot = 0; i < x->p.n; i++) {
        const int k = x->order[i], n = x->p.len[k] - (k == 0) + (i == 0);
        x->sstart[i] = slot;
        x->slen[i] = n;
        slot += n;
    }
}

/* ---- gather: the loader ---------------------------------------------------------------------- */

/* Fills layer l of the cache: every chunk's K and V slabs checked and converted straight into
 * their slots (ifk_store_load_slab), each K slab rotated while it is still in cache. */
static ifk_status fill_layer_(qrun_ *x, int l) {
    loader_ *ld = &x->ld;
    const ifk_kvcache *c = &x->c;
    const int Hkv = c->n_kv_heads, Dh = c->head_dim, half = Dh / 2;
    for (int i = 0; i < ld->n; i++)
        for (int h = 0; h < Hkv; h++) {
            const ifk_chunk_src *src = &ld->src[i];
            float *k = ifk_kv_k(c, l, h) + (size_t)ld->slot[i] * Dh, *v = ifk_kv_v(c, l, h) + (size_t)ld->slot[i] * Dh;
            const double t0 = ifk_now();
            IFK_CHECK(ifk_store_load_slab(src, 0, l, h, k));
            IFK_CHECK(ifk_store_load_slab(src, 1, l, h, v));
            const double t1 = ifk_now();
            /* as ifk_kvcache_rerotate: the n rows of the slab as the n "heads" of one row */
            if (ld->rot[i])
                ifk_rope_apply(k, 0, 1, src->n, Dh, x->m->cfg.rope_style, ld->cs + (size_t)i * half,
                               ld->sn + (size_t)i * half);
            ld->fill_s += t1 - t0;
            ld->rot_s += ifk_now() - t1;
        }
    return IFK_OK;
}

static void *loader_main_(void *arg) {
    qrun_ *x = arg;
    loader_ *ld = &x->ld;
    for (int l = 0; l < x->c.n_layers; l++) {
        pthread_mutex_lock(&ld->mu);
        const int stop = ld->stop;
        pthread_mutex_unlock(&ld->mu);
        if (stop) break;
        ifk_status st = fill_layer_(x, l);
        pthread_mutex_lock(&ld->mu);
        if (st != IFK_OK) {
            ld->st = st;
            snprintf(ld->msg, sizeof ld->msg, "%s", ifk_errmsg());
        } else {
            ld->done = l + 1;
        }
        pthread_cond_broadcast(&ld->cv);
        pthread_mutex_unlock(&ld->mu);
        if (st != IFK_OK) break;
    }
    return NULL;
}

/* The cache's await_layer hook: blocks until the loader has filled layer l (or failed). */
static ifk_status await_layer_(void *ctx, int l) {
    qrun_ *x = ctx;
    loader_ *ld = &x->ld;
    const double t0 = ifk_now();
    pthread_mutex_lock(&ld->mu);
    while (ld->done <= l && ld->st == IFK_OK) pthread_cond_wait(&ld->cv, &ld->mu);
    const ifk_status st = ld->done > l ? IFK_OK : ld->st;
    pthread_mutex_unlock(&ld->mu);
    x->wait_ms += (ifk_now() - t0) * 1e3;
    return st == IFK_OK ? IFK_OK : IFK_FAIL(st, "%s", ld->msg);
}

/* Waits for the whole load (its status), joins the loader and unhooks the cache. */
static ifk_status loader_finish_(qrun_ *x) {
    loader_ *ld = &x->ld;
    if (!ld->running) return IFK_OK;
    ifk_status st = await_layer_(x, x->c.n_layers - 1);
    pthread_join(ld->th, NULL);
    ld->running = 0;
    x->c.await_layer = NULL;
    x->c.await_ctx = NULL;
    x->r->t_fill += ld->fill_s * 1e3;
    x->r->t_rerotate += ld->rot_s * 1e3;
    return st;
}

static void loader_free_(qrun_ *x) {
    loader_ *ld = &x->ld;
    if (ld->running) { /* the query failed: stop at the next layer */
        pthread_mutex_lock(&ld->mu);
        ld->stop = 1;
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->th, NULL);
        ld->running = 0;
        x->c.await_layer = NULL;
    }
    if (ld->inited) {
        pthread_mutex_destroy(&ld->mu);
        pthread_cond_destroy(&ld->cv);
    }
    for (int i = 0; i < ld->n && ld->src; i++) ifk_chunk_src_free(&ld->src[i]);
    free(ld->src), free(ld->slot), free(ld->cs), free(ld->sn), free(ld->rot);
    memset(ld, 0, sizeof *ld);
}

/* Places the chunks in x->order: BOS at slot 0 (computed: at position 0 it sees only itself, so
 * every chunk's dropped prefix had exactly this K/V), then each chunk at the next slots, at its
 * global positions (slot + j; --reorder's first scoring: its local ones, prefix_len + j). The
 * HDF5 look-ups and token reads happen here; the K/V is the loader's, on its own thread while
 * the BOS forward and then the compute run (with opts.serial_load: before this step returns).
 * Under tensor parallelism this rank's KV heads, and only those, are read. */
static ifk_status gather_(qrun_ *x) {
    IFK_CHECK(loader_finish_(x)); /* --reorder's first pass */
    loader_free_(x);
    const ifk_config *cfg = &x->m->cfg;
    ifk_kvcache *c = &x->c;
    loader_ *ld = &x->ld;
    const int n = x->p.n, Hkv = cfg->n_kv_heads, half = cfg->head_dim / 2;
    const int pre = ifk_store_manifest(x->store)->p.prefix_len, h0 = x->tp ? x->tp->rank * Hkv : 0;
    const double t0 = ifk_now();
    ld->src = calloc((size_t)n, sizeof *ld->src), ld->slot = malloc(sizeof(int) * n), ld->rot = malloc(sizeof(int) * n);
    ld->cs = malloc(sizeof(float) * (size_t)n * half), ld->sn = malloc(sizeof(float) * (size_t)n * half);
    if (!ld->src || !ld->slot || !ld->rot || !ld->cs || !ld->sn) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    x->p.ids[0] = cfg->bos_id;
    int slot = 1;
    for (int i = 0; i < n; i++, ld->n++) {
        const int k = x->order[i], len = x->p.len[k] - (k == 0), delta = slot - pre;
        IFK_CHECK(ifk_store_locate(x->store, x->p.doc[k], x->p.chunk[k], h0, Hkv, &ld->src[i], x->p.ids + slot));
        ld->slot[i] = slot;
        ld->rot[i] = !x->local && delta != 0;
        if (ld->rot[i]) ifk_rope_table(ld->cs + (size_t)i * half, ld->sn + (size_t)i * half, NULL, 1, delta, x->m->inv_freq, half);
        for (int j = 0; j < len; j++) c->pos[slot + j] = pre + j + (x->local ? 0 : delta);
        slot += len;
    }
    const double t1 = ifk_now();
    x->r->t_locate += (t1 - t0) * 1e3;
    /* the loader writes slots 1.., the BOS forward slot 0: they run side by side */
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    ld->inited = 1;
    if (pthread_create(&ld->th, NULL, loader_main_, x) != 0)
        return IFK_FAIL(IFK_ERR_INTERNAL, "cannot start the KV loader thread");
    ld->running = 1;
    c->len = 0;
    int bos = cfg->bos_id, zero = 0;
    IFK_CHECK(ifk_forward(x->m, &x->s, c, &bos, &zero, 1, NULL, 0));
    x->r->t_bos += (ifk_now() - t1) * 1e3;
    c->len = slot;
    c->await_layer = await_layer_;
    c->await_ctx = x;
    spans_(x);
    return x->o->serial_load ? loader_finish_(x) : IFK_OK;
}

/* ---- score and select ------------------------------------------------------------------------- */

/* The method's score of every context slot (InfoFlow, CacheBlend, infoflow-dev; the others need none), and the
 * first slot it may select: plain InfoFlow and random skip the first chunk, whose KV (with BOS)
 * is already exact; the reorder pipeline re-scores with no first-chunk exclusion (§8). */
static ifk_status score_(qrun_ *x) {
    const int T = x->p.T;
    switch (x->o->method) {
    case IFK_METHOD_INFOFLOW:
        x->from = x->o->reorder ? 0 : x->slen[0];
        return ifk_score_infoflow(x->m, &x->s, &x->c, T, x->prompt, x->P, x->lo, x->hi, x->psum, x->score);
    case IFK_METHOD_CACHEBLEND: /* reads layer 1 of the cache directly */
        x->from = 0;
        IFK_CHECK(loader_finish_(x));
        return ifk_score_cacheblend(x->m, &x->s, &x->c, x->p.ids, T, x->score);
    case IFK_METHOD_INFOFLOW_DEV: { /* attention x deviation; no exclusion: the first chunk's deviation is 0 */
        ifk_dev_opts dv = x->o->dev;
        if (dv.layer == 0) ifk_dev_opts_default(&dv);
        x->from = 0;
        IFK_CHECK(loader_finish_(x)); /* the deviation reads its layer of the cache directly */
        return ifk_score_infoflow_dev(x->m, &x->s, &x->c, x->p.ids, T, x->prompt, x->P, x->lo, x->hi, &dv, x->p.n,
                                      x->sstart, x->slen, x->psum, x->score);
    }
    case IFK_METHOD_RANDOM: x->from = x->slen[0]; return IFK_OK;
    default: x->from = 0; return IFK_OK;
    }
}

/* The n_budget slots to recompute (at most those from x->from on), rank 0's choice broadcast. */
static ifk_status select_(qrun_ *x) {
    const int T = x->p.T, room = T - x->from, n = x->n_budget < room ? x->n_budget : room;
    int *sel = x->r->selected;
    x->n_sel = 0;
    switch (x->o->method) {
    case IFK_METHOD_INFOFLOW:
    case IFK_METHOD_CACHEBLEND:
    case IFK_METHOD_INFOFLOW_DEV:
        IFK_CHECK(ifk_select_top(x->score, T, x->from, n, sel));
        x->n_sel = n;
        break;
    case IFK_METHOD_EPIC: x->n_sel = ifk_select_epic(x->p.n, x->sstart, x->slen, x->o->budget, sel); break;
    case IFK_METHOD_RANDOM:
        ifk_select_random(T, x->from, n, x->o->seed, sel);
        x->n_sel = n;
        break;
    default: break;
    }
    if (x->n_sel < 0) x->n_sel = 0;
    if (x->tp) { /* rank 0's selection is the one */
        IFK_CHECK(x->tp->bcast_ints(&x->n_sel, 1, x->tp->ctx));
        if (x->n_sel > 0) IFK_CHECK(x->tp->bcast_ints(sel, (size_t)x->n_sel, x->tp->ctx));
    }
    x->r->n_selected = x->n_sel;
    return IFK_OK;
}

/* --reorder: chunks sorted by their share of the locally scored selection (ifk_reorder), rank 0's
 * order broadcast. */
static ifk_status reorder_(qrun_ *x) {
    const int T = x->p.T, n = x->p.n;
    IFK_CHECK(ifk_select_top(x->score, T, 0, x->n_budget < T ? x->n_budget : T, x->r->selected));
    int *neworder = malloc(sizeof(int) * n);
    if (!neworder) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    ifk_reorder(n, x->sstart, x->slen, x->r->selected, x->n_budget < T ? x->n_budget : T, neworder);
    ifk_status st = x->tp ? x->tp->bcast_ints(neworder, (size_t)n, x->tp->ctx) : IFK_OK;
    if (st == IFK_OK) memcpy(x->order, neworder, sizeof(int) * n);
    free(neworder);
    return st;
}

/* ---- recompute and answer ---------------------------------------------------------------------- */

static ifk_status recompute_(qrun_ *x) {
    IFK_CHECK(ifk_recompute(x->m, &x->s, &x->c, x->p.T, x->p.ids, x->r->selected, x->n_sel));
    x->c.len = x->p.T;
    return IFK_OK;
}

/* The whole context prefilled from its token ids in the original order (method full, and the
 * --compare-full reference): the store's KV is not read. */
static ifk_status prefill_context_(qrun_ *x) {
    const int T = x->p.T;
    int *pos = malloc(sizeof(int) * (size_t)T);
    if (!pos) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    for (int i = 0; i < T; i++) pos[i] = i;
    x->c.len = 0;
    ifk_status st = ifk_forward(x->m, &x->s, &x->c, x->p.ids0, pos, T, NULL, 0);
    free(pos);
    return st;
}

/* The prompt at slots and positions T..T+P-1; its last row's logits are the first answer's. */
static ifk_status prompt_(qrun_ *x) {
    IFK_CHECK(loader_finish_(x));
    int *pos = malloc(sizeof(int) * (size_t)x->P);
    if (!pos) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    for (int i = 0; i < x->P; i++) pos[i] = x->c.len + i;
    ifk_status st = ifk_forward(x->m, &x->s, &x->c, x->prompt, pos, x->P, x->r->first_logits, 0);
    free(pos);
    return st;
}

/* Greedy decoding of up to steps tokens (the shared loop, decode.h); t_first is its first token. */
static ifk_status decode_(qrun_ *x) {
    const int V = x->m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)V);
    if (!logits) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    memcpy(logits, x->r->first_logits, sizeof(float) * (size_t)V);
    ifk_decode_stats ds;
    ifk_status st = ifk_decode(x->m, &x->s, &x->c, logits, x->prompt[x->P - 1], x->steps, NULL, x->r->answer, NULL,
                               NULL, &ds);
    x->r->n_answer = ds.n;
    x->r->t_first = ds.first_s * 1e3;
    free(logits);
    return st;
}

/* ---- the pipeline ------------------------------------------------------------------------------ */

/* Full prefill of the context, prompt, answer: into r (its own timings and answer). */
static ifk_status run_full_(qrun_ *x) {
    STEP(x, prefill_context_, t_prompt, IFK_PHASE_PROMPT);
    STEP(x, prompt_, t_prompt, IFK_PHASE_PROMPT);
    STEP(x, decode_, t_decode, IFK_PHASE_DECODE);
    x->r->t_prompt += x->r->t_first;
    x->r->ttft = x->r->t_prompt; /* to the first token, not the whole answer */
    return IFK_OK;
}

/* The cached methods: gather (the loader rotates as it fills), score, select, recompute, answer. */
static ifk_status run_cached_(qrun_ *x) {
    ifk_query_result *r = x->r;
    if (x->o->reorder && x->p.n > 1) {
        /* score under each chunk's local positions, reorder by hit rate, then rebuild globally */
        x->local = 1;
        STEP(x, gather_, t_load, IFK_PHASE_LOAD);
        STEP(x, score_, t_score, IFK_PHASE_SCORE);
        STEP(x, reorder_, t_score, IFK_PHASE_SCORE);
        x->local = 0;
    }
    STEP(x, gather_, t_load, IFK_PHASE_LOAD);
    memcpy(r->order, x->order, sizeof(int) * x->p.n);
    STEP(x, score_, t_score, IFK_PHASE_SCORE);
    STEP(x, select_, t_score, IFK_PHASE_SCORE);
    STEP(x, recompute_, t_recompute, IFK_PHASE_RECOMPUTE);
    STEP(x, prompt_, t_prompt, IFK_PHASE_PROMPT);
    STEP(x, decode_, t_decode, IFK_PHASE_DECODE);
    /* ttft ends at the first token, not after the whole answer */
    r->ttft = r->t_load + r->t_rotate + r->t_score + r->t_recompute + r->t_prompt + r->t_first;
    return IFK_OK;
}

/* --compare-full: the full-prefill reference over the same context, compared at the first token
 * (KL, top-1) and over the answer (leading tokens in common). */
static ifk_status compare_(qrun_ *x) {
    ifk_query_result *r = x->r, ref = {0};
    const int V = x->m->cfg.vocab_size;
    ref.first_logits = malloc(sizeof(float) * V);
    ref.answer = malloc(sizeof(int) * (size_t)x->steps);
    if (!ref.first_logits || !ref.answer) {
        ifk_query_result_free(&ref);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    qrun_ y = *x; /* same plan and cache, its own result */
    y.r = &ref;
    y.tp = NULL; /* its communication is not counted as the method's (its forwards stay collective: y.s.tp) */
    ifk_status st = run_full_(&y);
    x->s = y.s;
    if (st == IFK_OK && (ifk_weights_nonfinite(ref.first_logits, IFK_W_F32, (size_t)V) < (size_t)V ||
                         ifk_weights_nonfinite(r->first_logits, IFK_W_F32, (size_t)V) < (size_t)V))
        st = IFK_FAIL(IFK_ERR_FORMAT, "--compare-full: the first-token logits (%s) hold NaN or infinity: no KL or "
                      "top-1 to compare", ifk_weights_nonfinite(ref.first_logits, IFK_W_F32, (size_t)V) < (size_t)V
                                          ? "of the full prefill" : "of the method");
    if (st == IFK_OK) {
        r->compared = 1;
        r->kl = ifk_kl_logits(ref.first_logits, r->first_logits, V);
        r->top1_agree = ifk_argmax(ref.first_logits, V) == ifk_argmax(r->first_logits, V);
        int k = 0;
        while (k < r->n_answer && k < ref.n_answer && r->answer[k] == ref.answer[k]) k++;
        r->leading_agree = k;
        r->full_answer = ref.answer, ref.answer = NULL;
        r->n_full_answer = ref.n_answer;
        r->full_ttft = ref.ttft;
    }
    ifk_query_result_free(&ref);
    return st;
}

ifk_status ifk_query_run(const ifk_model *m, ifk_store *store, const ifk_query_docs *qd, const int *prompt, int P,
                         const ifk_query_opts *o, ifk_tp *tp, ifk_query_result *r) {
    memset(r, 0, sizeof *r);
    IFK_CHECK_ARG(P > 0, "the prompt is empty");
    IFK_CHECK(ifk_model_check_prefix(m));
    IFK_CHECK_ARG(o->budget >= 0.0 && o->budget <= 1.0, "--budget %g is outside [0, 1]", o->budget);
    IFK_CHECK_ARG(!o->reorder || o->method == IFK_METHOD_INFOFLOW, "--reorder goes with --method infoflow");
    qrun_ x = {.m = m, .store = store, .qd = qd, .prompt = prompt, .P = P, .o = o, .tp = tp, .r = r,
               .lo = o->score_lo, .hi = o->score_hi, .steps = o->steps > 0 ? o->steps : 1, .s = {.tp = tp}};
    if (x.lo < 0) ifk_default_score_layers(m->cfg.n_layers, &x.lo, &x.hi);
    IFK_CHECK_ARG(x.lo >= 0 && x.hi >= x.lo && x.hi < m->cfg.n_layers,
                  "--score-layers %d-%d outside the model's layers 0-%d", x.lo, x.hi, m->cfg.n_layers - 1);
    if (tp) x.csec = tp->comm_seconds, x.cbytes = tp->comm_bytes;
    ifk_status st = step_(&x, plan_query_, &r->t_plan, IFK_PHASE_LOAD);
    if (st == IFK_OK && o->method == IFK_METHOD_FULL) {
        st = run_full_(&x);
        if (st == IFK_OK) memcpy(r->order, x.order, sizeof(int) * x.p.n);
    } else if (st == IFK_OK) {
        st = run_cached_(&x);
    }
    if (st == IFK_OK && o->compare_full) st = compare_(&x);
    qrun_free_(&x);
    if (st != IFK_OK) ifk_query_result_free(r);
    return st;
}
