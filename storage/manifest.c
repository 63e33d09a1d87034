/* manifest.c — the store manifest, its parameters and the document records (manifest.h). */
#include "manifest.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "strmap.h"
#include "sys.h"

const char *ifk_rope_style_name(ifk_rope_style s) { return s == IFK_ROPE_HALF ? "half" : "interleaved"; }
const char *ifk_split_name(ifk_split s) { return s == IFK_SPLIT_PARAGRAPHS ? "paragraphs" : "tokens"; }

/* ---- params ------------------------------------------------------------------------------------- */

void ifk_store_params_from_model(ifk_store_params *p, const ifk_model *m, const char fingerprint[17]) {
    memset(p, 0, sizeof *p);
    snprintf(p->fingerprint, sizeof p->fingerprint, "%s", fingerprint);
    snprintf(p->model_source, sizeof p->model_source, "%s", m->source);
    p->weights = m->wdtype;
    p->n_layers = m->cfg.n_layers;
    p->n_kv_heads = m->cfg.n_kv_heads;
    p->head_dim = m->cfg.head_dim;
    p->vocab_size = m->cfg.vocab_size;
    p->bos_id = m->cfg.bos_id;
    p->rope_theta = m->cfg.rope_theta;
    p->rope_style = m->cfg.rope_style;
    p->rope_scaling = m->cfg.rope_scaling;
    p->prefix_len = IFK_CHUNK_PREFIX;
}

ifk_status ifk_store_params_check(const ifk_store_params *h, const ifk_store_params *w, const char *dir, int layout) {
    if (h->weights != w->weights) /* K/V of bf16 weights are not those of f32 weights: another model */
        return IFK_FAIL(IFK_ERR_ARG,
                        "%s: store's K/V were computed with %s weights; this model holds %s weights (load it with "
                        "--weights %s, or use --force to rebuild the store, or another --store)",
                        dir, ifk_wdtype_name(h->weights), ifk_wdtype_name(w->weights), ifk_wdtype_name(h->weights));
    if (strcmp(h->fingerprint, w->fingerprint))
        return IFK_FAIL(IFK_ERR_ARG,
                        "%s: store was built with another model or tokenizer (fingerprint %s, from %s); this model's "
                        "and tokenizer's is %s "
                        "(use --force to rebuild the store, or another --store)",
                        dir, h->fingerprint, h->model_source, w->fingerprint);
    if (h->n_layers != w->n_layers || h->n_kv_heads != w->n_kv_heads || h->head_dim != w->head_dim ||
        h->rope_style != w->rope_style || h->rope_theta != w->rope_theta || h->prefix_len != w->prefix_len ||
        h->rope_scaling.type != w->rope_scaling.type)
        return IFK_FAIL(IFK_ERR_ARG, "%s: store's model shape or RoPE parameters differ from this model's", dir);
    if (layout && (h->dtype != w->dtype || h->chunk_tokens != w->chunk_tokens || h->split != w->split))
        return IFK_FAIL(IFK_ERR_ARG,
                        "%s: store holds dtype %s, chunks of %d tokens split by %s; this job asks for %s, %d, %s "
                        "(use the store's settings, or --force to rebuild)",
                        dir, ifk_dtype_name(h->dtype), h->chunk_tokens, ifk_split_name(h->split), ifk_dtype_name(w->dtype),
                        w->chunk_tokens, ifk_split_name(w->split));
    return IFK_OK;
}

/* ---- manifest ------------------------------------------------------------------------------------ */

void ifk_doc_rec_free(ifk_doc_rec *r) {
    free(r->id);
    free(r->chunk_len);
    r->id = NULL;
    r->chunk_len = NULL;
}

int ifk_manifest_find(const ifk_manifest *m, const char *id) {
    int d;
    return m->ids && ifk_strmap_get(m->ids, id, strlen(id), &d) ? d : -1;
}

/* Makes room in the id map for n documents in all. */
static ifk_status reserve_ids_(ifk_manifest *m, size_t n) {
    if (!m->ids) return ifk_strmap_create(&m->ids, n);
    return ifk_strmap_reserve(m->ids, n);
}

/* Indexes document d of m (its id not yet present). */
static ifk_status index_doc_(ifk_manifest *m, int d) {
    return ifk_strmap_put(m->ids, m->docs[d].id, strlen(m->docs[d].id), d);
}

