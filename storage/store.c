/* store.c — HDF5 shards, the JSON manifest, verification and crash clean-up (store.h). */
#include "store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bm25.h"
#include "fault.h"

/* ---- small helpers ------------------------------------------------------------------------------ */

static void h5_init_(void) {
    static int done = 0;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported as ifk_status messages */
        done = 1;
    }
}

/* The innermost description on HDF5's error stack, e.g. "data error detected by Fletcher32 checksum". */
static herr_t walk_cb_(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    if (e->desc && e->desc[0]) snprintf((char *)data, 160, "%s", e->desc); /* the last one walked is the innermost */
    return 0;
}
static const char *h5_detail_(void) {
    static _Thread_local char buf[160];
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb_, buf);
    H5Eclear2(H5E_DEFAULT);
    return buf[0] ? buf : "unknown HDF5 error";
}

#define H5TRY(expr, ...)                                                          \
    do {                                                                          \
        if ((expr) < 0) {                                                         \
            st = IFK_FAIL(IFK_ERR_H5, __VA_ARGS__);                               \
            goto fail;                                                            \
        }                                                                         \
    } while (0)

static void close_id_(hid_t *id) {
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = H5I_INVALID_HID;
}

const char *ifk_dtype_name(ifk_dtype d) { return d == IFK_DT_F16 ? "f16" : d == IFK_DT_BF16 ? "bf16" : "f32"; }
size_t ifk_dtype_size(ifk_dtype d) { return d == IFK_DT_F32 ? 4 : 2; }

ifk_status ifk_dtype_parse(const char *s, ifk_dtype *d) {
    if (!strcmp(s, "f16")) *d = IFK_DT_F16;
    else if (!strcmp(s, "bf16")) *d = IFK_DT_BF16;
    else if (!strcmp(s, "f32")) *d = IFK_DT_F32;
    else return IFK_FAIL(IFK_ERR_ARG, "dtype '%s' is not one of f16, bf16, f32", s);
    return IFK_OK;
}

/* The file (and memory) type of a dtype: IEEE binary16 and bfloat16 are HDF5 float types of
 * 2 bytes with their bit fields, which h5py and h5dump read as floats. */
static hid_t h5_type_(ifk_dtype d) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0 || d == IFK_DT_F32) return t;
    int ok = d == IFK_DT_F16
                 ? H5Tset_fields(t, 15, 10, 5, 0, 10) >= 0 && H5Tset_precision(t, 16) >= 0 && H5Tset_ebias(t, 15) >= 0
                 : H5Tset_fields(t, 15, 7, 8, 0, 7) >= 0 && H5Tset_precision(t, 16) >= 0 && H5Tset_ebias(t, 127) >= 0;
    if (!ok || H5Tset_size(t, 2) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static const char *style_name_(ifk_rope_style s) { return s == IFK_ROPE_HALF ? "half" : "interleaved"; }
static const char *split_name_(ifk_split s) { return s == IFK_SPLIT_PARAGRAPHS ? "paragraphs" : "tokens"; }

static int fsync_path_(const char *path, int dir) {
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

ifk_status ifk_write_atomic(const char *dir, const char *name, const void *data, size_t len) {
    char path[2048], tmp[2100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return IFK_FAIL(IFK_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (ifk_fault("manifest.fsync") || fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return IFK_FAIL(IFK_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    }
    /* a crash (or a failed rename) between the complete temp file and the rename */
    if (ifk_fault("manifest.rename") || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return IFK_FAIL(IFK_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    fsync_path_(dir, 1);
    return IFK_OK;
}

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
                        "%s: store was built with another model (fingerprint %s, from %s); this model's is %s "
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
                        dir, ifk_dtype_name(h->dtype), h->chunk_tokens, split_name_(h->split), ifk_dtype_name(w->dtype),
                        w->chunk_tokens, split_name_(w->split));
    return IFK_OK;
}

/* ---- manifest ------------------------------------------------------------------------------------ */

void ifk_doc_rec_free(ifk_doc_rec *r) {
    free(r->id);
    free(r->chunk_len);
    r->id = NULL;
    r->chunk_len = NULL;
}

static uint64_t hash_str_(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static ifk_status rehash_(ifk_manifest *m, size_t want) {
    size_t hs = 16;
    while (hs < 2 * want) hs <<= 1;
    if (m->hash && hs - 1 <= m->hmask) return IFK_OK;
    int *h = malloc(sizeof(int) * hs);
    if (!h) return IFK_FAIL(IFK_ERR_OOM, "out of memory for the manifest index");
    memset(h, 0xff, sizeof(int) * hs);
    free(m->hash);
    m->hash = h;
    m->hmask = hs - 1;
    for (int d = 0; d < m->n_docs; d++) {
        size_t i = hash_str_(m->docs[d].id) & m->hmask;
        while (m->hash[i] >= 0) i = (i + 1) & m->hmask;
        m->hash[i] = d;
    }
    return IFK_OK;
}

int ifk_manifest_find(const ifk_manifest *m, const char *id) {
    if (!m->hash) return -1;
    for (size_t i = hash_str_(id) & m->hmask;; i = (i + 1) & m->hmask) {
        int d = m->hash[i];
        if (d < 0) return -1;
        if (!strcmp(m->docs[d].id, id)) return d;
    }
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
    free(m->hash);
    m->shards = NULL;
    m->docs = NULL;
    m->hash = NULL;
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
    char *name = strdup(shard);
    if (!name) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    int si = m->n_shards++;
    m->shards[si] = name;
    IFK_CHECK(rehash_(m, (size_t)(m->n_docs + n)));
    for (int i = 0; i < n; i++) {
        ifk_doc_rec *r = &m->docs[m->n_docs];
        *r = docs[i];
        r->shard = si;
        m->n_tokens += r->n_tokens;
        m->n_chunks += r->n_chunks;
        size_t j = hash_str_(r->id) & m->hmask;
        while (m->hash[j] >= 0) j = (j + 1) & m->hmask;
        m->hash[j] = m->n_docs++;
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
    cJSON_AddStringToObject(model, "rope_style", style_name_(p->rope_style));
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
    cJSON_AddStringToObject(o, "split", split_name_(p->split));
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
    ifk_status st = ifk_write_atomic(m->dir, IFK_MANIFEST, text, strlen(text));
    free(text);
    return st;
}

ifk_status ifk_manifest_load(ifk_manifest *m, const char *dir) {
    ifk_manifest_init(m, dir, NULL);
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, IFK_MANIFEST);
    FILE *f = fopen(path, "rb");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open the store manifest: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(buf);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot read the store manifest", path);
    }
    fclose(f);
    buf[len] = '\0';
    cJSON *o = cJSON_Parse(buf);
    free(buf);
    ifk_status st = IFK_OK;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    long ver, v;
    if (!cJSON_IsObject(o) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "infoflow-kv-store")) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: not an infoflow store manifest (invalid JSON or wrong format)", path);
        goto done;
    }
    if (!json_int_(o, "format_version", 0, 1 << 20, &ver) || ver != IFK_STORE_FORMAT_VERSION) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: store format version %ld, this infoflow reads version %d (--force rebuilds)",
                      path, json_int_(o, "format_version", 0, 1 << 20, &ver) ? ver : -1L, IFK_STORE_FORMAT_VERSION);
        goto done;
    }
    ifk_store_params *p = &m->p;
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(model, "fingerprint"),
                *src = cJSON_GetObjectItemCaseSensitive(model, "source"),
                *sty = cJSON_GetObjectItemCaseSensitive(model, "rope_style"),
                *th = cJSON_GetObjectItemCaseSensitive(model, "rope_theta"),
                *sc = cJSON_GetObjectItemCaseSensitive(model, "rope_scaling"),
                *sct = cJSON_GetObjectItemCaseSensitive(sc, "type"),
                *dt = cJSON_GetObjectItemCaseSensitive(o, "dtype"), *sp = cJSON_GetObjectItemCaseSensitive(o, "split");
    if (!cJSON_IsString(fp) || strlen(fp->valuestring) != 16 || !cJSON_IsString(src) || !cJSON_IsString(sty) ||
        !cJSON_IsNumber(th) || !cJSON_IsString(sct) || !cJSON_IsString(dt) || !cJSON_IsString(sp)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: model, dtype or split fields missing or of the wrong type", path);
        goto done;
    }
    snprintf(p->fingerprint, sizeof p->fingerprint, "%s", fp->valuestring);
    snprintf(p->model_source, sizeof p->model_source, "%s", src->valuestring);
    /* absent in stores written before weights had a precision: those were all computed in f32 */
    const cJSON *wp = cJSON_GetObjectItemCaseSensitive(model, "weights");
    p->weights = IFK_W_F32;
    if (wp && (!cJSON_IsString(wp) || ifk_wdtype_parse(wp->valuestring, &p->weights) != 0)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: model.weights is not f32, bf16 or f16", path);
        goto done;
    }
    p->rope_theta = th->valuedouble;
    p->rope_style = !strcmp(sty->valuestring, "half") ? IFK_ROPE_HALF : IFK_ROPE_INTERLEAVED;
    p->rope_scaling.type = !strcmp(sct->valuestring, "llama3") ? IFK_ROPE_SCALING_LLAMA3 : IFK_ROPE_SCALING_NONE;
    if (p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(sc, "factor"),
                    *b = cJSON_GetObjectItemCaseSensitive(sc, "low_freq_factor"),
                    *c = cJSON_GetObjectItemCaseSensitive(sc, "high_freq_factor");
        long omp;
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !cJSON_IsNumber(c) ||
            !json_int_(sc, "original_max_positions", 1, INT32_MAX, &omp)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: incomplete llama3 rope_scaling", path);
            goto done;
        }
        p->rope_scaling.factor = a->valuedouble;
        p->rope_scaling.low_freq_factor = b->valuedouble;
        p->rope_scaling.high_freq_factor = c->valuedouble;
        p->rope_scaling.original_max_positions = (int)omp;
    }
    if (ifk_dtype_parse(dt->valuestring, &p->dtype) != IFK_OK) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: unknown dtype \"%s\"", path, dt->valuestring);
        goto done;
    }
    p->split = !strcmp(sp->valuestring, "paragraphs") ? IFK_SPLIT_PARAGRAPHS : IFK_SPLIT_TOKENS;
