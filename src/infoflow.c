/* infoflow.c — scoring, selection, recompute and reordering (infoflow.h). */
#include "infoflow.h"

#include "fault.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *names_[] = {"full", "none", "infoflow", "cacheblend", "epic", "random", "infoflow-dev"};
#define N_METHODS_ ((int)(sizeof names_ / sizeof names_[0]))

const char *ifk_method_name(ifk_method m) { return (unsigned)m < (unsigned)N_METHODS_ ? names_[m] : "?"; }

ifk_status ifk_method_parse(const char *s, ifk_method *m) {
    for (int i = 0; i < N_METHODS_; i++)
        if (!strcmp(s, names_[i])) {
            *m = (ifk_method)i;
            return IFK_OK;
        }
    return IFK_FAIL(IFK_ERR_ARG,
                    "--method '%s' is not one of infoflow, infoflow-dev, full, none, cacheblend, epic, random", s);
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
    return ifk_score_attention(m, s, c, T, prompt, P, lo, hi, 0, psum, score);
}

ifk_status ifk_score_attention(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int T, const int *prompt, int P,
                               int lo, int hi, int sum_rows, float *psum, float *score) {
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
        /* the last scored layer's output feeds nothing: its probabilities are all scoring reads */
        IFK_CHECK_GOTO(st, (l < hi ? ifk_layer_forward : ifk_layer_attend)(m, s, c, l, P, pos, NULL, nk,
                                                                            scored ? psum : NULL, nk), done);
        if (!scored) continue;
        if (s->tp) IFK_CHECK_GOTO(st, s->tp->reduce_root(psum, (size_t)P * nk, s->tp->ctx), done);
        for (int k = 0; k < T; k++) {
            double ss = 0.0;
            for (int q = 0; q < P; q++) {
                double a = psum[(size_t)q * nk + k] * inv_h;
                ss += sum_rows ? a : a * a;
            }
            score[k] += (float)((sum_rows ? ss : sqrt(ss)) * inv_layers);
        }
    }
done:
    c->len = saved;
    free(pos);
    return st;
}

ifk_status ifk_score_deviation(const ifk_model *m, ifk_state *s, const ifk_kvcache *c, const int *ids, int T,
                               int layer, ifk_dev_source source, float *dev2) {
    const ifk_config *cfg = &m->cfg;
    IFK_CHECK_ARG(layer >= 1 && layer < cfg->n_layers, "deviation layer %d outside 1-%d", layer, cfg->n_layers - 1);
    ifk_config below = *cfg;
    below.n_layers = layer; /* layers 0..layer-1 of every context token, into a cache of their own */
    ifk_kvcache tmp;
    IFK_CHECK(ifk_kvcache_init(&tmp, &below, T));
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
    for (int l = 0; l < layer; l++) IFK_CHECK_GOTO(st, ifk_layer_forward(m, s, &tmp, l, T, pos, NULL, T, NULL, 0), done);
    ifk_layer_qkv(m, s, layer, T); /* fresh K (after RoPE at the same positions) and V */
    const int Dh = cfg->head_dim, Hkv = cfg->n_kv_heads, kvd = Hkv * Dh;
    for (int t = 0; t < T; t++) {
        double d2 = 0.0;
        for (int g = 0; g < Hkv; g++)
            for (int which = 0; which < 2; which++) {
                if ((which == 0 && source == IFK_DEV_K) || (which == 1 && source == IFK_DEV_V)) continue;
                const float *cached = (which ? ifk_kv_k(c, layer, g) : ifk_kv_v(c, layer, g)) + (size_t)t * Dh;
                const float *fresh = (which ? s->kb : s->vb) + (size_t)t * kvd + (size_t)g * Dh;
                for (int d = 0; d < Dh; d++) {
                    double e = (double)fresh[d] - cached[d];
                    d2 += e * e;
                }
            }
        dev2[t] = (float)d2;
    }
    /* each rank summed its own KV heads: the total is rank 0's */
    if (s->tp) IFK_CHECK_GOTO(st, s->tp->reduce_root(dev2, (size_t)T, s->tp->ctx), done);
done:
    free(pos);
    ifk_kvcache_free(&tmp);
    return st;
}

