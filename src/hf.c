/* hf.c — config.json and safetensors (hf.h). */
#include "hf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"

int ifk_hf_is_folder(const char *dir) {
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return stat(p, &st) == 0;
}

static char *slurp_(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
    fclose(f);
    if (b) b[n] = '\0', *len = (size_t)n;
    return b;
}

static int jint_(const cJSON *o, const char *k, long *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsArray(x)) x = cJSON_GetArrayItem(x, 0); /* eos_token_id may be a list */
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble)) return 0;
    *v = (long)x->valuedouble;
    return 1;
}

ifk_status ifk_hf_config(ifk_config *c, const char *path) {
    size_t len;
    char *txt = slurp_(path, &len);
    if (!txt) return IFK_FAIL(IFK_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    cJSON *o = cJSON_Parse(txt);
    free(txt);
    ifk_status st = IFK_OK;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(o)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    const cJSON *arch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "architectures"), 0);
    const char *a = cJSON_IsString(arch) ? arch->valuestring : "";
    int qwen2 = !strcmp(a, "Qwen2ForCausalLM"), qwen3 = !strcmp(a, "Qwen3ForCausalLM");
    if (!qwen2 && !qwen3 && strcmp(a, "LlamaForCausalLM") && strcmp(a, "MistralForCausalLM")) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: architecture \"%s\" is not supported (LlamaForCausalLM, MistralForCausalLM, "
                      "Qwen2ForCausalLM, Qwen3ForCausalLM)", path, a);
        goto done;
    }
    long v;
#define REQ_(key, dst)                                                                                   \
    if (!jint_(o, key, &v) || v <= 0 || v > (1L << 30)) {                                               \
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" missing or not a positive integer", path, key);         \
        goto done;                                                                                       \
    }                                                                                                    \
    dst = (int)v;
    REQ_("hidden_size", c->dim)
    REQ_("intermediate_size", c->hidden_dim)
    REQ_("num_hidden_layers", c->n_layers)
    REQ_("num_attention_heads", c->n_heads)
    REQ_("vocab_size", c->vocab_size)
#undef REQ_
    c->n_kv_heads = jint_(o, "num_key_value_heads", &v) ? (int)v : c->n_heads;
    c->head_dim = jint_(o, "head_dim", &v) ? (int)v : c->dim / c->n_heads;
    c->seq_len = jint_(o, "max_position_embeddings", &v) ? (int)v : 2048;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "rope_theta"), *eps = cJSON_GetObjectItemCaseSensitive(o, "rms_norm_eps"),
                *tie = cJSON_GetObjectItemCaseSensitive(o, "tie_word_embeddings"),
                *bias = cJSON_GetObjectItemCaseSensitive(o, "attention_bias"),
                *sc = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling");
    c->rope_theta = cJSON_IsNumber(t) ? t->valuedouble : 10000.0;
    c->norm_eps = cJSON_IsNumber(eps) ? (float)eps->valuedouble : 1e-6f;
    c->rope_style = IFK_ROPE_HALF;
    c->shared_classifier = cJSON_IsBool(tie) ? cJSON_IsTrue(tie) : 0;
    c->qkv_bias = qwen2 ? 1 : cJSON_IsBool(bias) ? cJSON_IsTrue(bias) : 0;
    c->qk_norm = qwen3;
    c->bos_id = jint_(o, "bos_token_id", &v) ? (int)v : 1;
    c->eos_id = jint_(o, "eos_token_id", &v) ? (int)v : 2;
    if (sc && !cJSON_IsNull(sc)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(sc, "rope_type");
        if (!ty) ty = cJSON_GetObjectItemCaseSensitive(sc, "type");
        const char *tn = cJSON_IsString(ty) ? ty->valuestring : "?";
        if (!strcmp(tn, "llama3")) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(sc, "factor"), *lo = cJSON_GetObjectItemCaseSensitive(sc, "low_freq_factor"),
                        *hi = cJSON_GetObjectItemCaseSensitive(sc, "high_freq_factor");
            if (!cJSON_IsNumber(f) || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) ||
                !jint_(sc, "original_max_position_embeddings", &v) || !(hi->valuedouble > lo->valuedouble)) {
                st = IFK_FAIL(IFK_ERR_FORMAT, "%s: incomplete llama3 rope_scaling", path);
                goto done;
            }
            c->rope_scaling = (ifk_rope_scaling){IFK_ROPE_SCALING_LLAMA3, f->valuedouble, lo->valuedouble, hi->valuedouble, (int)v};
        } else if (strcmp(tn, "default")) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: rope_scaling type \"%s\" is not supported (llama3)", path, tn);
            goto done;
        }
    }
    st = ifk_config_validate(c, path);