#define INT_(obj, key, lo, hi, dst)                                                                     \
    if (!json_int_(obj, key, lo, hi, &v)) {                                                              \
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" missing or out of range", path, key);            \
        goto done;                                                                                       \
    }                                                                                                    \
    dst = (int)v;
    INT_(model, "n_layers", 1, 1 << 20, p->n_layers)
    INT_(model, "n_kv_heads", 1, 1 << 20, p->n_kv_heads)
    INT_(model, "head_dim", 2, 1 << 20, p->head_dim)
    INT_(model, "vocab_size", 1, INT32_MAX, p->vocab_size)
    INT_(model, "bos_id", 0, INT32_MAX, p->bos_id)
    INT_(o, "chunk_tokens", 1, 1 << 24, p->chunk_tokens)
    INT_(o, "compress", 0, 9, p->compress)
    INT_(o, "prefix_len", 0, 1 << 20, p->prefix_len)
#undef INT_
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shards"), *docs = cJSON_GetObjectItemCaseSensitive(o, "documents");
    if (!cJSON_IsArray(sh) || !cJSON_IsArray(docs)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"shards\" or \"documents\" is not an array", path);
        goto done;
    }
    int ns = cJSON_GetArraySize(sh), nd = cJSON_GetArraySize(docs);
    m->shards = calloc((size_t)(ns > 0 ? ns : 1), sizeof(char *));
    m->docs = calloc((size_t)(nd > 0 ? nd : 1), sizeof(ifk_doc_rec));
    if (!m->shards || !m->docs) {
        st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    m->cap_shards = ns > 0 ? ns : 1;
    m->cap_docs = nd > 0 ? nd : 1;
    for (int i = 0; i < ns; i++) {
        const cJSON *s = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsString(s) || strchr(s->valuestring, '/') || !s->valuestring[0]) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: shard %d is not a plain file name", path, i);
            goto done;
        }
        m->shards[m->n_shards++] = strdup(s->valuestring);
    }
    IFK_CHECK_GOTO(st, rehash_(m, (size_t)nd), done);
    for (int i = 0; i < nd; i++) {
        char where[2100];
        snprintf(where, sizeof where, "%s: document %d", path, i);
        ifk_doc_rec r;
        IFK_CHECK_GOTO(st, doc_from_json_(cJSON_GetArrayItem(docs, i), &r, 1, ns, where), done);
        if (ifk_manifest_find(m, r.id) >= 0) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: document \"%s\" listed twice", path, r.id);
            ifk_doc_rec_free(&r);
            goto done;
        }
        m->docs[m->n_docs] = r;
        m->n_tokens += r.n_tokens;
        m->n_chunks += r.n_chunks;
        size_t j = hash_str_(r.id) & m->hmask;
        while (m->hash[j] >= 0) j = (j + 1) & m->hmask;
        m->hash[j] = m->n_docs++;
    }