ifk_status ifk_score_cacheblend(const ifk_model *m, ifk_state *s, const ifk_kvcache *c, const int *ids, int T,
                                float *score) {
    IFK_CHECK_ARG(m->cfg.n_layers >= 2, "cacheblend needs at least 2 layers");
    return ifk_score_deviation(m, s, c, ids, T, 1, IFK_DEV_V, score);
}

void ifk_dev_opts_default(ifk_dev_opts *o) {
    /* alpha 2: chosen on the demo set, not worse on the held-out set (docs/results.md); the oracle's is 1 */
    *o = (ifk_dev_opts){.source = IFK_DEV_V, .layer = 1, .combine = IFK_DEV_PRODUCT, .alpha = 2.0,
                        .attn = IFK_DEV_ATTN_NORM, .estimate = IFK_DEV_EXACT};
}

static const char *dev_source_[] = {"v", "k", "kv"}, *dev_combine_[] = {"product", "ranksum"},
                  *dev_attn_[] = {"norm", "sum"}, *dev_estimate_[] = {"exact", "position"};

static int pick_(const char *v, const char **names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return i;
    return -1;
}

ifk_status ifk_dev_opts_parse(const char *spec, int L, ifk_dev_opts *o) {
    ifk_dev_opts_default(o);
    char buf[512];
    IFK_CHECK_ARG(strlen(spec) < sizeof buf, "--dev: '%.40s...' is too long", spec);
    IFK_CHECK_ARG(!ifk_spec_dup_key(spec, buf, sizeof buf), "--dev: '%s' gives %s twice", spec, buf);
    strcpy(buf, spec);
    int alpha_given = 0;
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        IFK_CHECK_ARG(eq && eq[1], "--dev: '%s' is not key=value", kv);
        *eq = '\0';
        const char *k = kv, *v = eq + 1;
        int i = -1;
        char *end;
        if (!strcmp(k, "source")) {
            IFK_CHECK_ARG((i = pick_(v, dev_source_, 3)) >= 0, "--dev: source '%s' is not one of v, k, kv", v);
            o->source = (ifk_dev_source)i;
        } else if (!strcmp(k, "layer")) {
            long l = strtol(v, &end, 10);
            IFK_CHECK_ARG(!*end && l >= 1 && l < L, "--dev: layer '%s' is not an integer in 1-%d", v, L - 1);
            o->layer = (int)l;
        } else if (!strcmp(k, "combine")) {
            IFK_CHECK_ARG((i = pick_(v, dev_combine_, 2)) >= 0, "--dev: combine '%s' is not one of product, ranksum", v);
            o->combine = (ifk_dev_combine)i;
        } else if (!strcmp(k, "alpha")) {
            double a = strtod(v, &end);
            IFK_CHECK_ARG(!*end && a > 0 && a <= 8, "--dev: alpha '%s' is not a number in (0, 8]", v);
            o->alpha = a;
            alpha_given = 1;
        } else if (!strcmp(k, "attn")) {
            IFK_CHECK_ARG((i = pick_(v, dev_attn_, 2)) >= 0, "--dev: attn '%s' is not one of norm, sum", v);
            o->attn = (ifk_dev_attn)i;
        } else if (!strcmp(k, "estimate")) {
            IFK_CHECK_ARG((i = pick_(v, dev_estimate_, 2)) >= 0, "--dev: estimate '%s' is not one of exact, position", v);
            o->estimate = (ifk_dev_estimate)i;
        } else {
            return IFK_FAIL(IFK_ERR_ARG, "--dev: unknown key '%s' (source, layer, combine, alpha, attn, estimate)", k);
        }
    }
    IFK_CHECK_ARG(o->combine == IFK_DEV_PRODUCT || !alpha_given, "--dev: alpha applies to combine=product only");
    IFK_CHECK_ARG(o->estimate == IFK_DEV_EXACT || (o->source == IFK_DEV_V && o->layer == 1),
                  "--dev: estimate=position replaces the recomputed deviation: source and layer do not apply");
    return IFK_OK;
}