void ifk_manifest_init(ifk_manifest *m, const char *dir, const ifk_store_params *p) {
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    if (p) m->p = *p;
}

void ifk_manifest_free(ifk_manifest *m) {
    for (int i = 0; i < m->n_shards; i++) free(m->shards[i]);
    for (int i = 0; i < m->n_docs; i++) ifk_doc_rec_free(&m->docs[i]);
    free(m->shards);
    free(m->docs);
    ifk_strmap_free(&m->ids);
    m->shards = NULL;
    m->docs = NULL;
    m->n_shards = m->n_docs = 0;
}

ifk_status ifk_manifest_add(ifk_manifest *m, const char *shard, ifk_doc_rec *docs, int n) {
    for (int i = 0; i < n; i++)
        if (ifk_manifest_find(m, docs[i].id) >= 0)
            return IFK_FAIL(IFK_ERR_INTERNAL, "%s: document \"%s\" committed twice", m->dir, docs[i].id);
    if (m->n_shards == m->cap_shards) {
        int cap = m->cap_shards ? 2 * m->cap_shards : 16;
        char **s = realloc(m->shards, sizeof(char *) * cap);
        if (!s) return IFK_FAIL(IFK_ERR_OOM, "out of memory growing the manifest");
        m->shards = s;
        m->cap_shards = cap;
    }
    if (m->n_docs + n > m->cap_docs) {
        int cap = 2 * (m->n_docs + n) + 64;
        ifk_doc_rec *d = realloc(m->docs, sizeof(ifk_doc_rec) * cap);
        if (!d) return IFK_FAIL(IFK_ERR_OOM, "out of memory growing the manifest");
        m->docs = d;
        m->cap_docs = cap;
    }
    IFK_CHECK(reserve_ids_(m, (size_t)(m->n_docs + n)));
    char *name = strdup(shard);
    if (!name) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    int si = m->n_shards++;
    m->shards[si] = name;
    for (int i = 0; i < n; i++) {
        ifk_doc_rec *r = &m->docs[m->n_docs];
        *r = docs[i];
        r->shard = si;
        IFK_CHECK(index_doc_(m, m->n_docs));
        m->n_tokens += r->n_tokens;
        m->n_chunks += r->n_chunks;
        m->n_docs++;
        docs[i].id = NULL;
        docs[i].chunk_len = NULL;
    }
    return IFK_OK;
}

static cJSON *doc_json_(const ifk_doc_rec *r, int with_shard) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    if (with_shard) cJSON_AddNumberToObject(o, "shard", r->shard);
    cJSON_AddStringToObject(o, "group", r->group);
    cJSON_AddNumberToObject(o, "n_tokens", r->n_tokens);
    cJSON_AddItemToObject(o, "chunks", cJSON_CreateIntArray(r->chunk_len, r->n_chunks));
    return o;
}

static int json_int_(const cJSON *o, const char *key, long lo, long hi, long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble || v->valuedouble < lo ||
        v->valuedouble > hi)
        return 0;
    *out = (long)v->valuedouble;
    return 1;
}

/* Parses one document record; where names the record in messages. */
static ifk_status doc_from_json_(const cJSON *o, ifk_doc_rec *r, int with_shard, int n_shards, const char *where) {
    memset(r, 0, sizeof *r);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id"), *g = cJSON_GetObjectItemCaseSensitive(o, "group"),
                *ch = cJSON_GetObjectItemCaseSensitive(o, "chunks");
    long shard = 0, ntok;
    if (!cJSON_IsObject(o) || !cJSON_IsString(id) || !cJSON_IsString(g) || strlen(g->valuestring) >= sizeof r->group ||
        !cJSON_IsArray(ch) || !json_int_(o, "n_tokens", 0, INT32_MAX, &ntok) ||
        (with_shard && !json_int_(o, "shard", 0, n_shards - 1, &shard)))
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: malformed document record", where);
    r->shard = (int)shard;
    r->n_tokens = (int)ntok;
    snprintf(r->group, sizeof r->group, "%s", g->valuestring);
    r->n_chunks = cJSON_GetArraySize(ch);
    r->id = strdup(id->valuestring);
    r->chunk_len = malloc(sizeof(int) * (size_t)(r->n_chunks > 0 ? r->n_chunks : 1));
    if (!r->id || !r->chunk_len) {
        ifk_doc_rec_free(r);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    long sum = 0;
    for (int c = 0; c < r->n_chunks; c++) {
        const cJSON *e = cJSON_GetArrayItem(ch, c);
        if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 1 << 24 ||
            e->valuedouble != (double)(int)e->valuedouble) {
            ifk_doc_rec_free(r);
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: document \"%s\": bad chunk length", where, id->valuestring);
        }
        r->chunk_len[c] = (int)e->valuedouble;
        sum += r->chunk_len[c];
    }
    if (sum != r->n_tokens) {
        IFK_FAIL(IFK_ERR_FORMAT, "%s: document \"%s\": chunk lengths sum to %ld, not n_tokens %d", where, r->id, sum,
                 r->n_tokens);
        ifk_doc_rec_free(r);
        return IFK_ERR_FORMAT;
    }
    return IFK_OK;
}