done:
    cJSON_Delete(o);
    if (st != IFK_OK) ifk_manifest_free(m);
    return st;
}

/* ---- attributes -------------------------------------------------------------------------------- */

static herr_t attr_write_(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *val) {
    hid_t sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    herr_t r = -1;
    if (sp >= 0 && (a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0) r = H5Awrite(a, mtype, val);
    close_id_(&a);
    close_id_(&sp);
    return r;
}
static herr_t attr_int_(hid_t obj, const char *name, long long v) {
    return attr_write_(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &v);
}
static herr_t attr_dbl_(hid_t obj, const char *name, double v) {
    return attr_write_(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}
static herr_t attr_str_(hid_t obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    herr_t r = -1;
    if (t >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0)
        r = attr_write_(obj, name, t, t, &v);
    if (t >= 0) H5Tclose(t);
    return r;
}
static int attr_read_int_(hid_t obj, const char *name, long long *v) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a);
    int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Aread(a, H5T_NATIVE_LLONG, v) >= 0;
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return ok;
}
/* Reads a string attribute into buf (variable- or fixed-length). */
static int attr_read_str_(hid_t obj, const char *name, char *buf, size_t cap) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), mt = H5I_INVALID_HID;
    int ok = 0;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            mt = H5Tcopy(H5T_C_S1);
            if (mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Tset_cset(mt, H5Tget_cset(t)) >= 0 &&
                H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(buf, cap, "%s", s);
                H5free_memory(s);
                ok = 1;
            }
        } else {
            size_t n = H5Tget_size(t);
            char *s = calloc(n + 1, 1);
            mt = H5Tcopy(H5T_C_S1);
            if (s && mt >= 0 && H5Tset_size(mt, n) >= 0 && H5Aread(a, mt, s) >= 0) {
                snprintf(buf, cap, "%s", s);
                ok = 1;
            }
            free(s);
        }
    }
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* ---- shard writer ---------------------------------------------------------------------------------- */

struct ifk_shard_writer {
    char dir[1024], name[256], tmp[1400];
    ifk_store_params p;
    hid_t file, ftype, doc;
    int seq, n_docs;
    /* the open document */
    char *id;
    int n_chunks, cap_chunks, n_tokens;
    int *chunk_len;
    uint16_t *conv; /* grow-only conversion buffer */
    size_t conv_cap;
};

static herr_t write_root_attrs_(hid_t f, const ifk_store_params *p, int rank) {
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    herr_t r = 0;
    r |= attr_str_(f, "format", "infoflow-kv-shard");
    r |= attr_int_(f, "format_version", IFK_STORE_FORMAT_VERSION);
    r |= attr_str_(f, "model_fingerprint", p->fingerprint);
    r |= attr_str_(f, "model_source", p->model_source);
    r |= attr_int_(f, "n_layers", p->n_layers);
    r |= attr_int_(f, "n_kv_heads", p->n_kv_heads);
    r |= attr_int_(f, "head_dim", p->head_dim);
    r |= attr_int_(f, "vocab_size", p->vocab_size);
    r |= attr_dbl_(f, "rope_theta", p->rope_theta);
    r |= attr_str_(f, "rope_style", style_name_(p->rope_style));
    r |= attr_str_(f, "rope_scaling", p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3 ? "llama3" : "none");
    if (p->rope_scaling.type == IFK_ROPE_SCALING_LLAMA3) {
        r |= attr_dbl_(f, "rope_scaling_factor", p->rope_scaling.factor);
        r |= attr_dbl_(f, "rope_scaling_low_freq_factor", p->rope_scaling.low_freq_factor);
        r |= attr_dbl_(f, "rope_scaling_high_freq_factor", p->rope_scaling.high_freq_factor);
        r |= attr_int_(f, "rope_scaling_original_max_positions", p->rope_scaling.original_max_positions);
    }
    r |= attr_str_(f, "dtype", ifk_dtype_name(p->dtype));
    r |= attr_int_(f, "chunk_tokens", p->chunk_tokens);
    r |= attr_str_(f, "split", split_name_(p->split));
    r |= attr_int_(f, "prefix_len", p->prefix_len);
    r |= attr_int_(f, "rank", rank);
    r |= attr_str_(f, "created", when);
    return r < 0 ? -1 : 0;
}

ifk_status ifk_shard_create(ifk_shard_writer **wp, const char *dir, const char *name, const ifk_store_params *p,
                            int rank) {
    h5_init_();
    *wp = NULL;
    ifk_status st = IFK_OK;
    ifk_shard_writer *w = ifk_calloc(1, sizeof *w, "shard writer");
    if (!w) return IFK_ERR_OOM;
    w->file = w->ftype = w->doc = H5I_INVALID_HID;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->tmp, sizeof w->tmp, "%s/%s.tmp", dir, name);
    w->p = *p;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* the 1.8 format's compact groups suit many small per-chunk groups; 1.10 tools read it */
    if (fapl >= 0) H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    close_id_(&fapl);
    H5TRY(w->file, "%s: cannot create shard: %s", w->tmp, h5_detail_());
    H5TRY(write_root_attrs_(w->file, p, rank), "%s: cannot write shard attributes: %s", w->tmp, h5_detail_());
    w->ftype = h5_type_(p->dtype);
    H5TRY(w->ftype, "%s: cannot make the %s type", w->tmp, ifk_dtype_name(p->dtype));
    *wp = w;
    return IFK_OK;
fail:
    ifk_shard_abort(&w);
    return st;
}

int ifk_shard_ndocs(const ifk_shard_writer *w) { return w->n_docs; }
const char *ifk_shard_name(const ifk_shard_writer *w) { return w->name; }

