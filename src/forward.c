/* forward.c — the transformer forward pass over a position-addressed KV cache. */
#include "forward.h"

#include <stdlib.h>
#include <string.h>

/* ---- KV cache ------------------------------------------------------------------------------- */

ifk_status ifk_kvcache_init(ifk_kvcache *c, const ifk_config *cfg, int capacity) {
    memset(c, 0, sizeof *c);
    IFK_CHECK_ARG(capacity > 0, "KV cache capacity %d is not positive", capacity);
    c->n_layers = cfg->n_layers;
    c->n_kv_heads = cfg->n_kv_heads;
    c->head_dim = cfg->head_dim;
    c->capacity = capacity;
    size_t n = (size_t)cfg->n_layers * cfg->n_kv_heads * (size_t)capacity * cfg->head_dim;
    c->k = ifk_malloc(n * sizeof(float), "KV cache K");
    c->v = ifk_malloc(n * sizeof(float), "KV cache V");
    c->pos = ifk_calloc((size_t)capacity, sizeof(int), "KV cache positions");
    if (!c->k || !c->v || !c->pos) {
        ifk_kvcache_free(c);
        return IFK_ERR_OOM;
    }
    return IFK_OK;
}

void ifk_kvcache_free(ifk_kvcache *c) {
    free(c->k);
    free(c->v);
    free(c->pos);
    c->k = c->v = NULL;
    c->pos = NULL;
    c->len = c->capacity = 0;
}

void ifk_kvcache_rerotate(ifk_kvcache *c, const double *inv_freq, ifk_rope_style style, int s0, int n, int delta) {
    if (n <= 0 || delta == 0) return;
    const int half = c->head_dim / 2;
    float cs[2048], sn[2048]; /* Dh/2 <= 2048 by ifk_config_validate */
    ifk_rope_table(cs, sn, NULL, 1, delta, inv_freq, half);
    /* the n slots of one (layer, head) slab are contiguous rows of Dh: rotate them as the n
     * "heads" of a single row, all with the one table row for delta */
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_kv_heads; h++)
            ifk_rope_apply(ifk_kv_k(c, l, h) + (size_t)s0 * c->head_dim, 0, 1, n, c->head_dim, style, cs, sn);
    for (int i = 0; i < n; i++) c->pos[s0 + i] += delta;
}

/* ---- state ----------------------------------------------------------------------------------- */

static ifk_status grow_(float **p, size_t n, const char *what) {
    float *q = realloc(*p, n * sizeof(float));
    if (!q) return IFK_FAIL(IFK_ERR_OOM, "out of memory growing %s to %zu floats", what, n);
    *p = q;
    return IFK_OK;
}

ifk_status ifk_state_reserve(ifk_state *s, const ifk_config *cfg, int rows, int keys) {
    const int tasks = ifk_attention_tasks();
    if (rows <= s->cap_rows && keys <= s->cap_keys && tasks <= s->att_tasks) return IFK_OK;
    if (rows < s->cap_rows) rows = s->cap_rows;
    if (keys < s->cap_keys) keys = s->cap_keys;
    const size_t T = rows, D = cfg->dim, F = cfg->hidden_dim, q = (size_t)cfg->n_heads * cfg->head_dim,
                 kv = (size_t)cfg->n_kv_heads * cfg->head_dim, half = cfg->head_dim / 2;
    IFK_CHECK(grow_(&s->x, T * D, "residual stream"));
    IFK_CHECK(grow_(&s->xb, T * (D > q ? D : q), "layer buffer"));
    IFK_CHECK(grow_(&s->q, T * q, "queries"));
    IFK_CHECK(grow_(&s->kb, T * kv, "keys"));
    IFK_CHECK(grow_(&s->vb, T * kv, "values"));
    IFK_CHECK(grow_(&s->att, T * q, "attention output"));
    IFK_CHECK(grow_(&s->hb, T * F, "MLP gate"));
    IFK_CHECK(grow_(&s->hb2, T * F, "MLP up"));
    IFK_CHECK(grow_(&s->rcos, T * half, "RoPE cos"));
    IFK_CHECK(grow_(&s->rsin, T * half, "RoPE sin"));
    s->scratch_len = ifk_attention_scratch(rows, keys, cfg->n_heads, cfg->n_kv_heads, cfg->head_dim) * (size_t)tasks;
    IFK_CHECK(grow_(&s->scratch, s->scratch_len, "attention scratch"));
    s->cap_rows = rows;
    s->cap_keys = keys;
    s->att_tasks = tasks;
    return IFK_OK;
}