char *ifk_doc_recs_to_json(const ifk_doc_rec *docs, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, doc_json_(&docs[i], 0));
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

ifk_status ifk_doc_recs_from_json(const char *json, ifk_doc_rec **docs, int *n) {
    *docs = NULL;
    *n = 0;
    cJSON *a = cJSON_Parse(json);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return IFK_FAIL(IFK_ERR_FORMAT, "commit message: not a JSON array of documents");
    }
    int cnt = cJSON_GetArraySize(a);
    ifk_doc_rec *d = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof *d);
    if (!d) {
        cJSON_Delete(a);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    for (int i = 0; i < cnt; i++) {
        ifk_status st = doc_from_json_(cJSON_GetArrayItem(a, i), &d[i], 0, 0, "commit message");
        if (st != IFK_OK) {
            for (int j = 0; j < i; j++) ifk_doc_rec_free(&d[j]);
            free(d);
            cJSON_Delete(a);
            return st;
        }
    }
    cJSON_Delete(a);
    *docs = d;
    *n = cnt;
    return IFK_OK;
}

ifk_status ifk_manifest_save(const ifk_manifest *m) {
    const ifk_store_params *p = &m->p;
    cJSON *o = cJSON_CreateObject(), *model = cJSON_CreateObject(), *sc = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "infoflow-kv-store");
    cJSON_AddNumberToObject(o, "format_version", IFK_STORE_FORMAT_VERSION);
    cJSON_AddStringToObject(model, "fingerprint", p->fingerprint);
    cJSON_AddStringToObject(model, "source", p->model_source);
    cJSON_AddStringToObject(model, "weights", ifk_wdtype_name(p->weights));
    cJSON_AddNumberToObject(model, "n_layers", p->n_layers);
    cJSON_AddNumberToObject(model, "n_kv_heads", p->n_kv_heads);
    cJSON_AddNumberToObject(model, "head_dim", p->head_dim);
    cJSON_AddNumberToObject(model, "vocab_size", p->vocab_size);
    cJSON_AddNumberToObject(model, "bos_id", p->bos_id);
    cJSON_AddNumberToObject(model, "rope_theta", p->rope_theta);
    cJSON_AddStringToObject(model, "rope_style", ifk_rope_style_name(p->rope_style));
    cJSON_AddStringToObject(sc, "type", p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3 ? "llama3" : "none");
    if (p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3) {
        cJSON_AddNumberToObject(sc, "factor", p->rope_scaling.factor);
        cJSON_AddNumberToObject(sc, "low_freq_factor", p->rope_scaling.low_freq_factor);
        cJSON_AddNumberToObject(sc, "high_freq_factor", p->rope_scaling.high_freq_factor);
        cJSON_AddNumberToObject(sc, "original_max_positions", p->rope_scaling.original_max_positions);
    }
    cJSON_AddItemToObject(model, "rope_scaling", sc);
    cJSON_AddItemToObject(o, "model", model);
    cJSON_AddStringToObject(o, "dtype", ifk_dtype_name(p->dtype));
    cJSON_AddNumberToObject(o, "chunk_tokens", p->chunk_tokens);
    cJSON_AddStringToObject(o, "split", ifk_split_name(p->split));
    cJSON_AddNumberToObject(o, "compress", p->compress);
    cJSON_AddNumberToObject(o, "prefix_len", p->prefix_len);
    cJSON_AddNumberToObject(o, "n_documents", m->n_docs);
    cJSON_AddNumberToObject(o, "n_chunks", (double)m->n_chunks);
    cJSON_AddNumberToObject(o, "n_tokens", (double)m->n_tokens);
    cJSON *sh = cJSON_CreateArray();
    for (int i = 0; i < m->n_shards; i++) cJSON_AddItemToArray(sh, cJSON_CreateString(m->shards[i]));
    cJSON_AddItemToObject(o, "shards", sh);
    cJSON *docs = cJSON_CreateArray();
    for (int i = 0; i < m->n_docs; i++) cJSON_AddItemToArray(docs, doc_json_(&m->docs[i], 1));
    cJSON_AddItemToObject(o, "documents", docs);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory writing the manifest", m->dir);
    ifk_status st = ifk_write_atomic(m->dir, IFK_MANIFEST, text, strlen(text), "manifest");
    free(text);
    return st;
}

