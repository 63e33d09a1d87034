/* manifest.c — the store manifest, its parameters and the document records (manifest.h). */
#include "manifest.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "fault.h"
#include "fletcher32.h"
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
    const char *rebuild = layout ? "use --force to rebuild the store, or " : ""; /* --force is cache's option */
    if (h->weights != w->weights) /* K/V of bf16 weights are not those of f32 weights: another model */
        return IFK_FAIL(IFK_ERR_ARG,
                        "%s: store's K/V were computed with %s weights; this model holds %s weights (load it with "
                        "--weights %s, or %suse another --store)",
                        dir, ifk_wdtype_name(h->weights), ifk_wdtype_name(w->weights), ifk_wdtype_name(h->weights),
                        rebuild);
    if (strcmp(h->fingerprint, w->fingerprint))
        return IFK_FAIL(IFK_ERR_ARG,
                        "%s: store was built with another model or tokenizer (fingerprint %s, from %s); this model's "
                        "and tokenizer's is %s (%suse another --store)",
                        dir, h->fingerprint, h->model_source, w->fingerprint, rebuild);
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

/* manifest.json of format version 2: the parameters of the store. */
static char *params_json_(const ifk_store_params *p) {
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
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
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


/* ---- catalog.sqlite ------------------------------------------------------------------------------ */

#define CHECKPOINT_EVERY_ 16 /* commits between the writer's checkpoints of the WAL */

static const char *schema_ =
    "CREATE TABLE shards(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, first_doc INTEGER NOT NULL,"
    " n_docs INTEGER NOT NULL, tokens_end INTEGER NOT NULL, chunks_end INTEGER NOT NULL, checksum INTEGER NOT NULL);"
    "CREATE TABLE docs(id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL UNIQUE, shard INTEGER NOT NULL,"
    " grp TEXT NOT NULL, n_tokens INTEGER NOT NULL, chunks BLOB NOT NULL);"
    "CREATE TABLE segments(file TEXT PRIMARY KEY, first_doc INTEGER NOT NULL, n_docs INTEGER NOT NULL);";

static ifk_status sql_fail_(const ifk_manifest *m, const char *what) {
    return IFK_FAIL(IFK_ERR_IO, "%s/%s: %s: %s", m->dir, IFK_CATALOG, what, m->db ? sqlite3_errmsg(m->db) : "cannot open");
}

static ifk_status exec_(const ifk_manifest *m, const char *sql, const char *what) {
    return sqlite3_exec(m->db, sql, NULL, NULL, NULL) == SQLITE_OK ? IFK_OK : sql_fail_(m, what);
}

/* Prepares sql into *st; the caller finalizes. */
static ifk_status prep_(const ifk_manifest *m, const char *sql, sqlite3_stmt **st) {
    return sqlite3_prepare_v2(m->db, sql, -1, st, NULL) == SQLITE_OK ? IFK_OK : sql_fail_(m, "cannot read the catalog");
}

/* The bytes of a commit that its checksum covers: the shard name, then per document its id,
 * group (both NUL-terminated), n_tokens, n_chunks and chunk lengths as little-endian int32. */
typedef struct {
    uint8_t *b;
    size_t n, cap;
} bytes_;

static int put_(bytes_ *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        size_t cap = 2 * (o->n + n) + 256;
        uint8_t *b = realloc(o->b, cap);
        if (!b) return 0;
        o->b = b, o->cap = cap;
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
    return 1;
}

static int put_i32_(bytes_ *o, int32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put_(o, b, 4);
}

static int put_rec_(bytes_ *o, const ifk_doc_rec *r) {
    int ok = put_(o, r->id, strlen(r->id) + 1) && put_(o, r->group, strlen(r->group) + 1) && put_i32_(o, r->n_tokens) &&
             put_i32_(o, r->n_chunks);
    for (int c = 0; ok && c < r->n_chunks; c++) ok = put_i32_(o, r->chunk_len[c]);
    return ok;
}

static ifk_status prepare_lookups_(ifk_manifest *m) {
    IFK_CHECK(prep_(m, "SELECT id FROM docs WHERE doc_id = ?1", &m->q_find));
    IFK_CHECK(prep_(m, "SELECT doc_id, shard, grp, n_tokens, chunks FROM docs WHERE id = ?1", &m->q_get));
    return prep_(m, "SELECT name FROM shards WHERE id = ?1", &m->q_shard);
}

static ifk_status open_db_(ifk_manifest *m, int writable, int create) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", m->dir, IFK_CATALOG);
    struct stat sb;
    if (!create && stat(path, &sb) != 0)
        return IFK_FAIL(IFK_ERR_IO, "%s: catalog missing (the store is damaged: rebuild it with --force)", path);
    int flags = writable ? SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, &m->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) return sql_fail_(m, "cannot open");
    m->writable = writable;
    sqlite3_busy_timeout(m->db, 30000);
    if (writable) {
        IFK_CHECK(exec_(m, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;",
                        "cannot set the journal mode"));
        if (create) IFK_CHECK(exec_(m, schema_, "cannot create the tables"));
    } else {
        IFK_CHECK(exec_(m, "PRAGMA query_only=1;", "cannot open read-only"));
    }
    IFK_CHECK(prepare_lookups_(m));
    return ifk_manifest_refresh(m);
}

