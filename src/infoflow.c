/* infoflow.c — scoring, selection, recompute and reordering (infoflow.h). */
#include "infoflow.h"

#include "fault.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *names_[] = {"full", "none", "infoflow", "cacheblend", "epic", "random"};

const char *ifk_method_name(ifk_method m) { return (unsigned)m < 6 ? names_[m] : "?"; }

ifk_status ifk_method_parse(const char *s, ifk_method *m) {
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names_[i])) {
            *m = (ifk_method)i;
            return IFK_OK;
        }
    return IFK_FAIL(IFK_ERR_ARG, "--method '%s' is not one of infoflow, full, none, cacheblend, epic, random", s);
}

void ifk_default_score_layers(int L, int *lo, int *hi) {
    *lo = (int)floor(0.55 * L);
    *hi = (int)ceil(0.8 * L) - 1;
    if (*lo > L - 1) *lo = L - 1;
    if (*hi < *lo) *hi = *lo;
    if (*hi > L - 1) *hi = L - 1;
}

int ifk_budget(double R, int T) { return (int)floor(R * T + 1e-9); }

ifk_status ifk_score_infoflow(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int T, const int *prompt, int P,
                              int lo, int hi, float *psum, float *score) {
    const ifk_config *cfg = &m->cfg;
    IFK_CHECK_ARG(P > 0, "scoring needs a prompt of at least one token");
    IFK_CHECK_ARG(lo >= 0 && hi >= lo && hi < cfg->n_layers, "score layers %d-%d outside 0-%d", lo, hi,
                  cfg->n_layers - 1);
    IFK_CHECK_ARG(T + P <= c->capacity, "cache of %d slots cannot hold %d context + %d prompt tokens", c->capacity,
                  T, P);
    const int nk = T + P;
    int *pos = malloc(sizeof(int) * (size_t)P);
    if (!pos) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    for (int i = 0; i < P; i++) pos[i] = T + i;
    ifk_status st = IFK_OK;
    const int saved = c->len;
    c->len = T; /* the prompt goes to scratch slots T.. */
    IFK_CHECK_GOTO(st, ifk_state_reserve(s, cfg, P, nk), done);
    IFK_CHECK_GOTO(st, ifk_embed(m, s, prompt, P), done);
    ifk_state_rope(m, s, pos, P);
    for (int k = 0; k < T; k++) score[k] = 0.0f;
    /* with tensor parallelism psum holds this rank's heads: summed into rank 0 per layer, so that
     * rank 0's score is exactly the one-rank score (the head mean over all H heads) */
    const double inv_h = 1.0 / (s->tp ? s->tp->n_heads_total : cfg->n_heads), inv_layers = 1.0 / (hi - lo + 1);
    for (int l = 0; l <= hi; l++) {
        const int scored = l >= lo;
        if (scored) memset(psum, 0, sizeof(float) * (size_t)P * nk);
        IFK_CHECK_GOTO(st, ifk_layer_forward(m, s, c, l, P, pos, NULL, nk, scored ? psum : NULL, nk), done);
        if (!scored) continue;
        if (s->tp) IFK_CHECK_GOTO(st, s->tp->reduce_root(psum, (size_t)P * nk, s->tp->ctx), done);
        for (int k = 0; k < T; k++) {
            double ss = 0.0;
            for (int q = 0; q < P; q++) {
                double a = psum[(size_t)q * nk + k] * inv_h;
                ss += a * a;
            }
            score[k] += (float)(sqrt(ss) * inv_layers);
        }
    }
done:
    c->len = saved;
    free(pos);
    return st;
}

ifk_status ifk_score_cacheblend(const ifk_model *m, ifk_state *s, const ifk_kvcache *c, const int *ids, int T,
                                float *score) {
    const ifk_config *cfg = &m->cfg;
    IFK_CHECK_ARG(cfg->n_layers >= 2, "cacheblend needs at least 2 layers");
    ifk_config one = *cfg;
    one.n_layers = 1; /* layer 0 of every context token, into a cache of its own */
    ifk_kvcache tmp;
    IFK_CHECK(ifk_kvcache_init(&tmp, &one, T));
    int *pos = malloc(sizeof(int) * (size_t)T);
    ifk_status st = IFK_OK;
    if (!pos) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto done;
    }
    for (int i = 0; i < T; i++) pos[i] = c->pos[i];
    IFK_CHECK_GOTO(st, ifk_state_reserve(s, cfg, T, T), done);
    IFK_CHECK_GOTO(st, ifk_embed(m, s, ids, T), done);
    ifk_state_rope(m, s, pos, T);
    IFK_CHECK_GOTO(st, ifk_layer_forward(m, s, &tmp, 0, T, pos, NULL, T, NULL, 0), done);
    const int D = cfg->dim, Dh = cfg->head_dim, Hkv = cfg->n_kv_heads, kvd = Hkv * Dh;
    ifk_rmsnorm(s->xb, s->x, m->layers[1].rms_att, T, D, cfg->norm_eps);
    ifk_matmul_w(s->vb, s->xb, m->layers[1].wv, m->wdtype, T, D, kvd);
    for (int t = 0; t < T; t++) {
        double d2 = 0.0;
        for (int g = 0; g < Hkv; g++) {
            const float *cached = ifk_kv_v(c, 1, g) + (size_t)t * Dh, *fresh = s->vb + (size_t)t * kvd + (size_t)g * Dh;
            for (int d = 0; d < Dh; d++) {
                double e = (double)fresh[d] - cached[d];
                d2 += e * e;
            }
        }
        score[t] = (float)d2;
    }
    /* each rank summed its own KV heads: the total is rank 0's */
    if (s->tp) IFK_CHECK_GOTO(st, s->tp->reduce_root(score, (size_t)T, s->tp->ctx), done);