/* The model, dtype and layout fields of a parsed manifest into p. */
static ifk_status parse_params_(const cJSON *o, const char *path, ifk_store_params *p) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(model, "fingerprint"),
                *src = cJSON_GetObjectItemCaseSensitive(model, "source"),
                *sty = cJSON_GetObjectItemCaseSensitive(model, "rope_style"),
                *th = cJSON_GetObjectItemCaseSensitive(model, "rope_theta"),
                *sc = cJSON_GetObjectItemCaseSensitive(model, "rope_scaling"),
                *sct = cJSON_GetObjectItemCaseSensitive(sc, "type"),
                *dt = cJSON_GetObjectItemCaseSensitive(o, "dtype"), *sp = cJSON_GetObjectItemCaseSensitive(o, "split");
    if (!cJSON_IsString(fp) || strlen(fp->valuestring) != 16 || !cJSON_IsString(src) || !cJSON_IsString(sty) ||
        !cJSON_IsNumber(th) || !cJSON_IsString(sct) || !cJSON_IsString(dt) || !cJSON_IsString(sp))
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: model, dtype or split fields missing or of the wrong type", path);
    snprintf(p->fingerprint, sizeof p->fingerprint, "%s", fp->valuestring);
    snprintf(p->model_source, sizeof p->model_source, "%s", src->valuestring);
    /* absent in stores written before weights had a precision: those were all computed in f32 */
    const cJSON *wp = cJSON_GetObjectItemCaseSensitive(model, "weights");
    p->weights = IFK_W_F32;
    if (wp && (!cJSON_IsString(wp) || ifk_wdtype_parse(wp->valuestring, &p->weights) != 0))
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: model.weights is not f32, bf16 or f16", path);
    p->rope_theta = th->valuedouble;
    p->rope_style = !strcmp(sty->valuestring, "half") ? IFK_ROPE_HALF : IFK_ROPE_INTERLEAVED;
    p->rope_scaling.type = !strcmp(sct->valuestring, "llama3") ? IFK_ROPE_SCALING_LLAMA3 : IFK_ROPE_SCALING_NONE;
    if (p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(sc, "factor"),
                    *b = cJSON_GetObjectItemCaseSensitive(sc, "low_freq_factor"),
                    *c = cJSON_GetObjectItemCaseSensitive(sc, "high_freq_factor");
        long omp;
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !cJSON_IsNumber(c) ||
            !json_int_(sc, "original_max_positions", 1, INT32_MAX, &omp))
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: incomplete llama3 rope_scaling", path);
        p->rope_scaling.factor = a->valuedouble;
        p->rope_scaling.low_freq_factor = b->valuedouble;
        p->rope_scaling.high_freq_factor = c->valuedouble;
        p->rope_scaling.original_max_positions = (int)omp;
    }
    if (ifk_dtype_parse(dt->valuestring, &p->dtype) != IFK_OK)
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: unknown dtype \"%s\"", path, dt->valuestring);
    p->split = !strcmp(sp->valuestring, "paragraphs") ? IFK_SPLIT_PARAGRAPHS : IFK_SPLIT_TOKENS;
    const struct {
        const cJSON *obj;
        const char *key;
        long lo, hi;
        int *dst;
    } ints[] = {{model, "n_layers", 1, 1 << 20, &p->n_layers},   {model, "n_kv_heads", 1, 1 << 20, &p->n_kv_heads},
                {model, "head_dim", 2, 1 << 20, &p->head_dim},   {model, "vocab_size", 1, INT32_MAX, &p->vocab_size},
                {model, "bos_id", 0, INT32_MAX, &p->bos_id},     {o, "chunk_tokens", 1, 1 << 24, &p->chunk_tokens},
                {o, "compress", 0, 9, &p->compress},             {o, "prefix_len", 0, 1 << 20, &p->prefix_len}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        long v;
        if (!json_int_(ints[i].obj, ints[i].key, ints[i].lo, ints[i].hi, &v))
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" missing or out of range", path, ints[i].key);
        *ints[i].dst = (int)v;
    }
    return IFK_OK;
}