ifk_status ifk_manifest_refresh(ifk_manifest *m) {
    sqlite3_stmt *q;
    IFK_CHECK(prep_(m, "SELECT id, first_doc + n_docs, tokens_end, chunks_end FROM shards ORDER BY id DESC LIMIT 1", &q));
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        m->n_shards = sqlite3_column_int(q, 0) + 1;
        m->n_docs = sqlite3_column_int(q, 1);
        m->n_tokens = sqlite3_column_int64(q, 2);
        m->n_chunks = sqlite3_column_int64(q, 3);
    } else {
        m->n_shards = m->n_docs = 0;
        m->n_tokens = m->n_chunks = 0;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? IFK_OK : sql_fail_(m, "cannot read the shard list");
}

/* A fresh, empty catalog.sqlite in dir (stale catalog files removed first), open for writing. */
static ifk_status create_catalog_(ifk_manifest *m, const char *dir, const ifk_store_params *p) {
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    m->p = *p;
    const char *stale[] = {IFK_CATALOG, IFK_CATALOG "-wal", IFK_CATALOG "-shm", IFK_CATALOG "-journal"};
    for (size_t i = 0; i < sizeof stale / sizeof *stale; i++) { /* a crash between catalog and manifest */
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, stale[i]);
        unlink(path);
    }
    ifk_status st = open_db_(m, 1, 1);
    if (st != IFK_OK) ifk_manifest_free(m);
    return st;
}

ifk_status ifk_manifest_create(ifk_manifest *m, const char *dir, const ifk_store_params *p) {
    IFK_CHECK(create_catalog_(m, dir, p));
    char *text = params_json_(p);
    ifk_status st = text ? ifk_write_atomic(dir, IFK_MANIFEST, text, strlen(text), "manifest")
                         : IFK_FAIL(IFK_ERR_OOM, "%s: out of memory writing the manifest", dir);
    free(text);
    if (st != IFK_OK) ifk_manifest_free(m);
    return st;
}

/* Reads dir/manifest.json into m->p; *version receives its format version. */
static ifk_status read_params_(ifk_manifest *m, const char *dir, long *version, cJSON **json) {
    char path[2048], *buf;
    snprintf(path, sizeof path, "%s/%s", dir, IFK_MANIFEST);
    IFK_CHECK(ifk_read_file(path, (size_t)1 << 40, &buf, NULL)); /* a missing manifest is IFK_ERR_IO */
    cJSON *o = cJSON_Parse(buf);
    free(buf);
    ifk_status st = IFK_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    if (!cJSON_IsObject(o) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "infoflow-kv-store")) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: not an infoflow store manifest (invalid JSON or wrong format)", path);
        goto done;
    }
    if (!json_int_(o, "format_version", 0, 1 << 20, version)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"format_version\" missing or out of range", path);
        goto done;
    }
    if (*version != 1 && *version != IFK_STORE_FORMAT_VERSION) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: store format version %ld, this infoflow reads version %d (--force rebuilds)",
                      path, *version, IFK_STORE_FORMAT_VERSION);
        goto done;
    }
    st = parse_params_(o, path, &m->p);
done:
    if (st == IFK_OK && json) *json = o;
    else cJSON_Delete(o);
    return st;
}