/* A chunked dataset of shape dims with Fletcher32 (and shuffle + deflate when compress). */
static hid_t create_ds_(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims, const hsize_t *chunk,
                        const hsize_t *maxdims, int compress) {
    hid_t sp = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = H5I_INVALID_HID;
    if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        (!compress || (H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, (unsigned)compress) >= 0)) &&
        H5Pset_fletcher32(dcpl) >= 0)
        ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    close_id_(&dcpl);
    close_id_(&sp);
    return ds;
}

ifk_status ifk_shard_begin_doc(ifk_shard_writer *w, const char *id, const char *text, size_t text_len) {
    ifk_status st = IFK_OK;
    char g[24];
    snprintf(g, sizeof g, "/d%06d", w->seq);
    hid_t ds = H5I_INVALID_HID;
    w->doc = H5Gcreate2(w->file, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5TRY(w->doc, "%s: cannot create group %s: %s", w->tmp, g, h5_detail_());
    H5TRY(attr_str_(w->doc, "id", id), "%s: %s: cannot write the id: %s", w->tmp, g, h5_detail_());
    hsize_t dims[1] = {text_len}, chunk[1] = {text_len < 1 ? 1 : text_len > (1 << 20) ? (1 << 20) : text_len},
            maxd[1] = {H5S_UNLIMITED};
    ds = create_ds_(w->doc, "text", H5T_STD_U8LE, 1, dims, chunk, maxd, w->p.compress);
    H5TRY(ds, "%s: %s: cannot create the text dataset: %s", w->tmp, g, h5_detail_());
    if (text_len) H5TRY(H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text), "%s: %s: cannot write the text: %s", w->tmp, g, h5_detail_());
    close_id_(&ds);
    free(w->id);
    w->id = strdup(id);
    w->n_chunks = w->n_tokens = 0;
    if (!w->id) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    return IFK_OK;
fail:
    close_id_(&ds);
    return st;
}

ifk_status ifk_shard_put_chunk(ifk_shard_writer *w, const int *tokens, int n, const float *k, const float *v) {
    ifk_status st = IFK_OK;
    const ifk_store_params *p = &w->p;
    char g[16];
    snprintf(g, sizeof g, "c%04d", w->n_chunks);
    hid_t cg = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    const size_t nel = (size_t)p->n_layers * p->n_kv_heads * n * p->head_dim;
    if (p->dtype != IFK_DT_F32 && nel > w->conv_cap) {
        uint16_t *c = realloc(w->conv, nel * sizeof(uint16_t));
        if (!c) return IFK_FAIL(IFK_ERR_OOM, "out of memory converting a chunk");
        w->conv = c;
        w->conv_cap = nel;
    }
    cg = H5Gcreate2(w->doc, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5TRY(cg, "%s: cannot create chunk group %s: %s", w->tmp, g, h5_detail_());
    H5TRY(attr_str_(cg, "doc_id", w->id) | attr_int_(cg, "chunk_index", w->n_chunks) | attr_int_(cg, "n_tokens", n) |
              attr_int_(cg, "rope_start", p->prefix_len) | attr_int_(cg, "prefix_len", p->prefix_len),
          "%s: %s: cannot write chunk attributes: %s", w->tmp, g, h5_detail_());
    hsize_t td[1] = {(hsize_t)n};
    ds = create_ds_(cg, "tokens", H5T_STD_I32LE, 1, td, td, NULL, 0);
    H5TRY(ds, "%s: %s: cannot create tokens: %s", w->tmp, g, h5_detail_());
    H5TRY(H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens), "%s: %s: cannot write tokens: %s",
          w->tmp, g, h5_detail_());
    close_id_(&ds);
    hsize_t dims[4] = {(hsize_t)p->n_layers, (hsize_t)p->n_kv_heads, (hsize_t)n, (hsize_t)p->head_dim};
    hsize_t chunk[4] = {1, 1, (hsize_t)n, (hsize_t)p->head_dim}; /* one (layer, KV head): a hyperslab per rank */
    const float *src[2] = {k, v};
    const char *names[2] = {"k", "v"};
    for (int i = 0; i < 2; i++) {
        const void *buf = src[i];
        if (p->dtype == IFK_DT_F16) ifk_f32_to_f16(w->conv, src[i], nel), buf = w->conv;
        else if (p->dtype == IFK_DT_BF16) ifk_f32_to_bf16(w->conv, src[i], nel), buf = w->conv;
        ds = create_ds_(cg, names[i], w->ftype, 4, dims, chunk, NULL, p->compress);
        H5TRY(ds, "%s: %s: cannot create %s: %s", w->tmp, g, names[i], h5_detail_());
        if (ifk_fault("shard.write")) H5TRY(-1, "%s: %s: writing %s failed (injected fault)", w->tmp, g, names[i]);
        H5TRY(H5Dwrite(ds, p->dtype == IFK_DT_F32 ? H5T_NATIVE_FLOAT : w->ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf),
              "%s: %s: cannot write %s: %s", w->tmp, g, names[i], h5_detail_());
        close_id_(&ds);
        if (i == 0) ifk_fault("shard.chunk"); /* a crash with K written and V not */
    }
    close_id_(&cg);
    if (w->n_chunks == w->cap_chunks) {
        w->cap_chunks = w->cap_chunks ? 2 * w->cap_chunks : 16;
        int *cl = realloc(w->chunk_len, sizeof(int) * w->cap_chunks);
        if (!cl) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
        w->chunk_len = cl;
    }
    w->chunk_len[w->n_chunks++] = n;
    w->n_tokens += n;
    return IFK_OK;
fail:
    close_id_(&ds);
    close_id_(&cg);
    return st;
}

ifk_status ifk_shard_end_doc(ifk_shard_writer *w, ifk_doc_rec *rec) {
    ifk_status st = IFK_OK;
    memset(rec, 0, sizeof *rec);
    H5TRY(attr_int_(w->doc, "n_chunks", w->n_chunks) | attr_int_(w->doc, "n_tokens", w->n_tokens),
          "%s: cannot write document attributes: %s", w->tmp, h5_detail_());
    close_id_(&w->doc);
    rec->id = w->id;
    w->id = NULL;
    rec->n_chunks = w->n_chunks;
    rec->n_tokens = w->n_tokens;
    rec->chunk_len = malloc(sizeof(int) * (size_t)(w->n_chunks > 0 ? w->n_chunks : 1));
    if (!rec->chunk_len) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    memcpy(rec->chunk_len, w->chunk_len, sizeof(int) * (size_t)w->n_chunks);
    snprintf(rec->group, sizeof rec->group, "/d%06d", w->seq++);
    w->n_docs++;
    return IFK_OK;
fail:
    return st;
}