/* The shard list and the document records of a parsed manifest into m. */
static ifk_status parse_lists_(const cJSON *o, const char *path, ifk_manifest *m) {
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shards"), *docs = cJSON_GetObjectItemCaseSensitive(o, "documents");
    if (!cJSON_IsArray(sh) || !cJSON_IsArray(docs))
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: \"shards\" or \"documents\" is not an array", path);
    int ns = cJSON_GetArraySize(sh), nd = cJSON_GetArraySize(docs);
    m->shards = calloc((size_t)(ns > 0 ? ns : 1), sizeof(char *));
    m->docs = calloc((size_t)(nd > 0 ? nd : 1), sizeof(ifk_doc_rec));
    if (!m->shards || !m->docs) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
    m->cap_shards = ns > 0 ? ns : 1;
    m->cap_docs = nd > 0 ? nd : 1;
    for (int i = 0; i < ns; i++) {
        const cJSON *s = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsString(s) || strchr(s->valuestring, '/') || !s->valuestring[0])
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: shard %d is not a plain file name", path, i);
        if (!(m->shards[m->n_shards++] = strdup(s->valuestring))) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
    }
    IFK_CHECK(reserve_ids_(m, (size_t)nd));
    for (int i = 0; i < nd; i++) {
        char where[2100];
        snprintf(where, sizeof where, "%s: document %d", path, i);
        ifk_doc_rec r;
        IFK_CHECK(doc_from_json_(cJSON_GetArrayItem(docs, i), &r, 1, ns, where));
        if (ifk_manifest_find(m, r.id) >= 0) {
            ifk_status st = IFK_FAIL(IFK_ERR_FORMAT, "%s: document \"%s\" listed twice", path, r.id);
            ifk_doc_rec_free(&r);
            return st;
        }
        m->docs[m->n_docs++] = r; /* m owns it from here, also when indexing fails */
        IFK_CHECK(index_doc_(m, m->n_docs - 1));
        m->n_tokens += r.n_tokens;
        m->n_chunks += r.n_chunks;
    }
    return IFK_OK;
}

ifk_status ifk_manifest_load(ifk_manifest *m, const char *dir) {
    ifk_manifest_init(m, dir, NULL);
    char path[2048], *buf;
    snprintf(path, sizeof path, "%s/%s", dir, IFK_MANIFEST);
    IFK_CHECK(ifk_read_file(path, (size_t)1 << 40, &buf, NULL)); /* a missing manifest is IFK_ERR_IO */
    cJSON *o = cJSON_Parse(buf);
    free(buf);
    ifk_status st = IFK_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    long ver;
    if (!cJSON_IsObject(o) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "infoflow-kv-store")) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: not an infoflow store manifest (invalid JSON or wrong format)", path);
        goto done;
    }
    if (!json_int_(o, "format_version", 0, 1 << 20, &ver) || ver != IFK_STORE_FORMAT_VERSION) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: store format version %ld, this infoflow reads version %d (--force rebuilds)",
                      path, json_int_(o, "format_version", 0, 1 << 20, &ver) ? ver : -1L, IFK_STORE_FORMAT_VERSION);
        goto done;
    }
    IFK_CHECK_GOTO(st, parse_params_(o, path, &m->p), done);
    IFK_CHECK_GOTO(st, parse_lists_(o, path, m), done);
done:
    cJSON_Delete(o);
    if (st != IFK_OK) ifk_manifest_free(m);
    return st;
}
