/* model.c — loading llama2.c checkpoints and building random-weight models of a given shape. */
#include "model.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- config ----------------------------------------------------------------------------------- */

#define IFK_MAX_DIM (1 << 17)
#define IFK_MAX_VOCAB (1 << 22)

ifk_status ifk_config_validate(const ifk_config *c, const char *what) {
#define POS_(f, lim)                                                                                       \
    if (c->f <= 0 || c->f > (lim))                                                                         \
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: %s = %d is out of range (1..%d)", what, #f, c->f, (int)(lim));
    POS_(dim, IFK_MAX_DIM)
    POS_(hidden_dim, 4 * IFK_MAX_DIM)
    POS_(n_layers, IFK_MAX_LAYERS)
    POS_(n_heads, 4096)
    POS_(n_kv_heads, 4096)
    POS_(head_dim, 4096)
    POS_(vocab_size, IFK_MAX_VOCAB)
    POS_(seq_len, IFK_MAX_SEQ)
#undef POS_
    if (c->n_heads % c->n_kv_heads)
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: n_heads %d is not a multiple of n_kv_heads %d", what, c->n_heads,
                        c->n_kv_heads);
    if (c->head_dim % 2) return IFK_FAIL(IFK_ERR_FORMAT, "%s: head dim %d is odd; RoPE needs pairs", what, c->head_dim);
    if (!(c->rope_theta > 0)) return IFK_FAIL(IFK_ERR_FORMAT, "%s: RoPE theta %g is not positive", what, c->rope_theta);
    return IFK_OK;
}

void ifk_rope_inv_freq(const ifk_config *c, double *inv_freq) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) inv_freq[i] = 1.0 / pow(c->rope_theta, (2.0 * i) / c->head_dim);
    if (c->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3) {
        /* Llama 3.1: long wavelengths are divided by factor, short ones kept, the band between smoothed */
        const ifk_rope_scaling *s = &c->rope_scaling;
        double old = s->original_max_positions, lo_wl = old / s->low_freq_factor, hi_wl = old / s->high_freq_factor;
        for (int i = 0; i < half; i++) {
            double f = inv_freq[i], wl = 2.0 * M_PI / f;
            if (wl < hi_wl) continue;
            if (wl > lo_wl) {
                inv_freq[i] = f / s->factor;
            } else {
                double sm = (old / wl - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
                inv_freq[i] = (1.0 - sm) * f / s->factor + sm * f;
            }
        }
    }
}

static size_t layer_params_(const ifk_config *c) {
    size_t D = c->dim, F = c->hidden_dim, q = (size_t)c->n_heads * c->head_dim, kv = (size_t)c->n_kv_heads * c->head_dim;
    return D + q * D + 2 * kv * D + D * q + D + 3 * F * D;
}

size_t ifk_model_params(const ifk_config *c) {
    size_t VD = (size_t)c->vocab_size * c->dim;
    return VD + (size_t)c->n_layers * layer_params_(c) + c->dim + (c->shared_classifier ? 0 : VD);
}

static void config_defaults_(ifk_config *c) {
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0;
    c->rope_style = IFK_ROPE_INTERLEAVED;
    c->rope_scaling.type = IFK_ROPE_SCALING_NONE;
    c->shared_classifier = 1;
    c->bos_id = 1;
    c->eos_id = 2;
    c->eos_ids[0] = 2;
    c->n_eos = 1;
}

ifk_status ifk_model_check_prefix(const ifk_model *m) {
    if (m->cfg.bos_id >= 0) return IFK_OK;
    return IFK_FAIL(IFK_ERR_ARG, "%s: config.json bos_token_id is null or absent: cache and query prefill every "
                    "chunk behind it (the prefix token); give it in config.json", m->source);
}

int ifk_config_is_stop(const ifk_config *c, int id) {
    if (id == c->bos_id || id == c->eos_id) return 1;
    for (int i = 0; i < c->n_eos; i++)
        if (id == c->eos_ids[i]) return 1;
    return 0;
}

/* Points the weight views of m at consecutive tensors from p, in llama2.c's order, which
 * groups each kind of tensor across layers. Returns the cursor after rms_final. */