void ifk_dev_opts_format(const ifk_dev_opts *o, char *buf, size_t n) {
    snprintf(buf, n, "source=%s,layer=%d,combine=%s,alpha=%g,attn=%s,estimate=%s", dev_source_[o->source], o->layer,
             dev_combine_[o->combine], o->alpha, dev_attn_[o->attn], dev_estimate_[o->estimate]);
}

typedef struct {
    float s;
    int i;
} ranked_;

static int by_score_(const void *a, const void *b);

/* rank[i] of x[i] among x[0..T): 0 the largest, ties by lower index first. */
static ifk_status ranks_(const float *x, int T, float *rank) {
    ranked_ *r = malloc(sizeof *r * (size_t)(T > 0 ? T : 1));
    if (!r) return IFK_FAIL(IFK_ERR_OOM, "out of memory ranking %d tokens", T);
    for (int i = 0; i < T; i++) r[i].s = isnan(x[i]) ? -INFINITY : x[i], r[i].i = i;
    qsort(r, (size_t)T, sizeof *r, by_score_);
    for (int i = 0; i < T; i++) rank[r[i].i] = (float)i;
    free(r);
    return IFK_OK;
}

ifk_status ifk_dev_combine_scores(const float *att, const float *dev2, int T, const ifk_dev_opts *o, float *score) {
    if (o->combine == IFK_DEV_PRODUCT) {
        for (int t = 0; t < T; t++) {
            const double d = sqrt(dev2[t] > 0 ? (double)dev2[t] : 0.0);
            score[t] = (float)((double)att[t] * (o->alpha == 1.0 ? d : pow(d, o->alpha)));
        }
        return IFK_OK;
    }
    float *ra = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1)), *rd = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
    ifk_status st = ra && rd ? IFK_OK : IFK_FAIL(IFK_ERR_OOM, "out of memory ranking %d tokens", T);
    if (st == IFK_OK) st = ranks_(att, T, ra);
    if (st == IFK_OK) st = ranks_(dev2, T, rd);
    for (int t = 0; st == IFK_OK && t < T; t++) score[t] = -(ra[t] + rd[t]);
    free(ra), free(rd);
    return st;
}

void ifk_dev_position_prior(int n_chunks, const int *start, const int *len, int T, float *dev2) {
    for (int t = 0; t < T; t++) dev2[t] = 0.0f;
    for (int c = 1; c < n_chunks; c++)
        for (int j = 0; j < len[c] && start[c] + j < T; j++) dev2[start[c] + j] = 1.0f / (1.0f + (float)j);
}

ifk_status ifk_score_infoflow_dev(const ifk_model *m, ifk_state *s, ifk_kvcache *c, const int *ids, int T,
                                  const int *prompt, int P, int lo, int hi, const ifk_dev_opts *o, int n_chunks,
                                  const int *start, const int *len, float *psum, float *score) {
    IFK_CHECK_ARG(m->cfg.n_layers >= 2, "infoflow-dev needs at least 2 layers");
    float *dev2 = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
    if (!dev2) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    ifk_status st = ifk_score_attention(m, s, c, T, prompt, P, lo, hi, o->attn == IFK_DEV_ATTN_SUM, psum, score);
    if (st == IFK_OK) {
        if (o->estimate == IFK_DEV_POSITION) ifk_dev_position_prior(n_chunks, start, len, T, dev2);
        else st = ifk_score_deviation(m, s, c, ids, T, o->layer, o->source, dev2);
    }
    /* both signals are complete on rank 0 only; the others' product is never used */
    if (st == IFK_OK) st = ifk_dev_combine_scores(score, dev2, T, o, score);
    free(dev2);
    return st;
}


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
        /* the last layer's output is discarded (algorithm.md §6): only its K/V are kept */
        if (l < cfg->n_layers - 1) IFK_CHECK_GOTO(st, ifk_layer_forward(m, s, c, l, n, pos, sel, T, NULL, 0), done);
        else IFK_CHECK_GOTO(st, ifk_layer_kv(m, s, c, l, n, pos, sel), done);
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