ifk_status ifk_manifest_open(ifk_manifest *m, const char *dir, int writable) {
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    long ver = 0;
    IFK_CHECK(read_params_(m, dir, &ver, NULL));
    if (ver == 1)
        return IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: store format version 1 (one JSON manifest listing every document); this "
                        "infoflow reads version %d: convert it with `infoflow migrate --store %s` (or re-cache with "
                        "--force)", dir, IFK_MANIFEST, IFK_STORE_FORMAT_VERSION, dir);
    ifk_status st = open_db_(m, writable, 0);
    if (st != IFK_OK) ifk_manifest_free(m);
    return st;
}

ifk_status ifk_manifest_load(ifk_manifest *m, const char *dir) { return ifk_manifest_open(m, dir, 0); }

ifk_status ifk_manifest_checkpoint(ifk_manifest *m) {
    if (!m->db || !m->writable) return IFK_OK;
    /* the WAL's pages are copied into the database file, then the WAL is emptied: a crash in
     * between leaves both, and SQLite replays the WAL again on the next open */
    if (sqlite3_wal_checkpoint_v2(m->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
        return sql_fail_(m, "checkpoint failed");
    ifk_fault("catalog.checkpoint");
    /* readers in the way (busy after the timeout) only postpone the truncation to the next one */
    sqlite3_busy_timeout(m->db, 200);
    int rc = sqlite3_wal_checkpoint_v2(m->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout(m->db, 30000);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) return sql_fail_(m, "checkpoint failed");
    m->commits_since_checkpoint = 0;
    return IFK_OK;
}

void ifk_manifest_free(ifk_manifest *m) {
    sqlite3_finalize(m->q_find);
    sqlite3_finalize(m->q_get);
    sqlite3_finalize(m->q_shard);
    m->q_find = m->q_get = m->q_shard = NULL;
    if (m->db) {
        if (m->writable && m->commits_since_checkpoint) ifk_manifest_checkpoint(m);
        sqlite3_close(m->db);
    }
    m->db = NULL;
}

int ifk_manifest_find(const ifk_manifest *m, const char *id) {
    sqlite3_stmt *q = m->q_find;
    if (!q) return -1;
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q), d = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) sql_fail_(m, "cannot look a document up");
    sqlite3_reset(q);
    return d;
}