static float *carve_(ifk_model *m, float *p) {
    const ifk_config *c = &m->cfg;
    const size_t D = c->dim, F = c->hidden_dim, L = c->n_layers, q = (size_t)c->n_heads * c->head_dim,
                 kv = (size_t)c->n_kv_heads * c->head_dim;
    m->tok_emb = (const ifk_wbuf *)p;
    p += (size_t)c->vocab_size * D;
    for (size_t l = 0; l < L; l++) m->layers[l].rms_att = p + l * D;
    p += L * D;
    for (size_t l = 0; l < L; l++) m->layers[l].wq = (const ifk_wbuf *)(p + l * q * D);
    p += L * q * D;
    for (size_t l = 0; l < L; l++) m->layers[l].wk = (const ifk_wbuf *)(p + l * kv * D);
    p += L * kv * D;
    for (size_t l = 0; l < L; l++) m->layers[l].wv = (const ifk_wbuf *)(p + l * kv * D);
    p += L * kv * D;
    for (size_t l = 0; l < L; l++) m->layers[l].wo = (const ifk_wbuf *)(p + l * D * q);
    p += L * D * q;
    for (size_t l = 0; l < L; l++) m->layers[l].rms_ffn = p + l * D;
    p += L * D;
    for (size_t l = 0; l < L; l++) m->layers[l].w1 = (const ifk_wbuf *)(p + l * F * D);
    p += L * F * D;
    for (size_t l = 0; l < L; l++) m->layers[l].w2 = (const ifk_wbuf *)(p + l * D * F);
    p += L * D * F;
    for (size_t l = 0; l < L; l++) m->layers[l].w3 = (const ifk_wbuf *)(p + l * F * D);
    p += L * F * D;
    m->rms_final = p;
    p += D;
    return p;
}

/* export.py --version 1's order: the norms first (attention L, MLP L, final), then the embedding,
 * wq, wk, wv, wo, w1, w2, w3 (each over all layers), then the classifier unless shared. */
static void carve_v1_(ifk_model *m, float *p) {
    const ifk_config *c = &m->cfg;
    const size_t D = c->dim, F = c->hidden_dim, L = c->n_layers, q = (size_t)c->n_heads * c->head_dim,
                 kv = (size_t)c->n_kv_heads * c->head_dim;
#define OFF_(f) offsetof(ifk_layer_weights, f)
    const struct { size_t off; size_t n; } order[] = {
        {OFF_(rms_att), D}, {OFF_(rms_ffn), D}, {0, D}, {0, 0},
        {OFF_(wq), q * D}, {OFF_(wk), kv * D}, {OFF_(wv), kv * D}, {OFF_(wo), D * q},
        {OFF_(w1), F * D}, {OFF_(w2), D * F}, {OFF_(w3), F * D}};
#undef OFF_
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        if (k == 2) { m->rms_final = p; p += D; continue; }
        if (k == 3) { m->tok_emb = (const ifk_wbuf *)p; p += (size_t)c->vocab_size * D; continue; }
        for (size_t l = 0; l < L; l++) { /* a norm (float) or a matrix (ifk_wbuf) slot: same pointer bits */
            const void *v = p + l * order[k].n;
            memcpy((char *)&m->layers[l] + order[k].off, &v, sizeof v);
        }
        p += L * order[k].n;
    }
    m->wcls = c->shared_classifier ? m->tok_emb : (const ifk_wbuf *)p;
}

static ifk_status alloc_tables_(ifk_model *m) {
    m->layers = ifk_calloc((size_t)m->cfg.n_layers, sizeof *m->layers, "layer table");
    m->inv_freq = ifk_malloc(sizeof(double) * (size_t)(m->cfg.head_dim / 2), "RoPE frequencies");
    if (!m->layers || !m->inv_freq) return IFK_ERR_OOM;
    ifk_rope_inv_freq(&m->cfg, m->inv_freq);
    return IFK_OK;
}

/* ---- reading weights without touching the mapping ------------------------------------------------ */

/* Copies n bytes of weights at src (inside m's storage) into dst. Inside a mapped checkpoint they are
 * read from the file (pread: the page cache is not this process's resident memory, a touched page of
 * the mapping is); elsewhere, or if the read fails, copied from memory. */
static void wread_(const ifk_model *m, void *dst, const void *src, size_t n) {
    const char *s = src, *b = m->map;
    if (b && s >= b && s + n <= b + m->map_len) {
        size_t got = 0;
        while (got < n) {
            ssize_t k = pread(m->map_fd, (char *)dst + got, n - got, (off_t)(s - b + (ptrdiff_t)got));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;
            got += (size_t)k;
        }
        if (got == n) return;
    }
    memcpy(dst, src, n);
}

/* 1 when p lies in a mapped checkpoint (then it is f32: a converted model owns its block) */
static int mapped_(const ifk_model *m, const void *p) {
    const char *b = m->map;
    return b && (const char *)p >= b && (const char *)p < b + m->map_len;
}

/* Copies rows [r0, r0 + nr) x columns [c0, c0 + nc) of the (rows x stride) matrix at src (es bytes an
 * element) into dst, densely: one read when whole rows are wanted, else one per row. */
static void wread_block_(const ifk_model *m, void *dst, const ifk_wbuf *src, size_t es, size_t stride, size_t r0,
                         size_t nr, size_t c0, size_t nc) {
    const char *s = (const char *)src;
    if (nc == stride) {
        wread_(m, dst, s + es * r0 * stride, es * nr * stride);
        return;
    }
    for (size_t r = 0; r < nr; r++) wread_(m, (char *)dst + es * r * nc, s + es * ((r0 + r) * stride + c0), es * nc);
}

#define WCHUNK_ 8192 /* floats streamed at a time (a multiple of 8: the hash's lanes take 4 pairs) */