done:
    cJSON_Delete(o);
    return st;
}

/* ---- safetensors ----------------------------------------------------------------------------- */

typedef struct {
    char *path;
    const unsigned char *map;
    size_t len, data0; /* data starts after the 8-byte length and the header */
    cJSON *hdr;
} st_file_;

static void st_close_(st_file_ *f) {
    if (f->map) munmap((void *)f->map, f->len);
    cJSON_Delete(f->hdr);
    free(f->path);
    memset(f, 0, sizeof *f);
}

typedef struct {
    size_t b, e;
} span_;
static int by_begin_(const void *x, const void *y) {
    const span_ *a = x, *b = y;
    return a->b < b->b ? -1 : a->b > b->b;
}

/* Maps a safetensors file and checks its header: length within the file, every tensor's dtype
 * known, offsets inside the data, sizes equal to the shape's, no two tensors overlapping. */
static ifk_status st_open_(st_file_ *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0) close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    f->len = (size_t)sb.st_size;
    if (f->len < 8) {
        close(fd);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header", path, f->len);
    }
    void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return IFK_FAIL(IFK_ERR_IO, "%s: mmap failed", path);
    f->map = m;
    uint64_t hl;
    memcpy(&hl, f->map, 8);
    if (hl > f->len - 8) return IFK_FAIL(IFK_ERR_FORMAT, "%s: header length %llu runs past the end of the file", path,
                                         (unsigned long long)hl);
    f->data0 = 8 + (size_t)hl;
    f->hdr = cJSON_ParseWithLength((const char *)f->map + 8, (size_t)hl);
    if (!cJSON_IsObject(f->hdr)) return IFK_FAIL(IFK_ERR_FORMAT, "%s: header is not a JSON object", path);
    int n = cJSON_GetArraySize(f->hdr), k = 0;
    span_ *sp = calloc((size_t)n + 1, sizeof *sp);
    if (!sp) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    ifk_status st = IFK_OK;
    for (const cJSON *t = f->hdr->child; t && st == IFK_OK; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(t, "shape"),
                    *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        size_t es = cJSON_IsString(dt) ? (!strcmp(dt->valuestring, "F32") ? 4 : !strcmp(dt->valuestring, "F16") ||
                                          !strcmp(dt->valuestring, "BF16") ? 2 : 0) : 0;
        if (!es) { st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s: dtype %s is not F32, F16 or BF16", path, t->string,
                                 cJSON_IsString(dt) ? dt->valuestring : "?"); break; }
        if (!cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s: shape or data_offsets malformed", path, t->string);
            break;
        }
        double numel = 1;
        for (const cJSON *d = sh->child; d; d = d->next) numel *= cJSON_IsNumber(d) && d->valuedouble >= 0 ? d->valuedouble : NAN;
        double b = cJSON_GetArrayItem(off, 0)->valuedouble, e = cJSON_GetArrayItem(off, 1)->valuedouble;
        if (!(numel >= 0) || !(b >= 0) || !(e >= b) || e > (double)(f->len - f->data0) || e - b != numel * es) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s: data_offsets [%.0f, %.0f) do not hold its shape or run past "
                          "the end of the file", path, t->string, b, e);
            break;
        }
        sp[k++] = (span_){(size_t)b, (size_t)e};
    }
    if (st == IFK_OK) {
        qsort(sp, (size_t)k, sizeof *sp, by_begin_);
        for (int i = 1; i < k; i++)
            if (sp[i].b < sp[i - 1].e) { st = IFK_FAIL(IFK_ERR_FORMAT, "%s: two tensors' data overlap", path); break; }
    }
    free(sp);
    return st;
}