/* A document record from a row of (doc_id, shard, grp, n_tokens, chunks) columns at col. */
static ifk_status rec_from_row_(const ifk_manifest *m, sqlite3_stmt *q, int col, long long d, ifk_doc_rec *r) {
    memset(r, 0, sizeof *r);
    const char *id = (const char *)sqlite3_column_text(q, col), *g = (const char *)sqlite3_column_text(q, col + 2);
    const uint8_t *ch = sqlite3_column_blob(q, col + 4);
    int nb = sqlite3_column_bytes(q, col + 4);
    long long shard = sqlite3_column_int64(q, col + 1), ntok = sqlite3_column_int64(q, col + 3);
    if (!id || !g || strlen(g) >= sizeof r->group || shard < 0 || shard > INT32_MAX || ntok < 0 || ntok > INT32_MAX ||
        nb % 4 || (nb && !ch))
        return IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: document %lld: malformed record", m->dir, IFK_CATALOG, d);
    r->shard = (int)shard;
    r->n_tokens = (int)ntok;
    snprintf(r->group, sizeof r->group, "%s", g);
    r->n_chunks = nb / 4;
    r->id = strdup(id);
    r->chunk_len = malloc(sizeof(int) * (size_t)(r->n_chunks > 0 ? r->n_chunks : 1));
    if (!r->id || !r->chunk_len) {
        ifk_doc_rec_free(r);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    long long sum = 0;
    for (int c = 0; c < r->n_chunks; c++) {
        const uint8_t *b = ch + 4 * c;
        int32_t v = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
        if (v < 1 || v > 1 << 24) {
            ifk_doc_rec_free(r);
            return IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: document %lld (\"%s\"): bad chunk length", m->dir, IFK_CATALOG, d, id);
        }
        r->chunk_len[c] = v;
        sum += v;
    }
    if (sum != r->n_tokens) {
        IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: document %lld (\"%s\"): chunk lengths sum to %lld, not n_tokens %d", m->dir,
                 IFK_CATALOG, d, id, sum, r->n_tokens);
        ifk_doc_rec_free(r);
        return IFK_ERR_FORMAT;
    }
    return IFK_OK;
}

ifk_status ifk_manifest_get(const ifk_manifest *m, int d, ifk_doc_rec *r) {
    memset(r, 0, sizeof *r);
    sqlite3_stmt *q = m->q_get;
    IFK_CHECK_ARG(q, "%s: catalog not open", m->dir);
    sqlite3_reset(q);
    sqlite3_bind_int(q, 1, d);
    int rc = sqlite3_step(q);
    ifk_status st;
    if (rc == SQLITE_ROW) st = rec_from_row_(m, q, 0, d, r);
    else if (rc == SQLITE_DONE) st = IFK_FAIL(IFK_ERR_ARG, "%s: no document %d", m->dir, d);
    else st = sql_fail_(m, "cannot read a document record");
    sqlite3_reset(q);
    return st;
}

ifk_status ifk_manifest_shard(const ifk_manifest *m, int i, char *name, size_t cap) {
    sqlite3_stmt *q = m->q_shard;
    IFK_CHECK_ARG(q, "%s: catalog not open", m->dir);
    sqlite3_reset(q);
    sqlite3_bind_int(q, 1, i);
    int rc = sqlite3_step(q);
    const char *s = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
    ifk_status st = IFK_OK;
    if (rc == SQLITE_ROW && s && !strchr(s, '/') && s[0] && strlen(s) < cap) snprintf(name, cap, "%s", s);
    else if (rc == SQLITE_ROW) st = IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: shard %d is not a plain file name", m->dir, IFK_CATALOG, i);
    else if (rc == SQLITE_DONE) st = IFK_FAIL(IFK_ERR_ARG, "%s: no shard %d", m->dir, i);
    else st = sql_fail_(m, "cannot read the shard list");
    sqlite3_reset(q);
    return st;
}

int ifk_manifest_has_shard(const ifk_manifest *m, const char *name) {
    sqlite3_stmt *q;
    if (prep_(m, "SELECT 1 FROM shards WHERE name = ?1", &q) != IFK_OK) return 1; /* when unsure, keep the file */
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc != SQLITE_DONE;
}

ifk_status ifk_manifest_each_shard(const ifk_manifest *m, void (*fn)(const char *, void *), void *ctx) {
    sqlite3_stmt *q;
    IFK_CHECK(prep_(m, "SELECT name FROM shards ORDER BY id", &q));
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) fn((const char *)sqlite3_column_text(q, 0), ctx);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? IFK_OK : sql_fail_(m, "cannot read the shard list");
}