/* ---- llama2.c checkpoints -------------------------------------------------------------------- */

static int weights_request_ = -1; /* --weights: -1 as stored, else an ifk_wdtype */

ifk_status ifk_model_load_llama2c(ifk_model *m, const char *path) {
    memset(m, 0, sizeof *m);
    snprintf(m->source, sizeof m->source, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open checkpoint: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 7 * sizeof(int32_t)) {
        close(fd);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 28-byte llama2.c header", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    m->map = map;
    m->map_len = size;
    m->map_fd = fd; /* the weights are read through it (wread_), so that only what is used becomes resident */

    /* export.py --version 1/2 files start with the magic "ak42" and a version, in a 256-byte header */
    uint32_t magic;
    int32_t version = 0, h[7];
    memcpy(&magic, map, 4);
    if (magic == 0x616b3432u) {
        memcpy(&version, (char *)map + 4, 4);
        if (version != 1 || size < 256) {
            ifk_model_free(m);
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: llama2.c checkpoint version %d%s is not supported (legacy version 0 "
                            "and version 1, float32, are)", path, version,
                            version == 2 ? " (export.py --version 2: int8 weights in groups)" : "");
        }
        memcpy(h, (char *)map + 8, sizeof h);
    } else {
        memcpy(h, map, sizeof h);
    }
    ifk_config *c = &m->cfg;
    config_defaults_(c);
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->shared_classifier = version ? ((const unsigned char *)map)[36] != 0 : h[5] > 0;
    c->vocab_size = h[5] == INT32_MIN ? 0 : version ? h[5] : abs(h[5]);
    c->seq_len = h[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    ifk_status st_;
    char what[600];
    snprintf(what, sizeof what, "%s: header", path);
    if ((st_ = ifk_config_validate(c, what)) != IFK_OK) goto fail;
    if (c->dim % c->n_heads) {
        st_ = IFK_FAIL(IFK_ERR_FORMAT, "%s: dim %d is not a multiple of n_heads %d", what, c->dim, c->n_heads);
        goto fail;
    }
    /* legacy version 0 carries two unused RoPE tables (seq_len, Dh/2) after rms_final; version 1 none */
    size_t want = version ? 256 + sizeof(float) * ifk_model_params(c)
                          : 28 + sizeof(float) * (ifk_model_params(c) + (size_t)c->seq_len * c->head_dim);
    if (want != size) {
        st_ = IFK_FAIL(IFK_ERR_FORMAT,
                       "%s: header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq_len %d) implies %zu bytes "
                       "but the file has %zu (truncated or not a llama2.c v%d checkpoint)",
                       path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, h[5], c->seq_len, want,
                       size, version);
        goto fail;
    }
    if ((st_ = alloc_tables_(m)) != IFK_OK) goto fail;
    if (version == 1) {
        carve_v1_(m, (float *)((char *)map + 256));
    } else {
        float *p = carve_(m, (float *)((char *)map + 28));
        p += (size_t)c->seq_len * c->head_dim; /* skip freq_cis_real, freq_cis_imag */
        m->wcls = c->shared_classifier ? m->tok_emb : (const ifk_wbuf *)p;
    }
    if ((st_ = ifk_model_check_finite(m, path)) != IFK_OK) goto fail;
    if (weights_request_ > 0 && (st_ = ifk_model_convert(m, (ifk_wdtype)weights_request_)) != IFK_OK) goto fail;
    return IFK_OK;
fail:
    ifk_model_free(m);
    return st_;
}

/* ---- random models ----------------------------------------------------------------------------- */

static const struct {
    const char *name, *shape;
} named_shapes_[] = {
    {"bench100m", "dim=1024,layers=8,heads=16,kv_heads=4,hidden=2816,vocab=32000,seq=8192"},
    {"bench1b", "dim=2048,layers=16,heads=32,kv_heads=8,hidden=5632,vocab=32000,seq=8192"},
    {"stories260K", "dim=64,layers=5,heads=8,kv_heads=4,hidden=172,vocab=512,seq=512"},
    {"tiny", "dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=300,seq=256"},
};

ifk_status ifk_config_parse_shape(ifk_config *c, const char *shape) {
    memset(c, 0, sizeof *c);
    config_defaults_(c);
    for (size_t i = 0; i < sizeof named_shapes_ / sizeof *named_shapes_; i++)
        if (!strcmp(shape, named_shapes_[i].name)) return ifk_config_parse_shape(c, named_shapes_[i].shape);
    c->seq_len = 2048;
    char buf[512];
    if (strlen(shape) >= sizeof buf) return IFK_FAIL(IFK_ERR_ARG, "model shape '%.40s...' is too long", shape);
    if (ifk_spec_dup_key(shape, buf, sizeof buf))
        return IFK_FAIL(IFK_ERR_ARG, "model shape '%s': %s given twice", shape, buf);
    strcpy(buf, shape);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return IFK_FAIL(IFK_ERR_ARG,
                            "model shape '%s': '%s' is not key=value (named shapes: bench100m, bench1b, stories260K, "
                            "tiny)", shape, kv);
        *eq = '\0';
        char *end;
        errno = 0;
        long v = strtol(eq + 1, &end, 10);
        if (errno || *end || end == eq + 1 || v <= 0 || v > (1L << 30))
            return IFK_FAIL(IFK_ERR_ARG, "model shape '%s': bad value '%s' for %s", shape, eq + 1, kv);
        if (!strcmp(kv, "dim")) c->dim = (int)v;
        else if (!strcmp(kv, "layers")) c->n_layers = (int)v;
        else if (!strcmp(kv, "heads")) c->n_heads = (int)v;
        else if (!strcmp(kv, "kv_heads")) c->n_kv_heads = (int)v;
        else if (!strcmp(kv, "hidden")) c->hidden_dim = (int)v;
        else if (!strcmp(kv, "vocab")) c->vocab_size = (int)v;
        else if (!strcmp(kv, "seq")) c->seq_len = (int)v;
        else if (!strcmp(kv, "head_dim")) c->head_dim = (int)v;
        else
            return IFK_FAIL(IFK_ERR_ARG,
                            "model shape '%s': unknown key '%s' (dim, layers, heads, kv_heads, hidden, vocab, seq, "
                            "head_dim)", shape, kv);
    }
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (!c->head_dim && c->n_heads) c->head_dim = c->dim / c->n_heads;
    char what[600];
    snprintf(what, sizeof what, "model shape '%s'", shape);
    return ifk_config_validate(c, what);
}

int ifk_spec_dup_key(const char *spec, char *dup, size_t n) {
    for (const char *a = spec; *a; a += strcspn(a, ",") + (a[strcspn(a, ",")] == ',')) {
        const size_t ka = strcspn(a, "=,");
        for (const char *b = a + strcspn(a, ",") + (a[strcspn(a, ",")] == ','); *b;
             b += strcspn(b, ",") + (b[strcspn(b, ",")] == ','))
            if (strcspn(b, "=,") == ka && !strncmp(a, b, ka)) {
                snprintf(dup, n, "%.*s", (int)ka, a);
                return 1;
            }
    }
    return 0;
}

ifk_status ifk_model_random(ifk_model *m, const char *shape, uint64_t seed) {
    memset(m, 0, sizeof *m);
    snprintf(m->source, sizeof m->source, "random:%s", shape);
    IFK_CHECK(ifk_config_parse_shape(&m->cfg, shape));
    const ifk_config *c = &m->cfg;
    size_t n = ifk_model_params(c);
    m->owned = ifk_malloc(sizeof(float) * n, "random model weights");
    if (!m->owned) return IFK_ERR_OOM;
    ifk_status st = alloc_tables_(m);
    if (st != IFK_OK) {
        ifk_model_free(m);
        return st;
    }
    float *end = carve_(m, m->owned);
    m->wcls = m->tok_emb;
    /* uniform on [-a, a] with a = 0.02 sqrt(3): std 0.02, as the usual initialisation */
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    const float a = 0.02f * 1.7320508f;
    for (float *p = m->owned; p < end; p++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        uint32_t r = (uint32_t)((s * 0x2545F4914F6CDD1Dull) >> 40);
        *p = a * ((float)r * (2.0f / 16777216.0f) - 1.0f);
    }
    const size_t D = c->dim;
    for (int l = 0; l < c->n_layers; l++)
        for (size_t i = 0; i < D; i++) {
            ((float *)m->layers[l].rms_att)[i] = 1.0f;
            ((float *)m->layers[l].rms_ffn)[i] = 1.0f;
        }
    for (size_t i = 0; i < D; i++) ((float *)m->rms_final)[i] = 1.0f;
    if (weights_request_ > 0 && (st = ifk_model_convert(m, (ifk_wdtype)weights_request_)) != IFK_OK) ifk_model_free(m);
    return st;
}

/* ---- tensor-parallel slices -------------------------------------------------------------------- */

ifk_status ifk_check_ranks(int n_kv_heads, int P) {
    if (P >= 1 && n_kv_heads % P == 0) return IFK_OK;
    char valid[256] = "";
    size_t n = 0;
    for (int d = 1; d <= n_kv_heads && n < sizeof valid - 16; d++)
        if (n_kv_heads % d == 0) n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%d", n ? ", " : "", d);
    return IFK_FAIL(IFK_ERR_ARG, "%d ranks do not divide the model's %d KV heads; valid rank counts: %s", P, n_kv_heads,
                    valid);
}

ifk_status ifk_model_slice(const ifk_model *full, int rank, int P, ifk_model *out) {
    memset(out, 0, sizeof *out);
    const ifk_config *c = &full->cfg;
    IFK_CHECK(ifk_check_ranks(c->n_kv_heads, P));
    IFK_CHECK_ARG(rank >= 0 && rank < P, "rank %d of %d", rank, P);
    const int G = c->n_heads / c->n_kv_heads, kvl = c->n_kv_heads / P, hl = kvl * G, Dh = c->head_dim;
    const int f0 = (int)((long)c->hidden_dim * rank / P), f1 = (int)((long)c->hidden_dim * (rank + 1) / P);
    const size_t D = c->dim, F = c->hidden_dim, Fl = (size_t)(f1 - f0), ql = (size_t)hl * Dh;
    IFK_CHECK_ARG(Fl > 0, "%d ranks leave rank %d no MLP columns (hidden %d)", P, rank, c->hidden_dim);
    out->cfg = *c;
    memcpy(out->fingerprint, full->fingerprint, sizeof out->fingerprint);
    out->tok_identity = full->tok_identity;
    out->cfg.n_kv_heads = kvl;
    out->cfg.n_heads = hl;
    out->cfg.hidden_dim = (int)Fl;
    snprintf(out->source, sizeof out->source, "%s", full->source);
    out->tok_emb = full->tok_emb;
    out->rms_final = full->rms_final;
    out->wcls = full->wcls;
    out->layers = ifk_calloc((size_t)c->n_layers, sizeof *out->layers, "layer table");
    out->inv_freq = ifk_malloc(sizeof(double) * (size_t)(Dh / 2), "RoPE frequencies");
    const ifk_wdtype t = full->wdtype;
    const size_t es = ifk_wdtype_size(t);
    out->wdtype = t;
    /* a mapped checkpoint's row blocks are read into the slice too (pread: none of the full
     * model's layer pages becomes resident; a view would fault them in, with the pages around) */
    const int copy_rows = full->map != NULL;
    const size_t kvr = (size_t)kvl * Dh,
                 per_layer = D * ql + D * Fl + (copy_rows ? ql * D + 2 * kvr * D + 2 * Fl * D : 0);
    out->owned = ifk_malloc(es * (size_t)c->n_layers * per_layer, "weight slices");
    if (!out->layers || !out->inv_freq || !out->owned) {
        ifk_model_free(out);
        return IFK_ERR_OOM;
    }
    memcpy(out->inv_freq, full->inv_freq, sizeof(double) * (size_t)(Dh / 2));
    char *p = out->owned;
    const size_t qfull = (size_t)c->n_heads * Dh;
    for (int l = 0; l < c->n_layers; l++) {
        const ifk_layer_weights *w = &full->layers[l];
        ifk_layer_weights *o = &out->layers[l];
        *o = *w;
        o->wq = ifk_wat(w->wq, t, (size_t)rank * ql * D);
        o->wk = ifk_wat(w->wk, t, (size_t)rank * kvr * D);
        o->wv = ifk_wat(w->wv, t, (size_t)rank * kvr * D);
        o->w1 = ifk_wat(w->w1, t, (size_t)f0 * D);
        o->w3 = ifk_wat(w->w3, t, (size_t)f0 * D);
        if (copy_rows) {
            const ifk_wbuf **rows[] = {&o->wq, &o->wk, &o->wv, &o->w1, &o->w3};
            const size_t n[] = {ql * D, kvr * D, kvr * D, Fl * D, Fl * D};
            for (int k = 0; k < 5; k++) {
                wread_(full, p, *rows[k], es * n[k]);
                *rows[k] = (const ifk_wbuf *)p;
                p += es * n[k];
            }
        }
        if (w->bq) {
            o->bq = w->bq + (size_t)rank * ql;
            o->bk = w->bk + (size_t)rank * kvl * Dh;
            o->bv = w->bv + (size_t)rank * kvl * Dh;
        }
        if (w->b1) { /* bo and b2 are added after the all-reduce: whole on every rank */
            o->b1 = w->b1 + f0;
            o->b3 = w->b3 + f0;
        }
        char *wo = p, *w2 = p + es * D * ql; /* (D, ql) and (D, Fl): the columns this rank owns */
        wread_block_(full, wo, w->wo, es, qfull, 0, D, (size_t)rank * ql, ql);
        wread_block_(full, w2, w->w2, es, F, 0, D, (size_t)f0, Fl);
        o->wo = (const ifk_wbuf *)wo;
        o->w2 = (const ifk_wbuf *)w2;
        p += es * (D * ql + D * Fl);
    }
    return IFK_OK;
}

/* Drops elements [0, n) of base (es bytes each) except [off, off + len). */
static void drop_outside_(const ifk_wbuf *base, size_t es, size_t n, size_t off, size_t len) {
    const char *b = (const char *)base;
    ifk_drop_pages(b, b + es * off);
    ifk_drop_pages(b + es * (off + len), b + es * n);
}

static void fingerprint_(const ifk_model *m, char out[17]);

void ifk_model_release_unsliced(ifk_model *full, const ifk_model *slice, int rank, int P) {
    if (!full->layers || P <= 1) return;
    /* the weights' own fingerprint, kept before the pages go (the tokenizer's part is mixed in on use) */
    if (!full->fingerprint[0]) fingerprint_(full, full->fingerprint);
    const ifk_config *c = &full->cfg;
    const size_t D = c->dim, F = c->hidden_dim, Dh = c->head_dim, q = (size_t)c->n_heads * Dh,
                 kv = (size_t)c->n_kv_heads * Dh, ql = q / P, kvl = kv / P, f0 = (size_t)((long)F * rank / P),
                 Fl = (size_t)slice->cfg.hidden_dim, es = ifk_wdtype_size(full->wdtype);
    for (int l = 0; l < c->n_layers; l++) {
        const ifk_layer_weights *w = &full->layers[l];
        drop_outside_(w->wq, es, q * D, rank * ql * D, ql * D);
        drop_outside_(w->wk, es, kv * D, rank * kvl * D, kvl * D);
        drop_outside_(w->wv, es, kv * D, rank * kvl * D, kvl * D);
        drop_outside_(w->w1, es, F * D, f0 * D, Fl * D);
        drop_outside_(w->w3, es, F * D, f0 * D, Fl * D);
        drop_outside_(w->wo, es, D * q, 0, 0);
        drop_outside_(w->w2, es, D * F, 0, 0);
    }
}

/* ---- fingerprint ------------------------------------------------------------------------------ */

static uint64_t mix_(uint64_t h, uint64_t w) {
    h ^= w * 0x9E3779B97F4A7C15ull;
    h = (h << 27) | (h >> 37);
    return h * 0xC2B2AE3D27D4EB4Full + 0x165667B19E3779F9ull;
}

/* The lanes' part of hashing floats p[0, n): every group of 4 float pairs, and when last, the pairs
 * and the float left over. Fed in pieces of a multiple of 8 floats (all but the last), it computes
 * what one call over the whole does. */
static void hash_lanes_(uint64_t l[4], const float *p, size_t n, int last) {
    size_t i = 0, nw = n / 2;
    const uint32_t *u = (const uint32_t *)p;
    for (; i + 4 <= nw; i += 4)
        for (int k = 0; k < 4; k++) l[k] = mix_(l[k], (uint64_t)u[2 * (i + k)] | (uint64_t)u[2 * (i + k) + 1] << 32);
    if (!last) return;
    for (; i < nw; i++) l[0] = mix_(l[0], (uint64_t)u[2 * i] | (uint64_t)u[2 * i + 1] << 32);
    if (n & 1) l[1] = mix_(l[1], u[n - 1]);
}

static uint64_t hash_floats_(uint64_t h, const float *p, size_t n) {
    /* four independent lanes keep the multiply chain from bounding the speed */
    uint64_t l[4] = {h, h ^ 1, h ^ 2, h ^ 3};
    hash_lanes_(l, p, n, 1);
    return mix_(mix_(mix_(mix_(n, l[0]), l[1]), l[2]), l[3]);
}

/* hash_floats_ over n floats of m's weights at p, streamed through a small buffer when p is in a
 * mapped checkpoint (so hashing does not make the file resident) */
static uint64_t hash_model_floats_(const ifk_model *m, uint64_t h, const float *p, size_t n) {
    if (!mapped_(m, p)) return hash_floats_(h, p, n);
    float buf[WCHUNK_];
    uint64_t l[4] = {h, h ^ 1, h ^ 2, h ^ 3};
    for (size_t i = 0; i < n; i += WCHUNK_) {
        const size_t k = n - i < WCHUNK_ ? n - i : WCHUNK_;
        wread_(m, buf, p + i, sizeof(float) * k);
        hash_lanes_(l, buf, k, i + k == n);
    }
    return mix_(mix_(mix_(mix_(n, l[0]), l[1]), l[2]), l[3]);
}

/* f32 matrices hash as before; 2-byte ones hash their widened values (a bf16 model is another model) */
static uint64_t hash_w_(const ifk_model *m, uint64_t h, const ifk_wbuf *p, size_t n) {
    const ifk_wdtype t = m->wdtype;
    if (t == IFK_W_F32) return hash_model_floats_(m, h, (const float *)p, n);
    float buf[4096];
    for (size_t i = 0; i < n; i += 4096) {
        const size_t k = n - i < 4096 ? n - i : 4096;
        ifk_weights_to_f32(buf, t, ifk_wat(p, t, i), k);
        h = hash_floats_(h, buf, k);
    }
    return h;
}

static void fingerprint_(const ifk_model *m, char out[17]);

void ifk_model_fingerprint(const ifk_model *m, char out[17]) {
    fingerprint_(m, out);
    if (!m->tok_identity) return;
    /* bound to the tokenizer too: a store's tokens mean nothing under another one */
    unsigned long long h = strtoull(out, NULL, 16);
    snprintf(out, 17, "%016llx", (unsigned long long)mix_(mix_(h, 0x746F6B656E697A65ull), m->tok_identity));
}

static void fingerprint_(const ifk_model *m, char out[17]) {
    if (m->fingerprint[0]) { /* an HF folder: from its files (ifk_hf_fingerprint) */
        memcpy(out, m->fingerprint, 17);
        return;
    }
    const ifk_config *c = &m->cfg;
    const size_t D = c->dim, F = c->hidden_dim, q = (size_t)c->n_heads * c->head_dim,
                 kv = (size_t)c->n_kv_heads * c->head_dim;
    int64_t ints[] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                      c->seq_len, c->rope_style, c->rope_scaling.type, c->rope_scaling.original_max_positions,
                      c->shared_classifier, c->bos_id, c->eos_id, c->qkv_bias, c->qk_norm};
    double dbl[] = {c->norm_eps, c->rope_theta, c->rope_scaling.factor, c->rope_scaling.low_freq_factor,
                    c->rope_scaling.high_freq_factor};
    uint64_t h = 0x696E666F666C6F77ull; /* "infoflow" */
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) h = mix_(h, (uint64_t)ints[i]);
    for (size_t i = 0; i < sizeof dbl / sizeof *dbl; i++) {
        uint64_t w;
        memcpy(&w, &dbl[i], 8);
        h = mix_(h, w);
    }
    h = hash_w_(m, h, m->tok_emb, (size_t)c->vocab_size * D);
    for (int l = 0; l < c->n_layers; l++) {
        const ifk_layer_weights *w = &m->layers[l];
        h = hash_model_floats_(m, h, w->rms_att, D);
        h = hash_w_(m, h, w->wq, q * D);
        h = hash_w_(m, h, w->wk, kv * D);
        h = hash_w_(m, h, w->wv, kv * D);
        h = hash_w_(m, h, w->wo, D * q);
        h = hash_model_floats_(m, h, w->rms_ffn, D);
        h = hash_w_(m, h, w->w1, F * D);
        h = hash_w_(m, h, w->w2, D * F);
        h = hash_w_(m, h, w->w3, F * D);
        if (w->bq) h = hash_floats_(hash_floats_(hash_floats_(h, w->bq, q), w->bk, kv), w->bv, kv);
        if (w->bo) h = hash_floats_(h, w->bo, D);
        if (w->b1) h = hash_floats_(hash_floats_(hash_floats_(h, w->b1, F), w->b2, D), w->b3, F);
        if (w->q_norm) h = hash_floats_(hash_floats_(h, w->q_norm, c->head_dim), w->k_norm, c->head_dim);
    }
    h = hash_model_floats_(m, h, m->rms_final, D);
    if (!c->shared_classifier) h = hash_w_(m, h, m->wcls, (size_t)c->vocab_size * D);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void ifk_model_free(ifk_model *m) {
    if (m->map) munmap(m->map, m->map_len), close(m->map_fd);
    free(m->owned);
    free(m->layers);
    free(m->inv_freq);
    m->map = NULL;
    m->owned = NULL;
    m->layers = NULL;
    m->inv_freq = NULL;
}