/* Copies tensor name (expected shape rows x cols; cols 0 for 1-D) into dst as f32. */
/* Copies rows [ra, ra+nr) x columns [ca, ca+nc) of tensor name (whose shape must be rows x cols;
 * cols 0 for 1-D, then elements [ra, ra+nr)) into dst as f32: a rank reads only its slice. */
static ifk_status st_block_(st_file_ *fs, int nf, const char *name, long rows, long cols, long ra, long nr, long ca,
                            long nc, float *dst);

static ifk_status st_take_(st_file_ *fs, int nf, const char *name, long rows, long cols, float *dst) {
    return st_block_(fs, nf, name, rows, cols, 0, rows, 0, cols, dst);
}

static ifk_status st_block_(st_file_ *fs, int nf, const char *name, long rows, long cols, long ra, long nr, long ca,
                            long nc, float *dst) {
    for (int i = 0; i < nf; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(fs[i].hdr, name);
        if (!t) continue;
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape"), *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        int rank = cJSON_GetArraySize(sh);
        long r0 = rank > 0 ? (long)cJSON_GetArrayItem(sh, 0)->valuedouble : -1, r1 = rank > 1 ? (long)cJSON_GetArrayItem(sh, 1)->valuedouble : 0;
        if (rank != (cols ? 2 : 1) || r0 != rows || (cols && r1 != cols))
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s has shape [%ld%s%ld], the config implies [%ld%s%ld]", fs[i].path, name,
                            r0, rank > 1 ? ", " : "", rank > 1 ? r1 : 0L, rows, cols ? ", " : "", cols ? cols : 0L);
        const unsigned char *src = fs[i].map + fs[i].data0 + (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), 0)->valuedouble;
        const size_t es = !strcmp(dt->valuestring, "F32") ? 4 : 2, width = (size_t)(cols ? cols : 1);
        const size_t seg = cols ? (size_t)nc : (size_t)nr, nseg = cols ? (size_t)nr : 1;
        for (size_t r = 0; r < nseg; r++) { /* one contiguous run per row of the block */
            const unsigned char *p = src + (((size_t)ra + r) * width + (cols ? (size_t)ca : 0) + (cols ? 0 : 0)) * es;
            if (!cols) p = src + (size_t)ra * es;
            float *d = dst + r * seg;
            if (es == 4) memcpy(d, p, seg * 4);
            else if (!strcmp(dt->valuestring, "F16")) ifk_f16_to_f32(d, p, seg);
            else ifk_bf16_to_f32(d, p, seg);
        }
        return IFK_OK;
    }
    return IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s is missing", fs[0].path, name);
}

ifk_status ifk_hf_load(ifk_model *m, const char *dir) { return ifk_hf_load_slice(m, dir, 0, 1); }