static void writer_free_(ifk_shard_writer *w) {
    free(w->id);
    free(w->chunk_len);
    free(w->conv);
    free(w);
}

ifk_status ifk_shard_commit(ifk_shard_writer **wp) {
    ifk_shard_writer *w = *wp;
    *wp = NULL;
    ifk_status st = IFK_OK;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", w->dir, w->name);
    close_id_(&w->doc);
    close_id_(&w->ftype);
    herr_t r = H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (r < 0) {
        st = IFK_FAIL(IFK_ERR_H5, "%s: closing the shard failed: %s", w->tmp, h5_detail_());
        unlink(w->tmp);
    } else if (ifk_fault("shard.fsync") || fsync_path_(w->tmp, 0) != 0) {
        st = IFK_FAIL(IFK_ERR_IO, "%s: fsync failed: %s", w->tmp, strerror(errno));
        unlink(w->tmp);
    } else {
        /* a crash (or a failed rename) with the shard complete but not yet renamed */
        if (ifk_fault("shard.rename") || rename(w->tmp, path) != 0) {
            st = IFK_FAIL(IFK_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
            unlink(w->tmp);
        } else {
            fsync_path_(w->dir, 1);
        }
    }
    writer_free_(w);
    return st;
}

void ifk_shard_abort(ifk_shard_writer **wp) {
    ifk_shard_writer *w = *wp;
    if (!w) return;
    close_id_(&w->doc);
    close_id_(&w->ftype);
    close_id_(&w->file);
    unlink(w->tmp);
    writer_free_(w);
    *wp = NULL;
}

/* ---- reader ------------------------------------------------------------------------------------- */

struct ifk_store {
    ifk_manifest m;
    hid_t *files; /* (n_shards) opened on first use */
    const uint8_t **maps; /* (n_shards) read-only mappings for the direct chunk path, on first use */
    size_t *map_len;
    hid_t mtype;
    uint16_t *conv;
    size_t conv_cap;
    double *head_bytes; /* (Hkv) read accounting */
};

double ifk_store_head_bytes(const ifk_store *s, int h) {
    return h >= 0 && h < s->m.p.n_kv_heads ? s->head_bytes[h] : 0.0;
}

ifk_status ifk_store_open(ifk_store **sp, const char *dir) {
    h5_init_();
    *sp = NULL;
    ifk_store *s = ifk_calloc(1, sizeof *s, "store");
    if (!s) return IFK_ERR_OOM;
    ifk_status st = ifk_manifest_load(&s->m, dir);
    if (st != IFK_OK) {
        free(s);
        return ifk_trace_at(st, __FILE__, __LINE__, __func__);
    }
    s->files = malloc(sizeof(hid_t) * (size_t)(s->m.n_shards > 0 ? s->m.n_shards : 1));
    s->maps = calloc((size_t)(s->m.n_shards > 0 ? s->m.n_shards : 1), sizeof *s->maps);
    s->map_len = calloc((size_t)(s->m.n_shards > 0 ? s->m.n_shards : 1), sizeof *s->map_len);
    s->mtype = h5_type_(s->m.p.dtype);
    s->head_bytes = calloc((size_t)s->m.p.n_kv_heads, sizeof(double));
    if (!s->files || !s->maps || !s->map_len || !s->head_bytes || s->mtype < 0) {
        ifk_store_close(&s);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory opening %s", dir);
    }
    for (int i = 0; i < s->m.n_shards; i++) s->files[i] = H5I_INVALID_HID;
    *sp = s;
    return IFK_OK;
}

const ifk_manifest *ifk_store_manifest(const ifk_store *s) { return &s->m; }

void ifk_store_close(ifk_store **sp) {
    ifk_store *s = *sp;
    if (!s) return;
    if (s->files)
        for (int i = 0; i < s->m.n_shards; i++) close_id_(&s->files[i]);
    if (s->maps)
        for (int i = 0; i < s->m.n_shards; i++)
            if (s->maps[i]) munmap((void *)s->maps[i], s->map_len[i]);
    close_id_(&s->mtype);
    free(s->files);
    free(s->maps);
    free(s->map_len);
    free(s->head_bytes);
    free(s->conv);
    ifk_manifest_free(&s->m);
    free(s);
    *sp = NULL;
}

/* Opens shard i and checks that its attributes describe this store. */
static ifk_status shard_file_(ifk_store *s, int i, hid_t *f) {
    if (s->files[i] >= 0) {
        *f = s->files[i];
        return IFK_OK;
    }
    char path[2048], fp[64] = "", dt[16] = "";
    snprintf(path, sizeof path, "%s/%s", s->m.dir, s->m.shards[i]);
    struct stat stt;
    if (stat(path, &stt) != 0) return IFK_FAIL(IFK_ERR_IO, "%s: shard is missing: %s", path, strerror(errno));
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (h < 0) return IFK_FAIL(IFK_ERR_H5, "%s: cannot open shard (truncated or not HDF5): %s", path, h5_detail_());
    long long ver = 0, nl = 0, nh = 0, hd = 0;
    if (!attr_read_int_(h, "format_version", &ver) || ver != IFK_STORE_FORMAT_VERSION ||
        !attr_read_str_(h, "model_fingerprint", fp, sizeof fp) || !attr_read_str_(h, "dtype", dt, sizeof dt) ||
        !attr_read_int_(h, "n_layers", &nl) || !attr_read_int_(h, "n_kv_heads", &nh) ||
        !attr_read_int_(h, "head_dim", &hd)) {
        H5Fclose(h);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: shard attributes missing or of another format version", path);
    }
    if (strcmp(fp, s->m.p.fingerprint) || strcmp(dt, ifk_dtype_name(s->m.p.dtype)) || nl != s->m.p.n_layers ||
        nh != s->m.p.n_kv_heads || hd != s->m.p.head_dim) {
        H5Fclose(h);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: shard was written for another model or dtype (fingerprint %s, %s) than "
                        "the manifest's (%s, %s)", path, fp, dt, s->m.p.fingerprint, ifk_dtype_name(s->m.p.dtype));
    }
    s->files[i] = *f = h;
    return IFK_OK;
}