/* ---- weight precision ----------------------------------------------------------------------------- */

void ifk_weights_request(int t) { weights_request_ = t; }
int ifk_weights_requested(void) { return weights_request_; }

typedef struct {
    void *slot;  /* address of the model's pointer to this tensor */
    size_t n;    /* elements */
    int mat;     /* 1: a matrix in wdtype; 0: an f32 vector */
    const char *name; /* the field ("wq"), for messages */
    int layer;   /* -1 outside the layers */
} tensor_ref_;

/* Every tensor the model owns, the shared classifier once (as tok_emb). */
static int tensor_refs_(ifk_model *m, tensor_ref_ *r) {
    const ifk_config *c = &m->cfg;
    const size_t D = c->dim, F = c->hidden_dim, q = (size_t)c->n_heads * c->head_dim,
                 kv = (size_t)c->n_kv_heads * c->head_dim, V = c->vocab_size, Dh = c->head_dim;
    int k = 0, l = -1;
#define REF_(field, count, is_mat) r[k++] = (tensor_ref_){(void *)&(field), (count), (is_mat), #field + 3, l}
    REF_(m->tok_emb, V * D, 1);
    if (!c->shared_classifier) REF_(m->wcls, V * D, 1);
    REF_(m->rms_final, D, 0);
    for (l = 0; l < c->n_layers; l++) {
        ifk_layer_weights *w = &m->layers[l];
        REF_(w->rms_att, D, 0);
        REF_(w->rms_ffn, D, 0);
        REF_(w->wq, q * D, 1);
        REF_(w->wk, kv * D, 1);
        REF_(w->wv, kv * D, 1);
        REF_(w->wo, D * q, 1);
        REF_(w->w1, F * D, 1);
        REF_(w->w2, D * F, 1);
        REF_(w->w3, F * D, 1);
        if (w->bq) REF_(w->bq, q, 0), REF_(w->bk, kv, 0), REF_(w->bv, kv, 0);
        if (w->q_norm) REF_(w->q_norm, Dh, 0), REF_(w->k_norm, Dh, 0);
        if (w->bo) REF_(w->bo, D, 0);
        if (w->b1) REF_(w->b1, F, 0), REF_(w->b2, D, 0), REF_(w->b3, F, 0);
    }
#undef REF_
    return k;
}