ifk_status ifk_hf_load_slice(ifk_model *m, const char *dir, int rank, int P) {
    memset(m, 0, sizeof *m);
    snprintf(m->source, sizeof m->source, "%s", dir);
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ifk_config full;
    IFK_CHECK(ifk_hf_config(&full, path));
    IFK_CHECK(ifk_check_ranks(full.n_kv_heads, P));
    IFK_CHECK(ifk_hf_fingerprint(dir, m->fingerprint));
    /* this rank's slice: KV heads with their query heads, MLP columns (the whole model when P = 1) */
    const long G = full.n_heads / full.n_kv_heads, kvl = full.n_kv_heads / P, hl = kvl * G, Dhf = full.head_dim;
    const long f0 = (long)full.hidden_dim * rank / P, f1 = (long)full.hidden_dim * (rank + 1) / P;
    m->cfg = full;
    m->cfg.n_kv_heads = (int)kvl;
    m->cfg.n_heads = (int)hl;
    m->cfg.hidden_dim = (int)(f1 - f0);
    const long qf = (long)full.n_heads * Dhf, kvf = (long)full.n_kv_heads * Dhf, Ff = full.hidden_dim;
    const long q0 = rank * hl * Dhf, kv0 = rank * kvl * Dhf;
    const ifk_config *c = &m->cfg;
    /* the files: one model.safetensors, or the shards an index names */
    st_file_ fs[64];
    int nf = 0;
    ifk_status st = IFK_OK;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    size_t len;
    char *ix = slurp_(path, &len);
    if (ix) {
        cJSON *o = cJSON_Parse(ix);
        free(ix);
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(o, "weight_map");
        if (!cJSON_IsObject(wm)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: no \"weight_map\" object", path);
        for (const cJSON *e = wm ? wm->child : NULL; st == IFK_OK && e; e = e->next) {
            if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
                st = IFK_FAIL(IFK_ERR_FORMAT, "%s: weight_map[%s] is not a file name", path, e->string);
                break;
            }
            int have = 0;
            char fp[2048];
            snprintf(fp, sizeof fp, "%s/%s", dir, e->valuestring);
            for (int i = 0; i < nf; i++) have |= !strcmp(fs[i].path, fp);
            if (!have) {
                if (nf == 64) { st = IFK_FAIL(IFK_ERR_FORMAT, "%s: more than 64 shards", path); break; }
                st = st_open_(&fs[nf++], fp);
            }
        }
        cJSON_Delete(o);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = st_open_(&fs[nf++], path);
    }
    if (st != IFK_OK) goto done;
    const long D = c->dim, F = c->hidden_dim, L = c->n_layers, q = (long)c->n_heads * c->head_dim,
               kv = (long)c->n_kv_heads * c->head_dim, V = c->vocab_size, Dh = c->head_dim;
    size_t per = (size_t)(D + q * D + 2 * kv * D + D * q + D + 3 * F * D + (c->qkv_bias ? q + 2 * kv : 0) + (c->qk_norm ? 2 * Dh : 0));
    size_t total = (size_t)V * D * (c->shared_classifier ? 1 : 2) + (size_t)L * per + (size_t)D;
    m->owned = ifk_malloc(sizeof(float) * total, "model weights (f32)");
    m->layers = ifk_calloc((size_t)L, sizeof *m->layers, "layer table");
    m->inv_freq = ifk_malloc(sizeof(double) * (size_t)(Dh / 2), "RoPE frequencies");
    if (!m->owned || !m->layers || !m->inv_freq) { st = IFK_ERR_OOM; goto done; }
    ifk_rope_inv_freq(c, m->inv_freq);
    float *p = m->owned;
#define TAKE_(name, rows, cols, field)                                                \
    do {                                                                              \
        IFK_CHECK_GOTO(st, st_take_(fs, nf, name, rows, cols, p), done);              \
        field = p;                                                                    \
        p += (size_t)(rows) * (size_t)((cols) ? (cols) : 1);                          \
    } while (0)
#define PART_(name, rows, cols, ra, nr, ca, nc, field)                                            \
    do {                                                                                          \
        IFK_CHECK_GOTO(st, st_block_(fs, nf, name, rows, cols, ra, nr, ca, nc, p), done);         \
        field = p;                                                                                \
        p += (size_t)(nr) * (size_t)((cols) ? (nc) : 1);                                          \
    } while (0)
    TAKE_("model.embed_tokens.weight", V, D, m->tok_emb);
    for (long l = 0; l < L; l++) {
        ifk_layer_weights *w = &m->layers[l];
        char n[128];
#define LT_(suffix, rows, cols, field) snprintf(n, sizeof n, "model.layers.%ld.%s", l, suffix); TAKE_(n, rows, cols, field)
#define LP_(suffix, rows, cols, ra, nr, ca, nc, field) snprintf(n, sizeof n, "model.layers.%ld.%s", l, suffix); PART_(n, rows, cols, ra, nr, ca, nc, field)
        LT_("input_layernorm.weight", D, 0, w->rms_att);
        LP_("self_attn.q_proj.weight", qf, D, q0, q, 0, D, w->wq);
        LP_("self_attn.k_proj.weight", kvf, D, kv0, kv, 0, D, w->wk);
        LP_("self_attn.v_proj.weight", kvf, D, kv0, kv, 0, D, w->wv);
        LP_("self_attn.o_proj.weight", D, qf, 0, D, q0, q, w->wo);
        if (c->qkv_bias) {
            LP_("self_attn.q_proj.bias", qf, 0, q0, q, 0, 0, w->bq);
            LP_("self_attn.k_proj.bias", kvf, 0, kv0, kv, 0, 0, w->bk);
            LP_("self_attn.v_proj.bias", kvf, 0, kv0, kv, 0, 0, w->bv);
        }
        if (c->qk_norm) {
            LT_("self_attn.q_norm.weight", Dh, 0, w->q_norm);
            LT_("self_attn.k_norm.weight", Dh, 0, w->k_norm);
        }
        LT_("post_attention_layernorm.weight", D, 0, w->rms_ffn);
        LP_("mlp.gate_proj.weight", Ff, D, f0, F, 0, D, w->w1);
        LP_("mlp.down_proj.weight", D, Ff, 0, D, f0, F, w->w2);
        LP_("mlp.up_proj.weight", Ff, D, f0, F, 0, D, w->w3);
#undef LT_
#undef LP_
    }
    TAKE_("model.norm.weight", D, 0, m->rms_final);
    if (c->shared_classifier) m->wcls = m->tok_emb;
    else TAKE_("lm_head.weight", V, D, m->wcls);