/* Checks a dataset's rank, dims and element class/size. */
static int ds_shape_ok_(hid_t ds, int rank, const hsize_t *want, H5T_class_t cls, size_t size) {
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    hsize_t d[8];
    int ok = sp >= 0 && t >= 0 && H5Sget_simple_extent_ndims(sp) == rank && H5Sget_simple_extent_dims(sp, d, NULL) == rank &&
             H5Tget_class(t) == cls && H5Tget_size(t) == size;
    for (int i = 0; ok && i < rank; i++) ok = d[i] == want[i];
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return ok;
}

/* The shard mapped read-only (once), for reading chunks without HDF5's copies. */
static const uint8_t *shard_map_(ifk_store *s, int i, size_t *len) {
    if (!s->maps[i]) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", s->m.dir, s->m.shards[i]);
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
            if (fd >= 0) close(fd);
            return NULL;
        }
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) return NULL;
        s->maps[i] = p;
        s->map_len[i] = (size_t)st.st_size;
    }
    *len = s->map_len[i];
    return s->maps[i];
}

/* Reads heads [h0, h0+nh) of every layer of a k or v dataset straight from the mapped file: each
 * (layer, head) is one HDF5 chunk of n*Dh elements followed by its Fletcher32 (little-endian), as
 * the writer lays it out. Verifies the checksum and converts to f32. Returns 1 if done, 0 if the
 * dataset is not laid out that way (compressed, foreign) so the caller reads it through HDF5, -1
 * on a checksum or bounds failure (message set). */
static int read_direct_(ifk_store *s, int shard, hid_t ds, int n, int h0, int nh, float *out, const char *where,
                        const char *name) {
    const ifk_store_params *p = &s->m.p;
    hid_t dcpl = H5Dget_create_plist(ds);
    unsigned flags;
    size_t nelm = 0;
    unsigned cd[4];
    int only_fletcher = dcpl >= 0 && H5Pget_nfilters(dcpl) == 1 &&
                        H5Pget_filter2(dcpl, 0, &flags, &nelm, cd, 0, NULL, NULL) == H5Z_FILTER_FLETCHER32;
    if (dcpl >= 0) H5Pclose(dcpl);
    size_t mlen;
    const uint8_t *map = only_fletcher ? shard_map_(s, shard, &mlen) : NULL;
    if (!map) return 0;
    const size_t es = ifk_dtype_size(p->dtype), row = (size_t)n * p->head_dim, bytes = row * es;
    const int nc = p->n_layers * nh;
    haddr_t addrs[4096], *addr = nc <= 4096 ? addrs : malloc(sizeof(haddr_t) * (size_t)nc);
    if (!addr) return 0;
    int ret = 1;
    /* HDF5 is not thread-safe: look every chunk up first, then check and convert them in parallel */
    for (int i = 0; i < nc && ret == 1; i++) {
        int l = i / nh, h = h0 + i % nh;
        hsize_t off[4] = {(hsize_t)l, (hsize_t)h, 0, 0}, size = 0;
        unsigned mask = 0;
        addr[i] = HADDR_UNDEF;
        if (H5Dget_chunk_info_by_coord(ds, off, &mask, &addr[i], &size) < 0 || addr[i] == HADDR_UNDEF) {
            H5Eclear2(H5E_DEFAULT);
            ret = 0;
        } else if (mask != 0 || size != bytes + 4) {
            ret = 0;
        } else if (addr[i] > mlen || size > mlen - addr[i]) {
            IFK_FAIL(IFK_ERR_FORMAT, "%s: %s (layer %d, head %d) lies past the end of the shard (truncated?)", where,
                     name, l, h);
            ret = -1;
        }
    }
    int bad = -1;
    if (ret == 1) {
#pragma omp parallel for schedule(static) if (nc > 1 && bytes * nc > (1u << 18))
        for (int i = 0; i < nc; i++) {
            const uint8_t *src = map + addr[i];
            uint32_t stored = (uint32_t)src[bytes] | (uint32_t)src[bytes + 1] << 8 | (uint32_t)src[bytes + 2] << 16 |
                              (uint32_t)src[bytes + 3] << 24;
            if (ifk_fletcher32(src, bytes) != stored) {
#pragma omp critical
                bad = bad < 0 || i < bad ? i : bad;
                continue;
            }
            float *dst = out + (size_t)i * row;
            if (p->dtype == IFK_DT_F16) ifk_f16_to_f32(dst, src, row);
            else if (p->dtype == IFK_DT_BF16) ifk_bf16_to_f32(dst, src, row);
            else memcpy(dst, src, bytes);
        }
    }
    if (bad >= 0) {
        IFK_FAIL(IFK_ERR_H5, "%s: %s (layer %d, head %d) fails its Fletcher32 checksum", where, name, bad / nh,
                 h0 + bad % nh);
        ret = -1;
    }
    if (addr != addrs) free(addr);
    return ret;
}