/* "layers.3.wq", "tok_emb" */
static const char *ref_name_(const tensor_ref_ *r, char *buf, size_t n) {
    if (r->layer >= 0) snprintf(buf, n, "layers.%d.%s", r->layer, r->name);
    else snprintf(buf, n, "%s", r->name);
    return buf;
}

/* ifk_weights_nonfinite over n weights of m at src, streamed through a small buffer when src is in
 * a mapped checkpoint (f32) */
static size_t model_nonfinite_(const ifk_model *m, const void *src, ifk_wdtype t, size_t n) {
    if (!mapped_(m, src)) return ifk_weights_nonfinite(src, t, n);
    float buf[WCHUNK_];
    for (size_t i = 0; i < n; i += WCHUNK_) {
        const size_t k = n - i < WCHUNK_ ? n - i : WCHUNK_;
        wread_(m, buf, (const float *)src + i, sizeof(float) * k);
        const size_t at = ifk_weights_nonfinite(buf, IFK_W_F32, k);
        if (at < k) return i + at;
    }
    return n;
}

ifk_status ifk_model_check_finite(const ifk_model *m, const char *path) {
    tensor_ref_ *r = ifk_malloc(sizeof *r * (3 + 18 * (size_t)m->cfg.n_layers), "tensor table");
    if (!r) return IFK_ERR_OOM;
    const int k = tensor_refs_((ifk_model *)m, r);
    ifk_status st = IFK_OK;
    for (int i = 0; i < k && st == IFK_OK; i++) {
        const void *src;
        memcpy(&src, r[i].slot, sizeof src);
        const size_t at = model_nonfinite_(m, src, r[i].mat ? m->wdtype : IFK_W_F32, r[i].n);
        if (at == r[i].n) continue;
        char name[64];
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s holds NaN or infinity (element %zu of %zu)", path,
                      ref_name_(&r[i], name, sizeof name), at, r[i].n);
    }
    free(r);
    return st;
}