#undef TAKE_
#undef PART_
done:
    for (int i = 0; i < nf; i++) st_close_(&fs[i]);
    if (st != IFK_OK) ifk_model_free(m);
    return st;
}

/* ---- fingerprint ------------------------------------------------------------------------------ */

/* The fingerprint hash: FNV-1a's step from the offset basis 1469598103934665603 (one digit short
 * of the standard 14695981039346656037). Kept exactly as it is because fingerprints are written
 * into stores: changing it would orphan every existing store. Not a table hash (strmap.h). */
static uint64_t fmix_(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

ifk_status ifk_hf_fingerprint(const char *dir, char out[17]) {
    /* config.json, every tensor's name/dtype/shape/offsets, and 64 values spread over each tensor:
     * cheap enough for every rank of a tensor-parallel job (it touches a few pages per tensor) */
    char path[2048];
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *cfg = slurp_(path, &len);
    if (!cfg) return IFK_FAIL(IFK_ERR_IO, "%s: cannot read", path);
    uint64_t h = fmix_(1469598103934665603ull, cfg, len);
    free(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    char *ix = slurp_(path, &len);
    char files[64][512];
    int nfile = 0;
    if (ix) {
        cJSON *o = cJSON_Parse(ix);
        free(ix);
        for (const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "weight_map") ? cJSON_GetObjectItemCaseSensitive(o, "weight_map")->child : NULL; e; e = e->next) {
            int have = 0;
            for (int i = 0; i < nfile; i++) have |= cJSON_IsString(e) && !strcmp(files[i], e->valuestring);
            if (!have && cJSON_IsString(e) && nfile < 64) snprintf(files[nfile++], 512, "%s", e->valuestring);
        }
        cJSON_Delete(o);
    } else {
        snprintf(files[nfile++], 512, "model.safetensors");
    }
    for (int i = 0; i < nfile; i++) {
        st_file_ f;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= sizeof path)
            return IFK_FAIL(IFK_ERR_ARG, "%s: path too long", dir);
        ifk_status st = st_open_(&f, path);
        if (st != IFK_OK) { st_close_(&f); return st; }
        h = fmix_(h, f.map + 8, f.data0 - 8); /* the header */
        for (const cJSON *t = f.hdr->child; t; t = t->next) {
            const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
            if (!cJSON_IsArray(off)) continue;
            size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
            for (int k = 0; k < 64 && e > b; k++) {
                size_t at = b + (e - b - 1) * (size_t)k / 63;
                h = fmix_(h, f.map + f.data0 + at, 1);
            }
        }
        st_close_(&f);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return IFK_OK;
}

/* ---- writing (the converter) --------------------------------------------------------------- */

ifk_status ifk_hf_write_llama(const ifk_model *m, const char *dir) {
    const ifk_config *c = &m->cfg;
    mkdir(dir, 0755);
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %d,\n"
               "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
               "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n"
               "  \"rope_theta\": %.1f,\n  \"rms_norm_eps\": %g,\n  \"tie_word_embeddings\": %s,\n  \"bos_token_id\": %d,\n"
               "  \"eos_token_id\": %d,\n  \"torch_dtype\": \"float32\"\n}\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->seq_len,
            c->rope_theta, c->norm_eps, c->shared_classifier ? "true" : "false", c->bos_id, c->eos_id);
    fclose(f);
    /* tensors: name, data, rows, cols, permute (heads) */
    typedef struct { char name[96]; const float *data; long rows, cols; int perm_heads; } t_;
    const long D = c->dim, F = c->hidden_dim, q = (long)c->n_heads * c->head_dim, kv = (long)c->n_kv_heads * c->head_dim;
    int nt = 0, cap = 8 + 9 * c->n_layers;
    t_ *ts = calloc((size_t)cap, sizeof *ts);
    if (!ts) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
#define ADD_(nm, d, r, cc, ph) do { snprintf(ts[nt].name, 96, "%s", nm); ts[nt].data = d; ts[nt].rows = r; ts[nt].cols = cc; ts[nt].perm_heads = ph; nt++; } while (0)
    ADD_("model.embed_tokens.weight", m->tok_emb, (long)c->vocab_size, D, 0);
    char n[96];
    for (int l = 0; l < c->n_layers; l++) {
        const ifk_layer_weights *w = &m->layers[l];
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l); ADD_(n, w->rms_att, D, 0, 0);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.q_proj.weight", l); ADD_(n, w->wq, q, D, c->n_heads);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.k_proj.weight", l); ADD_(n, w->wk, kv, D, c->n_kv_heads);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.v_proj.weight", l); ADD_(n, w->wv, kv, D, 0);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.o_proj.weight", l); ADD_(n, w->wo, D, q, 0);
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l); ADD_(n, w->rms_ffn, D, 0, 0);
        snprintf(n, sizeof n, "model.layers.%d.mlp.gate_proj.weight", l); ADD_(n, w->w1, F, D, 0);
        snprintf(n, sizeof n, "model.layers.%d.mlp.down_proj.weight", l); ADD_(n, w->w2, D, F, 0);
        snprintf(n, sizeof n, "model.layers.%d.mlp.up_proj.weight", l); ADD_(n, w->w3, F, D, 0);
    }
    ADD_("model.norm.weight", m->rms_final, D, 0, 0);
    if (!c->shared_classifier) ADD_("lm_head.weight", m->wcls, (long)c->vocab_size, D, 0);