ifk_status ifk_store_read_chunk(ifk_store *s, int d, int c, int h0, int nh, float *k, float *v, int *tokens) {
    const ifk_manifest *m = &s->m;
    const ifk_store_params *p = &m->p;
    IFK_CHECK_ARG(d >= 0 && d < m->n_docs && c >= 0 && c < m->docs[d].n_chunks, "no chunk %d of document %d", c, d);
    IFK_CHECK_ARG(h0 >= 0 && nh > 0 && h0 + nh <= p->n_kv_heads, "KV heads [%d, %d) outside 0..%d", h0, h0 + nh,
                  p->n_kv_heads);
    const ifk_doc_rec *r = &m->docs[d];
    const int n = r->chunk_len[c];
    hid_t f;
    IFK_CHECK(shard_file_(s, r->shard, &f));
    ifk_status st = IFK_OK;
    char g[48], where[2400], id[512] = "";
    snprintf(g, sizeof g, "%s/c%04d", r->group, c);
    snprintf(where, sizeof where, "%s/%s: document \"%s\" chunk %d (%s)", m->dir, m->shards[r->shard], r->id, c, g);
    hid_t cg = H5I_INVALID_HID, ds = H5I_INVALID_HID, fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    cg = H5Gopen2(f, g, H5P_DEFAULT);
    H5TRY(cg, "%s: group missing: %s", where, h5_detail_());
    long long an = -1, ac = -1;
    if (!attr_read_int_(cg, "n_tokens", &an) || !attr_read_int_(cg, "chunk_index", &ac) ||
        !attr_read_str_(cg, "doc_id", id, sizeof id) || an != n || ac != c || strcmp(id, r->id)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: attributes disagree with the manifest (n_tokens %lld, chunk_index %lld, "
                      "doc_id \"%s\")", where, an, ac, id);
        goto fail;
    }
    if (tokens) {
        ds = H5Dopen2(cg, "tokens", H5P_DEFAULT);
        hsize_t td[1] = {(hsize_t)n};
        if (ds < 0 || !ds_shape_ok_(ds, 1, td, H5T_INTEGER, 4)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tokens missing or not int32[%d]", where, n);
            goto fail;
        }
        H5TRY(H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens), "%s: tokens unreadable: %s", where,
              h5_detail_());
        close_id_(&ds);
    }
    const size_t es = ifk_dtype_size(p->dtype), nel = (size_t)p->n_layers * nh * n * p->head_dim;
    if (p->dtype != IFK_DT_F32 && nel > s->conv_cap) {
        uint16_t *cv = realloc(s->conv, nel * sizeof(uint16_t));
        if (!cv) {
            st = IFK_FAIL(IFK_ERR_OOM, "out of memory reading %s", where);
            goto fail;
        }
        s->conv = cv;
        s->conv_cap = nel;
    }
    hsize_t dims[4] = {(hsize_t)p->n_layers, (hsize_t)p->n_kv_heads, (hsize_t)n, (hsize_t)p->head_dim};
    hsize_t start[4] = {0, (hsize_t)h0, 0, 0}, count[4] = {(hsize_t)p->n_layers, (hsize_t)nh, (hsize_t)n, (hsize_t)p->head_dim};
    float *out[2] = {k, v};
    const char *names[2] = {"K", "V"}, *dsn[2] = {"k", "v"};
    for (int i = 0; i < 2; i++) {
        ds = H5Dopen2(cg, dsn[i], H5P_DEFAULT);
        if (ds < 0 || !ds_shape_ok_(ds, 4, dims, H5T_FLOAT, es)) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: %s missing or not %s[%d][%d][%d][%d]", where, names[i],
                          ifk_dtype_name(p->dtype), p->n_layers, p->n_kv_heads, n, p->head_dim);
            goto fail;
        }
        int direct = read_direct_(s, r->shard, ds, n, h0, nh, out[i], where, names[i]);
        if (direct < 0) {
            st = IFK_ERR_H5;
            goto fail;
        }
        if (direct) {
            close_id_(&ds);
            continue;
        }
        fsp = H5Dget_space(ds);
        msp = H5Screate_simple(4, count, NULL);
        H5TRY(fsp < 0 || msp < 0 ? -1 : H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL),
              "%s: cannot select heads: %s", where, h5_detail_());
        void *buf = p->dtype == IFK_DT_F32 ? (void *)out[i] : (void *)s->conv;
        H5TRY(H5Dread(ds, p->dtype == IFK_DT_F32 ? H5T_NATIVE_FLOAT : s->mtype, msp, fsp, H5P_DEFAULT, buf),
              "%s: %s unreadable: %s", where, names[i], h5_detail_());
        if (p->dtype == IFK_DT_F16) ifk_f16_to_f32(out[i], s->conv, nel);
        else if (p->dtype == IFK_DT_BF16) ifk_bf16_to_f32(out[i], s->conv, nel);
        close_id_(&msp);
        close_id_(&fsp);
        close_id_(&ds);
    }
    close_id_(&cg);
    for (int h = h0; h < h0 + nh; h++) s->head_bytes[h] += 2.0 * p->n_layers * n * p->head_dim * (double)es;
    return IFK_OK;
fail:
    close_id_(&msp);
    close_id_(&fsp);
    close_id_(&ds);
    close_id_(&cg);
    return st;
}

ifk_status ifk_store_read_tokens(ifk_store *s, int d, int c, int *tokens) {
    const ifk_manifest *m = &s->m;
    IFK_CHECK_ARG(d >= 0 && d < m->n_docs && c >= 0 && c < m->docs[d].n_chunks, "no chunk %d of document %d", c, d);
    const ifk_doc_rec *r = &m->docs[d];
    hid_t f;
    IFK_CHECK(shard_file_(s, r->shard, &f));
    ifk_status st = IFK_OK;
    char g[48];
    snprintf(g, sizeof g, "%s/c%04d/tokens", r->group, c);
    hid_t ds = H5Dopen2(f, g, H5P_DEFAULT);
    hsize_t td[1] = {(hsize_t)r->chunk_len[c]};
    if (ds < 0 || !ds_shape_ok_(ds, 1, td, H5T_INTEGER, 4)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: document \"%s\" chunk %d: tokens missing or not int32[%d]", m->dir,
                      m->shards[r->shard], r->id, c, r->chunk_len[c]);
        goto fail;
    }
    H5TRY(H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens), "%s/%s: document \"%s\" chunk %d: "
          "tokens unreadable: %s", m->dir, m->shards[r->shard], r->id, c, h5_detail_());
fail:
    close_id_(&ds);
    return st;
}

ifk_status ifk_store_read_text(ifk_store *s, int d, char **text, size_t *len) {
    const ifk_manifest *m = &s->m;
    IFK_CHECK_ARG(d >= 0 && d < m->n_docs, "no document %d", d);
    const ifk_doc_rec *r = &m->docs[d];
    hid_t f;
    IFK_CHECK(shard_file_(s, r->shard, &f));
    ifk_status st = IFK_OK;
    char where[2400], id[512] = "";
    snprintf(where, sizeof where, "%s/%s: document \"%s\" (%s)", m->dir, m->shards[r->shard], r->id, r->group);
    hid_t g = H5I_INVALID_HID, ds = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    *text = NULL;
    g = H5Gopen2(f, r->group, H5P_DEFAULT);
    H5TRY(g, "%s: group missing: %s", where, h5_detail_());
    if (!attr_read_str_(g, "id", id, sizeof id) || strcmp(id, r->id)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: its id attribute is \"%s\"", where, id);
        goto fail;
    }
    ds = H5Dopen2(g, "text", H5P_DEFAULT);
    H5TRY(ds, "%s: text missing: %s", where, h5_detail_());
    sp = H5Dget_space(ds);
    hsize_t n = 0;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &n, NULL) != 1) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: text is not one-dimensional", where);
        goto fail;
    }
    *text = malloc(n + 1);
    if (!*text) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory reading %s", where);
        goto fail;
    }
    if (n) H5TRY(H5Dread(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, *text), "%s: text unreadable: %s", where, h5_detail_());
    (*text)[n] = '\0';
    *len = n;
    close_id_(&sp);
    close_id_(&ds);
    close_id_(&g);
    return IFK_OK;