ifk_status ifk_manifest_add(ifk_manifest *m, const char *shard, ifk_doc_rec *docs, int n) {
    IFK_CHECK_ARG(m->db && m->writable, "%s: catalog not open for writing", m->dir);
    IFK_CHECK_ARG(shard[0] && !strchr(shard, '/'), "%s: shard \"%s\" is not a plain file name", m->dir, shard);
    bytes_ sum = {0};
    long long tok = 0, chk = 0;
    int ok = put_(&sum, shard, strlen(shard) + 1);
    for (int i = 0; ok && i < n; i++) ok = put_rec_(&sum, &docs[i]), tok += docs[i].n_tokens, chk += docs[i].n_chunks;
    if (!ok) {
        free(sum.b);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory committing %s", shard);
    }
    ifk_status st = IFK_OK;
    sqlite3_stmt *qs = NULL, *qd = NULL;
    IFK_CHECK_GOTO(st, exec_(m, "BEGIN IMMEDIATE", "cannot begin a commit"), done);
    IFK_CHECK_GOTO(st, prep_(m, "INSERT INTO shards VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &qs), rollback);
    IFK_CHECK_GOTO(st, prep_(m, "INSERT INTO docs VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &qd), rollback);
    sqlite3_bind_int(qs, 1, m->n_shards);
    sqlite3_bind_text(qs, 2, shard, -1, SQLITE_STATIC);
    sqlite3_bind_int(qs, 3, m->n_docs);
    sqlite3_bind_int(qs, 4, n);
    sqlite3_bind_int64(qs, 5, m->n_tokens + tok);
    sqlite3_bind_int64(qs, 6, m->n_chunks + chk);
    sqlite3_bind_int64(qs, 7, ifk_fletcher32(sum.b, sum.n));
    if (sqlite3_step(qs) != SQLITE_DONE) {
        st = sql_fail_(m, "cannot record the shard");
        goto rollback;
    }
    for (int i = 0; i < n; i++) {
        bytes_ ch = {0};
        int okc = 1;
        for (int c = 0; okc && c < docs[i].n_chunks; c++) okc = put_i32_(&ch, docs[i].chunk_len[c]);
        sqlite3_reset(qd);
        sqlite3_bind_int(qd, 1, m->n_docs + i);
        sqlite3_bind_text(qd, 2, docs[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_int(qd, 3, m->n_shards);
        sqlite3_bind_text(qd, 4, docs[i].group, -1, SQLITE_STATIC);
        sqlite3_bind_int(qd, 5, docs[i].n_tokens);
        sqlite3_bind_blob(qd, 6, ch.b ? (const void *)ch.b : "", (int)ch.n, SQLITE_TRANSIENT);
        int rc = okc ? sqlite3_step(qd) : SQLITE_NOMEM;
        free(ch.b);
        if (rc == SQLITE_CONSTRAINT) {
            st = IFK_FAIL(IFK_ERR_INTERNAL, "%s: document \"%s\" committed twice", m->dir, docs[i].id);
            goto rollback;
        }
        if (rc != SQLITE_DONE) {
            st = sql_fail_(m, "cannot record a document");
            goto rollback;
        }
    }
    if (ifk_fault("catalog.commit")) { /* the transaction written, not committed */
        st = IFK_FAIL(IFK_ERR_IO, "%s/%s: commit failed (injected fault)", m->dir, IFK_CATALOG);
        goto rollback;
    }
    sqlite3_finalize(qs), sqlite3_finalize(qd);
    qs = qd = NULL;
    IFK_CHECK_GOTO(st, exec_(m, "COMMIT", "cannot commit"), rollback);
    m->n_shards++;
    m->n_docs += n;
    m->n_tokens += tok;
    m->n_chunks += chk;
    for (int i = 0; i < n; i++) ifk_doc_rec_free(&docs[i]);
    if (++m->commits_since_checkpoint >= CHECKPOINT_EVERY_) st = ifk_manifest_checkpoint(m);
    goto done;
rollback:
    sqlite3_finalize(qs), sqlite3_finalize(qd);
    sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
done:
    free(sum.b);
    return st;
}

static void report_(void (*report)(const char *, void *), void *ctx, int *bad, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_(void (*report)(const char *, void *), void *ctx, int *bad, const char *fmt, ...) {
    char msg[2600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(msg, ctx);
    (*bad)++;
}

ifk_status ifk_manifest_verify(const ifk_manifest *m, void (*report)(const char *, void *), void *ctx, int *bad) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", m->dir, IFK_CATALOG);
    sqlite3_stmt *q = NULL, *qs = NULL;
    IFK_CHECK(prep_(m, "PRAGMA quick_check", &q));
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(q, 0);
        if (s && strcmp(s, "ok")) report_(report, ctx, bad, "%s: %s", path, s);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        report_(report, ctx, bad, "%s: integrity check failed: %s", path, sqlite3_errmsg(m->db));
        return IFK_OK;
    }
    ifk_status st = IFK_OK;
    /* one read transaction: every statement below sees the same snapshot, however many commits a
     * running cache job makes meanwhile (without it, documents committed between the shard list and
     * the count below look like records of no commit) */
    if (sqlite3_exec(m->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot begin a read transaction: %s", path, sqlite3_errmsg(m->db));
    IFK_CHECK_GOTO(st, prep_(m, "SELECT id, name, first_doc, n_docs, tokens_end, chunks_end, checksum FROM shards ORDER BY id", &qs), fail);
    IFK_CHECK_GOTO(st, prep_(m, "SELECT id, doc_id, shard, grp, n_tokens, chunks FROM docs WHERE id >= ?1 AND id < ?2 "
                             "ORDER BY id", &q), fail);
    long long next = 0, tok = 0, chk = 0, want_shard = 0;
    while ((rc = sqlite3_step(qs)) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(qs, 0), first = sqlite3_column_int64(qs, 2), n = sqlite3_column_int64(qs, 3);
        const char *name = (const char *)sqlite3_column_text(qs, 1);
        char nm[512];
        snprintf(nm, sizeof nm, "%s", name ? name : "(null)");
        if (id != want_shard || first != next || n < 0) {
            report_(report, ctx, bad, "%s: commit record %lld (shard %s): numbering broken (shard %lld, first document "
                    "%lld, expected %lld and %lld)", path, id, nm, id, first, want_shard, next);
            next = first;
        }
        want_shard = id + 1;
        bytes_ sum = {0};
        int okb = put_(&sum, nm, strlen(nm) + 1), count = 0, recbad = 0;
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, first);
        sqlite3_bind_int64(q, 2, first + n);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            ifk_doc_rec r;
            long long d = sqlite3_column_int64(q, 0);
            if (rec_from_row_(m, q, 1, d, &r) != IFK_OK) {
                report_(report, ctx, bad, "%s: commit record %lld (shard %s): %s", path, id, nm, ifk_errmsg());
                recbad = 1;
                count++;
                continue;
            }
            if (r.shard != id) {
                report_(report, ctx, bad, "%s: commit record %lld (shard %s): document %lld (\"%s\") names shard %d", path,
                        id, nm, d, r.id, r.shard);
                recbad = 1;
            }
            okb = okb && put_rec_(&sum, &r);
            tok += r.n_tokens, chk += r.n_chunks, count++;
            ifk_doc_rec_free(&r);
        }
        if (rc != SQLITE_DONE) report_(report, ctx, bad, "%s: commit record %lld (shard %s): unreadable: %s", path, id, nm,
                                       sqlite3_errmsg(m->db));
        else if (count != n)
            report_(report, ctx, bad, "%s: commit record %lld (shard %s): %d of its %lld document records present",
                    path, id, nm, count, n);
        else if (!recbad && okb && ifk_fletcher32(sum.b, sum.n) != (uint32_t)sqlite3_column_int64(qs, 6))
            report_(report, ctx, bad, "%s: commit record %lld (shard %s): its %lld document records fail the commit's "
                    "checksum (a damaged record)", path, id, nm, n);
        else if (!recbad && (tok != sqlite3_column_int64(qs, 4) || chk != sqlite3_column_int64(qs, 5)))
            report_(report, ctx, bad, "%s: commit record %lld (shard %s): running totals disagree with its documents",
                    path, id, nm);
        free(sum.b);
        next = first + n;
    }
    if (rc != SQLITE_DONE) report_(report, ctx, bad, "%s: shard list unreadable: %s", path, sqlite3_errmsg(m->db));
    sqlite3_finalize(q);
    q = NULL;
    IFK_CHECK_GOTO(st, prep_(m, "SELECT count(*) FROM docs WHERE id >= ?1", &q), fail);
    sqlite3_bind_int64(q, 1, next);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > 0)
        report_(report, ctx, bad, "%s: %lld document records belong to no commit", path, sqlite3_column_int64(q, 0));
fail:
    sqlite3_finalize(q);
    sqlite3_finalize(qs);
    sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL); /* ends the read transaction */
    return st;
}

ifk_status ifk_manifest_segments(const ifk_manifest *m, ifk_index_seg **segs, int *n) {
    *segs = NULL, *n = 0;
    sqlite3_stmt *q;
    IFK_CHECK(prep_(m, "SELECT file, first_doc, n_docs FROM segments ORDER BY first_doc", &q));
    int rc, cap = 0;
    ifk_status st = IFK_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            ifk_index_seg *s = realloc(*segs, sizeof *s * (size_t)cap);
            if (!s) {
                st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
                break;
            }
            *segs = s;
        }
        ifk_index_seg *g = &(*segs)[(*n)++];
        const char *f = (const char *)sqlite3_column_text(q, 0);
        long long first = sqlite3_column_int64(q, 1), nd = sqlite3_column_int64(q, 2);
        if (!f || !f[0] || strchr(f, '/') || strlen(f) >= sizeof g->file || first < 0 || nd < 0 || first > INT32_MAX ||
            nd > INT32_MAX) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s/%s: index segment record %d is malformed", m->dir, IFK_CATALOG, *n - 1);
            break;
        }
        snprintf(g->file, sizeof g->file, "%s", f);
        g->first = (int)first, g->n = (int)nd;
    }
    sqlite3_finalize(q);
    if (st == IFK_OK && rc != SQLITE_DONE) st = sql_fail_(m, "cannot read the index segments");
    if (st != IFK_OK) free(*segs), *segs = NULL, *n = 0;
    return st;
}

ifk_status ifk_manifest_set_segments(ifk_manifest *m, const ifk_index_seg *drop, int n_drop, const ifk_index_seg *add) {
    IFK_CHECK_ARG(m->db && m->writable, "%s: catalog not open for writing", m->dir);
    ifk_status st = IFK_OK;
    sqlite3_stmt *q = NULL;
    IFK_CHECK(exec_(m, "BEGIN IMMEDIATE", "cannot begin a commit"));
    IFK_CHECK_GOTO(st, prep_(m, "DELETE FROM segments WHERE file = ?1", &q), fail);
    for (int i = 0; i < n_drop; i++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, drop[i].file, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE) {
            st = sql_fail_(m, "cannot drop an index segment");
            goto fail;
        }
    }
    sqlite3_finalize(q);
    q = NULL;
    if (add) {
        IFK_CHECK_GOTO(st, prep_(m, "INSERT INTO segments VALUES (?1, ?2, ?3)", &q), fail);
        sqlite3_bind_text(q, 1, add->file, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, add->first);
        sqlite3_bind_int(q, 3, add->n);
        if (sqlite3_step(q) != SQLITE_DONE) {
            st = sql_fail_(m, "cannot record an index segment");
            goto fail;
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    IFK_CHECK_GOTO(st, exec_(m, "COMMIT", "cannot commit"), fail);
    m->commits_since_checkpoint++;
    return IFK_OK;
fail:
    sqlite3_finalize(q);
    sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* ---- format version 1 -------------------------------------------------------------------------- */

ifk_status ifk_manifest_migrate(const char *dir, int *n_docs) {
    *n_docs = 0;
    ifk_manifest m;
    memset(&m, 0, sizeof m);
    snprintf(m.dir, sizeof m.dir, "%s", dir);
    long ver = 0;
    cJSON *o = NULL;
    IFK_CHECK(read_params_(&m, dir, &ver, &o));
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, IFK_MANIFEST);
    ifk_status st = IFK_OK;
    ifk_doc_rec *recs = NULL;
    int nrec = 0;
    if (ver != 1) {
        st = IFK_FAIL(IFK_ERR_ARG, "%s: store is already format version %ld", path, ver);
        goto done;
    }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shards"), *docs = cJSON_GetObjectItemCaseSensitive(o, "documents");
    if (!cJSON_IsArray(sh) || !cJSON_IsArray(docs)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"shards\" or \"documents\" is not an array", path);
        goto done;
    }
    int ns = cJSON_GetArraySize(sh), nd = cJSON_GetArraySize(docs);
    for (int i = 0; i < ns; i++) {
        const cJSON *s = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsString(s) || strchr(s->valuestring, '/') || !s->valuestring[0]) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: shard %d is not a plain file name", path, i);
            goto done;
        }
    }
    recs = calloc((size_t)(nd > 0 ? nd : 1), sizeof *recs);
    if (!recs) {
        st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        goto done;
    }
    for (; nrec < nd; nrec++) {
        char where[2100];
        snprintf(where, sizeof where, "%s: document %d", path, nrec);
        IFK_CHECK_GOTO(st, doc_from_json_(cJSON_GetArrayItem(docs, nrec), &recs[nrec], 1, ns, where), done);
        if (nrec && recs[nrec].shard < recs[nrec - 1].shard) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: documents are not in shard order", where);
            nrec++;
            goto done;
        }
    }
    /* the catalog (a fresh one: an earlier interrupted migrate is redone), then manifest.json */
    ifk_manifest cat;
    ifk_store_params p = m.p;
    IFK_CHECK_GOTO(st, create_catalog_(&cat, dir, &p), done);
    for (int s = 0, i = 0; s < ns && st == IFK_OK; s++) {
        int j = i;
        while (j < nrec && recs[j].shard == s) j++;
        st = ifk_manifest_add(&cat, cJSON_GetArrayItem(sh, s)->valuestring, recs + i, j - i);
        i = j;
    }
    if (st == IFK_OK) st = ifk_manifest_checkpoint(&cat);
    ifk_manifest_free(&cat);
    if (st == IFK_OK) {
        char *v2 = params_json_(&p);
        st = v2 ? ifk_write_atomic(dir, IFK_MANIFEST, v2, strlen(v2), "manifest") : IFK_FAIL(IFK_ERR_OOM, "out of memory");
        free(v2);
    }
    if (st == IFK_OK) *n_docs = nd;
done:
    for (int i = 0; i < nrec; i++) ifk_doc_rec_free(&recs[i]);
    free(recs);
    cJSON_Delete(o);
    return st;
}