void ifk_state_free(ifk_state *s) {
    float **bufs[] = {&s->x, &s->xb, &s->q, &s->kb, &s->vb, &s->att, &s->hb, &s->hb2, &s->rcos, &s->rsin, &s->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    s->cap_rows = s->cap_keys = s->att_tasks = 0;
}

/* ---- forward ----------------------------------------------------------------------------------- */

ifk_status ifk_embed(const ifk_model *m, ifk_state *s, const int *ids, int T) {
    const int D = m->cfg.dim;
    for (int t = 0; t < T; t++) {
        IFK_CHECK_ARG(ids[t] >= 0 && ids[t] < m->cfg.vocab_size, "token id %d is outside the vocabulary (0..%d)",
                      ids[t], m->cfg.vocab_size - 1);
        ifk_weights_to_f32(s->x + (size_t)t * D, m->wdtype, ifk_wat(m->tok_emb, m->wdtype, (size_t)ids[t] * D), (size_t)D);
    }
    return IFK_OK;
}

void ifk_state_rope(const ifk_model *m, ifk_state *s, const int *pos, int T) {
    ifk_rope_table(s->rcos, s->rsin, pos, T, 0, m->inv_freq, m->cfg.head_dim / 2);
}

static void add_(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static void add_rows_(float *x, const float *b, int T, int n) {
    for (int t = 0; t < T; t++) add_(x + (size_t)t * n, b, (size_t)n);
}

/* ifk_layer_qkv's work, q optional: k and v are computed by the same calls either way, so a K/V-only
 * layer writes the bits a whole layer would */
static void qkv_(const ifk_model *m, ifk_state *s, int l, int T, int with_q) {
    const ifk_config *cfg = &m->cfg;
    const ifk_layer_weights *w = &m->layers[l];
    const int D = cfg->dim, H = cfg->n_heads, Hkv = cfg->n_kv_heads, Dh = cfg->head_dim;
    const int qd = H * Dh, kvd = Hkv * Dh;
    ifk_rmsnorm(s->xb, s->x, w->rms_att, T, D, cfg->norm_eps);
    if (with_q) ifk_matmul_w(s->q, s->xb, w->wq, m->wdtype, T, D, qd);
    ifk_matmul_w(s->kb, s->xb, w->wk, m->wdtype, T, D, kvd);
    ifk_matmul_w(s->vb, s->xb, w->wv, m->wdtype, T, D, kvd);
    if (w->bq) {
        if (with_q) add_rows_(s->q, w->bq, T, qd);
        add_rows_(s->kb, w->bk, T, kvd);
        add_rows_(s->vb, w->bv, T, kvd);
    }
    if (w->q_norm) { /* Qwen3: each head's q and k normalised before RoPE */
        if (with_q) ifk_rmsnorm(s->q, s->q, w->q_norm, T * H, Dh, cfg->norm_eps);
        ifk_rmsnorm(s->kb, s->kb, w->k_norm, T * Hkv, Dh, cfg->norm_eps);
    }
    if (with_q) ifk_rope_apply(s->q, qd, T, H, Dh, cfg->rope_style, s->rcos, s->rsin);
    ifk_rope_apply(s->kb, kvd, T, Hkv, Dh, cfg->rope_style, s->rcos, s->rsin);
}

void ifk_layer_qkv(const ifk_model *m, ifk_state *s, int l, int T) { qkv_(m, s, l, T, 1); }

/* s->kb/s->vb of the T rows into layer l's slots (slots NULL: c->len + t), with their positions */
static void write_kv_(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int l, int T, const int *pos,
                      const int *slots) {
    const int Hkv = m->cfg.n_kv_heads, Dh = m->cfg.head_dim, kvd = Hkv * Dh;
    for (int t = 0; t < T; t++) {
        const int slot = slots ? slots[t] : c->len + t;
        IFK_ASSERT(slot >= 0 && slot < c->capacity);
        for (int g = 0; g < Hkv; g++) {
            memcpy(ifk_kv_k(c, l, g) + (size_t)slot * Dh, s->kb + (size_t)t * kvd + (size_t)g * Dh, sizeof(float) * Dh);
            memcpy(ifk_kv_v(c, l, g) + (size_t)slot * Dh, s->vb + (size_t)t * kvd + (size_t)g * Dh, sizeof(float) * Dh);
        }
        c->pos[slot] = pos[t];
    }
}

ifk_status ifk_layer_kv(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int l, int T, const int *pos,
                        const int *slots) {
    IFK_ASSERT(T <= s->cap_rows);
    if (c->await_layer) IFK_CHECK(c->await_layer(c->await_ctx, l));
    qkv_(m, s, l, T, 0);
    write_kv_(m, s, c, l, T, pos, slots);
    return IFK_OK;
}

ifk_status ifk_layer_attend(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int l, int T, const int *pos,
                            const int *slots, int nk, float *psum, int ldp) {
    const ifk_config *cfg = &m->cfg;
    const int H = cfg->n_heads, Hkv = cfg->n_kv_heads, Dh = cfg->head_dim, qd = H * Dh;
    IFK_ASSERT(T <= s->cap_rows && nk <= s->cap_keys && nk <= c->capacity);
    if (c->await_layer) IFK_CHECK(c->await_layer(c->await_ctx, l));

    /* norm, projections, RoPE, cache write, attend */
    ifk_layer_qkv(m, s, l, T);
    write_kv_(m, s, c, l, T, pos, slots);
    /* slots whose position is their index need no per-key mask lookups */
    int identity = 1;
    for (int j = 0; j < nk && identity; j++) identity = c->pos[j] == j;
    ifk_attn_args a = {.out = s->att, .ldo = qd, .q = s->q, .ldq = qd, .qpos = pos, .n = T,
                       .k = ifk_kv_k(c, l, 0), .v = ifk_kv_v(c, l, 0), .kstride = (size_t)c->capacity,
                       .kpos = identity ? NULL : c->pos, .nk = nk, .H = H, .Hkv = Hkv, .Dh = Dh,
                       .window = ifk_layer_window(cfg, l), .psum = psum, .ldp = ldp, .tasks = s->att_tasks};
    ifk_attention(&a, s->scratch);
    return IFK_OK;
}

ifk_status ifk_layer_forward(const ifk_model *m, ifk_state *s, ifk_kvcache *c, int l, int T, const int *pos,
                             const int *slots, int nk, float *psum, int ldp) {
    const ifk_config *cfg = &m->cfg;
    const ifk_layer_weights *w = &m->layers[l];
    const int D = cfg->dim, F = cfg->hidden_dim, qd = cfg->n_heads * cfg->head_dim;
    IFK_CHECK(ifk_layer_attend(m, s, c, l, T, pos, slots, nk, psum, ldp));
    /* the attention's output projection and residual */
    ifk_matmul_w(s->xb, s->att, w->wo, m->wdtype, T, qd, D);
    if (s->tp) IFK_CHECK(s->tp->allreduce(s->xb, (size_t)T * D, s->tp->ctx));
    if (w->bo) add_rows_(s->xb, w->bo, T, D); /* after the sum: every rank holds the whole bias */
    add_(s->x, s->xb, (size_t)T * D);

    /* MLP: norm, SwiGLU, down projection, residual */
    ifk_rmsnorm(s->xb, s->x, w->rms_ffn, T, D, cfg->norm_eps);
    ifk_matmul_w(s->hb, s->xb, w->w1, m->wdtype, T, D, F);
    ifk_matmul_w(s->hb2, s->xb, w->w3, m->wdtype, T, D, F);
    if (w->b1) {
        add_rows_(s->hb, w->b1, T, F);
        add_rows_(s->hb2, w->b3, T, F);
    }
    ifk_swiglu(s->hb, s->hb2, (size_t)T * F);
    ifk_matmul_w(s->xb, s->hb, w->w2, m->wdtype, T, F, D);
    if (s->tp) IFK_CHECK(s->tp->allreduce(s->xb, (size_t)T * D, s->tp->ctx));
    if (w->b2) add_rows_(s->xb, w->b2, T, D);
    add_(s->x, s->xb, (size_t)T * D);
    return IFK_OK;
}

void ifk_logits(const ifk_model *m, ifk_state *s, int r0, int n, float *logits) {
    const int D = m->cfg.dim;
    ifk_rmsnorm(s->xb, s->x + (size_t)r0 * D, m->rms_final, n, D, m->cfg.norm_eps);
    ifk_matmul_w(logits, s->xb, m->wcls, m->wdtype, n, D, m->cfg.vocab_size);
}

ifk_status ifk_forward(const ifk_model *m, ifk_state *s, ifk_kvcache *c, const int *ids, const int *pos, int T,
                       float *logits, int all_logits) {
    IFK_CHECK_ARG(T > 0, "forward pass of %d tokens", T);
    IFK_CHECK_ARG(c->len + T <= c->capacity, "KV cache full: %d cached + %d new tokens exceed its %d slots", c->len,
                  T, c->capacity);
    IFK_CHECK(ifk_state_reserve(s, &m->cfg, T, c->len + T));
    IFK_CHECK(ifk_embed(m, s, ids, T));
    ifk_state_rope(m, s, pos, T);
    const int L = m->cfg.n_layers;
    for (int l = 0; l < L - 1; l++) IFK_CHECK(ifk_layer_forward(m, s, c, l, T, pos, NULL, c->len + T, NULL, 0));
    /* without logits nobody reads the last layer's output: its K/V are all that is kept */
    if (logits) IFK_CHECK(ifk_layer_forward(m, s, c, L - 1, T, pos, NULL, c->len + T, NULL, 0));
    else IFK_CHECK(ifk_layer_kv(m, s, c, L - 1, T, pos, NULL));
    c->len += T;
    if (logits) {
        if (all_logits) ifk_logits(m, s, 0, T, logits);
        else ifk_logits(m, s, T - 1, 1, logits);
    }
    return IFK_OK;
}