fail:
    free(*text);
    *text = NULL;
    close_id_(&sp);
    close_id_(&ds);
    close_id_(&g);
    return st;
}

/* ---- maintenance --------------------------------------------------------------------------------- */

ifk_status ifk_store_verify(const char *dir, void (*report)(const char *, void *), void *ctx, int *bad) {
    *bad = 0;
    ifk_store *s;
    IFK_CHECK(ifk_store_open(&s, dir));
    const ifk_manifest *m = &s->m;
    const ifk_store_params *p = &m->p;
    int maxn = 1;
    for (int d = 0; d < m->n_docs; d++)
        for (int c = 0; c < m->docs[d].n_chunks; c++) maxn = m->docs[d].chunk_len[c] > maxn ? m->docs[d].chunk_len[c] : maxn;
    size_t nel = (size_t)p->n_layers * p->n_kv_heads * maxn * p->head_dim;
    float *k = malloc(sizeof(float) * nel), *v = malloc(sizeof(float) * nel);
    int *tok = malloc(sizeof(int) * (size_t)maxn);
    char *shard_bad = calloc((size_t)(m->n_shards > 0 ? m->n_shards : 1), 1);
    if (!k || !v || !tok || !shard_bad) {
        free(k), free(v), free(tok), free(shard_bad);
        ifk_store_close(&s);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory verifying %s", dir);
    }
    for (int d = 0; d < m->n_docs; d++) {
        const ifk_doc_rec *r = &m->docs[d];
        if (shard_bad[r->shard]) {
            (*bad)++;
            continue;
        }
        hid_t f;
        if (shard_file_(s, r->shard, &f) != IFK_OK) {
            shard_bad[r->shard] = 1;
            report(ifk_errmsg(), ctx);
            (*bad)++;
            continue;
        }
        char *text;
        size_t tl;
        if (ifk_store_read_text(s, d, &text, &tl) != IFK_OK) report(ifk_errmsg(), ctx), (*bad)++;
        free(text);
        for (int c = 0; c < r->n_chunks; c++) {
            if (ifk_store_read_chunk(s, d, c, 0, p->n_kv_heads, k, v, tok) != IFK_OK) {
                report(ifk_errmsg(), ctx);
                (*bad)++;
                continue;
            }
            for (int i = 0; i < r->chunk_len[c]; i++)
                if (tok[i] < 0 || tok[i] >= p->vocab_size) {
                    char msg[2600];
                    snprintf(msg, sizeof msg, "%s/%s: document \"%s\" chunk %d: token %d out of the vocabulary",
                             m->dir, m->shards[r->shard], r->id, c, tok[i]);
                    report(msg, ctx);
                    (*bad)++;
                    break;
                }
        }
    }
    /* the index, when present, must load and cover the manifest's documents */
    char ipath[2048];
    snprintf(ipath, sizeof ipath, "%s/%s", dir, IFK_INDEX);
    struct stat stt;
    if (stat(ipath, &stt) == 0) {
        ifk_bm25 *ix = NULL;
        if (ifk_bm25_load(&ix, ipath) != IFK_OK) {
            report(ifk_errmsg(), ctx);
            (*bad)++;
        }
        /* an index that covers fewer documents than the manifest is stale (an interrupted run; the
         * next cache run rebuilds it) and one that covers more was written by a running job after
         * we read the manifest: neither is damage (infoflow inspect shows the count) */
        ifk_bm25_free(&ix);
    }
    free(k), free(v), free(tok), free(shard_bad);
    ifk_store_close(&s);
    return IFK_OK;
}

static int is_store_file_(const char *n) {
    size_t l = strlen(n);
    return (!strncmp(n, "shard-", 6) && ((l > 3 && !strcmp(n + l - 3, ".h5")) || (l > 7 && !strcmp(n + l - 7, ".h5.tmp")))) ||
           !strcmp(n, IFK_MANIFEST ".tmp") || !strcmp(n, IFK_INDEX ".tmp");
}

ifk_status ifk_store_clean(const ifk_manifest *m, int *removed) {
    *removed = 0;
    DIR *d = opendir(m->dir);
    if (!d) return IFK_FAIL(IFK_ERR_IO, "%s: cannot list the store: %s", m->dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_store_file_(e->d_name)) continue;
        int listed = 0;
        for (int i = 0; i < m->n_shards && !listed; i++) listed = !strcmp(m->shards[i], e->d_name);
        if (listed) continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", m->dir, e->d_name);
        if (unlink(path) == 0) (*removed)++;
    }
    closedir(d);
    return IFK_OK;
}

ifk_status ifk_store_wipe(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return IFK_FAIL(IFK_ERR_IO, "%s: cannot list the store: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_store_file_(e->d_name) && strcmp(e->d_name, IFK_MANIFEST) && strcmp(e->d_name, IFK_INDEX)) continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return IFK_OK;
}

ifk_status ifk_store_lock(const char *dir, int *fdp) {
    char path[2048];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create the store lock: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char who[64] = "";
        ssize_t n = pread(fd, who, sizeof who - 1, 0);
        who[n > 0 ? n : 0] = '\0';
        char *nl = strchr(who, '\n');
        if (nl) *nl = '\0';
        close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: store is in use by another cache job (%s); wait for it or stop it", dir,
                        who[0] ? who : "pid unknown");
    }
    char who[64];
    int n = snprintf(who, sizeof who, "pid %d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, who, (size_t)n, 0) < 0) { /* informative only */ }
    *fdp = fd;
    return IFK_OK;
}

void ifk_store_unlock(int fd) {
    if (fd >= 0) close(fd);
}