done:
    free(pos);
    ifk_kvcache_free(&tmp);
    return st;
}

typedef struct {
    float s;
    int i;
} ranked_;

static int by_score_(const void *a, const void *b) {
    const ranked_ *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i - y->i;
}

static int ascending_(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

ifk_status ifk_select_top(const float *score, int T, int from, int n, int *sel) {
    int cand = T - from;
    if (n > cand) n = cand;
    if (n <= 0) return IFK_OK;
    ranked_ *r = malloc(sizeof *r * (size_t)cand);
    if (!r) return IFK_FAIL(IFK_ERR_OOM, "out of memory ranking %d tokens", cand);
    for (int i = 0; i < cand; i++) r[i].s = isnan(score[from + i]) ? -INFINITY : score[from + i], r[i].i = from + i;
    qsort(r, (size_t)cand, sizeof *r, by_score_);
    for (int i = 0; i < n; i++) sel[i] = r[i].i;
    qsort(sel, (size_t)n, sizeof(int), ascending_);
    free(r);
    return IFK_OK;
}

int ifk_select_epic(int n_chunks, const int *start, const int *len, double R, int *sel) {
    int n = 0;
    for (int c = 0; c < n_chunks; c++) {
        int k = ifk_budget(R, len[c]);
        for (int j = 0; j < k && j < len[c]; j++) sel[n++] = start[c] + j;
    }
    return n;
}

void ifk_select_random(int T, int from, int n, uint64_t seed, int *sel) {
    int cand = T - from;
    if (n > cand) n = cand;
    if (n <= 0) return;
    int *pool = malloc(sizeof(int) * (size_t)cand);
    IFK_ASSERT(pool);
    for (int i = 0; i < cand; i++) pool[i] = from + i;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull;
    for (int i = 0; i < n; i++) { /* partial Fisher-Yates */
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        int j = i + (int)(((s * 0x2545F4914F6CDD1Dull) >> 33) % (uint64_t)(cand - i));
        int t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
    memcpy(sel, pool, sizeof(int) * (size_t)n);
    qsort(sel, (size_t)n, sizeof(int), ascending_);
    free(pool);
}

ifk_status ifk_recompute(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int T, const int *ids, const int *sel,
                         int n) {
    if (n <= 0) return IFK_OK;
    const ifk_config *cfg = &m->cfg;
    int *tok = malloc(sizeof(int) * (size_t)n), *pos = malloc(sizeof(int) * (size_t)n);
    ifk_status st = IFK_OK;
    if (!tok || !pos) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        IFK_ASSERT(sel[i] >= 0 && sel[i] < T && (i == 0 || sel[i] > sel[i - 1]));
        tok[i] = ids[sel[i]];
        pos[i] = c->pos[sel[i]];
    }
    IFK_CHECK_GOTO(st, ifk_state_reserve(s, cfg, n, T), done);
    IFK_CHECK_GOTO(st, ifk_embed(m, s, tok, n), done);
    ifk_state_rope(m, s, pos, n);
    for (int l = 0; l < cfg->n_layers; l++) {
        if (ifk_fault("recompute.layer")) { /* a rank failing mid-recompute (tests) */
            st = IFK_FAIL(IFK_ERR_INTERNAL, "injected failure in recompute at layer %d", l);
            goto done;
        }
        IFK_CHECK_GOTO(st, ifk_layer_forward(m, s, c, l, n, pos, sel, T, NULL, 0), done);
    }
done:
    free(tok);
    free(pos);
    return st;
}

typedef struct {
    double rate;
    int idx;
} hit_;

static int by_rate_(const void *a, const void *b) {
    const hit_ *x = a, *y = b;
    if (x->rate != y->rate) return x->rate < y->rate ? -1 : 1;
    return x->idx - y->idx;
}

void ifk_reorder(int n_chunks, const int *start, const int *len, const int *sel, int n, int *order) {
    hit_ *h = malloc(sizeof *h * (size_t)(n_chunks > 0 ? n_chunks : 1));
    IFK_ASSERT(h);
    for (int c = 0; c < n_chunks; c++) {
        int hits = 0;
        for (int i = 0; i < n; i++) hits += sel[i] >= start[c] && sel[i] < start[c] + len[c];
        h[c].rate = len[c] > 0 ? (double)hits / len[c] : 0.0;
        h[c].idx = c;
    }
    qsort(h, (size_t)n_chunks, sizeof *h, by_rate_);
    for (int c = 0; c < n_chunks; c++) order[c] = h[c].idx;
    free(h);
}

double ifk_kl_logits(const float *p, const float *q, int V) {
    double mp = -INFINITY, mq = -INFINITY, zp = 0, zq = 0, kl = 0;
    for (int i = 0; i < V; i++) mp = p[i] > mp ? p[i] : mp, mq = q[i] > mq ? q[i] : mq;
    for (int i = 0; i < V; i++) zp += exp(p[i] - mp), zq += exp(q[i] - mq);
    const double lzp = log(zp) + mp, lzq = log(zq) + mq;
    for (int i = 0; i < V; i++) {
        double lp = p[i] - lzp, lq = q[i] - lzq;
        kl += exp(lp) * (lp - lq);
    }
    return kl < 0 ? 0.0 : kl; /* rounding can leave -1e-17 for identical inputs */
}