size_t ifk_model_bytes(const ifk_model *m) {
    tensor_ref_ *r = malloc(sizeof *r * (3 + 18 * (size_t)m->cfg.n_layers));
    if (!r) return 0;
    int k = tensor_refs_((ifk_model *)m, r);
    size_t b = 0;
    for (int i = 0; i < k; i++) b += r[i].n * (r[i].mat ? ifk_wdtype_size(m->wdtype) : 4);
    free(r);
    return b;
}

ifk_status ifk_model_convert(ifk_model *m, ifk_wdtype t) {
    if (m->wdtype == t) return IFK_OK;
    tensor_ref_ *r = ifk_malloc(sizeof *r * (3 + 18 * (size_t)m->cfg.n_layers), "tensor table");
    if (!r) return IFK_ERR_OOM;
    const int k = tensor_refs_(m, r);
    size_t bytes = 0;
    for (int i = 0; i < k; i++) bytes += r[i].n * (r[i].mat ? ifk_wdtype_size(t) : 4);
    char *blk = ifk_malloc(bytes, "converted weights"), *p = blk;
    float *buf = ifk_malloc(sizeof(float) * 4096, "conversion buffer");
    if (!blk || !buf) {
        free(r), free(blk), free(buf);
        return IFK_ERR_OOM;
    }
    for (int i = 0; i < k; i++) {
        const char *src;
        memcpy(&src, r[i].slot, sizeof src);
        if (!r[i].mat) {
            wread_(m, p, src, 4 * r[i].n);
        } else {
            for (size_t j = 0; j < r[i].n; j += 4096) {
                const size_t n = r[i].n - j < 4096 ? r[i].n - j : 4096;
                if (mapped_(m, src)) wread_(m, buf, src + 4 * j, 4 * n); /* a mapped checkpoint is f32 */
                else ifk_weights_to_f32(buf, m->wdtype, src + j * ifk_wdtype_size(m->wdtype), n);
                ifk_weights_from_f32(p + j * ifk_wdtype_size(t), t, buf, n);
                if (ifk_weights_nonfinite(p + j * ifk_wdtype_size(t), t, n) < n) { /* f16's range ends at 65504 */
                    char name[64];
                    ifk_status st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s overflows %s (a weight beyond its range): "
                                             "keep another --weights", m->source, ref_name_(&r[i], name, sizeof name),
                                             ifk_wdtype_name(t));
                    free(r), free(blk), free(buf);
                    return st;
                }
            }
        }
        memcpy(r[i].slot, &p, sizeof p);
        p += r[i].n * (r[i].mat ? ifk_wdtype_size(t) : 4);
    }
    if (m->cfg.shared_classifier) m->wcls = m->tok_emb;
    free(r), free(buf);
    if (m->map) munmap(m->map, m->map_len), close(m->map_fd);
    free(m->owned);
    m->map = NULL, m->map_len = 0;
    m->owned = blk;
    m->wdtype = t;
    return IFK_OK;
}