#undef ADD_
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", "F32");
        cJSON *sh = cJSON_CreateArray();
        cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)ts[i].rows));
        if (ts[i].cols) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)ts[i].cols));
        cJSON_AddItemToObject(o, "shape", sh);
        size_t bytes = 4 * (size_t)ts[i].rows * (size_t)(ts[i].cols ? ts[i].cols : 1);
        cJSON *of = cJSON_CreateArray();
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + bytes)));
        cJSON_AddItemToObject(o, "data_offsets", of);
        cJSON_AddItemToObject(h, ts[i].name, o);
        off += bytes;
    }
    char *hj = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hl = strlen(hj), pad = (8 - hl % 8) % 8;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    ifk_status st = IFK_OK;
    if (!f) { st = IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", path, strerror(errno)); goto out; }
    uint64_t L64 = hl + pad;
    fwrite(&L64, 8, 1, f);
    fwrite(hj, 1, hl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    for (int i = 0; i < nt; i++) {
        const long rows = ts[i].rows, cols = ts[i].cols ? ts[i].cols : 1;
        if (!ts[i].perm_heads) { fwrite(ts[i].data, 4, (size_t)rows * cols, f); continue; }
        /* interleaved pairs (2j, 2j+1) of each head become (j, j + Dh/2): row j*... of HF's permute */
        const int Dh = c->head_dim, half = Dh / 2;
        for (int hh = 0; hh < ts[i].perm_heads; hh++)
            for (int r = 0; r < Dh; r++) {
                int src = r < half ? 2 * r : 2 * (r - half) + 1;
                fwrite(ts[i].data + ((size_t)hh * Dh + src) * cols, 4, (size_t)cols, f);
            }
    }
    if (fclose(f) != 0) st = IFK_FAIL(IFK_ERR_IO, "%s: write failed", path);
out:
    free(hj);
    free(ts);
    return st;
}
