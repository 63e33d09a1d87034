/* ingest.c — opening a store for writing, chunk prefill into shards, commits, the index (ingest.h). */
#include "ingest.h"

#include "corpus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_index.h"
#include "store_maint.h"
#include "sys.h"

static ifk_status mkdirs_(const char *dir) {
    char p[1024];
    IFK_CHECK_ARG(strlen(dir) < sizeof p, "%s: path too long", dir);
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != '\0') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return IFK_FAIL(IFK_ERR_IO, "%s: not a folder", dir);
    return IFK_OK;
}

ifk_status ifk_ingest_open_store(const char *dir, const ifk_store_params *want, int force, int no_lock, int check_layout,
                                 ifk_manifest **man, int *lock_fd, int *removed) {
    *man = NULL;
    *lock_fd = -1;
    *removed = 0;
    IFK_CHECK(mkdirs_(dir));
    if (!no_lock) IFK_CHECK(ifk_store_lock(dir, lock_fd));
    else IFK_CHECK(ifk_store_lock_probe(dir)); /* --no-lock: file systems without locks, never a held lock */
    ifk_status st = IFK_OK;
    ifk_manifest *m = ifk_calloc(1, sizeof *m, "manifest");
    if (!m) {
        st = IFK_ERR_OOM;
        goto fail;
    }
    if (force) IFK_CHECK_GOTO(st, ifk_store_wipe(dir), fail);
    char mpath[2048];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, IFK_MANIFEST);
    struct stat sb;
    if (stat(mpath, &sb) == 0) {
        IFK_CHECK_GOTO(st, ifk_manifest_open(m, dir, 1), fail);
        IFK_CHECK_GOTO(st, ifk_store_params_check(&m->p, want, dir, check_layout), fail);
    } else {
        IFK_CHECK_GOTO(st, ifk_manifest_create(m, dir, want), fail);
    }
    IFK_CHECK_GOTO(st, ifk_store_clean(m, removed), fail);
    *man = m;
    return IFK_OK;
fail:
    if (m) ifk_manifest_free(m), free(m);
    ifk_store_unlock(*lock_fd);
    *lock_fd = -1;
    return st;
}

void ifk_ingest_close_store(ifk_manifest **man, int *lock_fd) {
    if (*man) ifk_manifest_free(*man), free(*man);
    *man = NULL;
    ifk_store_unlock(*lock_fd);
    *lock_fd = -1;
}

ifk_status ifk_ingest_record(ifk_manifest *man, const char *shard, ifk_doc_rec *recs, int n) {
    return ifk_manifest_add(man, shard, recs, n);
}

ifk_status ifk_ingest_index(ifk_manifest *man, ifk_index_note note, void *ctx, int *added, int *merged) {
    return ifk_store_index_update(man, added, merged, note, ctx);
}

ifk_status ifk_ingest_init(ifk_ingest *g, const ifk_model *m, const ifk_tokenizer *tok, const char *dir,
                           const ifk_store_params *p, const char *prefix, int rank) {
    memset(g, 0, sizeof *g);
    g->m = m;
    g->tok = tok;
    g->p = *p;
    g->rank = rank;
    snprintf(g->dir, sizeof g->dir, "%s", dir);
    snprintf(g->prefix, sizeof g->prefix, "%s", prefix);
    const ifk_config *c = &m->cfg;
    IFK_CHECK_ARG(p->chunk_tokens >= 1 && p->chunk_tokens + IFK_CHUNK_PREFIX <= c->seq_len,
                  "--chunk-tokens %d plus the BOS prefix exceeds the model's %d positions", p->chunk_tokens, c->seq_len);
    IFK_CHECK(ifk_kvcache_init(&g->cache, c, p->chunk_tokens + IFK_CHUNK_PREFIX));
    const size_t nel = (size_t)c->n_layers * c->n_kv_heads * p->chunk_tokens * c->head_dim;
    g->k = ifk_malloc(nel * sizeof(float), "chunk K");
    g->v = ifk_malloc(nel * sizeof(float), "chunk V");
    if (!g->k || !g->v) {
        ifk_ingest_free(g);
        return IFK_ERR_OOM;
    }
    return IFK_OK;
}

static ifk_status open_shard_(ifk_ingest *g) {
    char name[256];
    snprintf(name, sizeof name, "%s-%06d.h5", g->prefix, g->shard_seq++);
    IFK_CHECK(ifk_shard_create(&g->w, g->dir, name, &g->p, g->rank));
    g->opened_at = ifk_now();
    return IFK_OK;
}

ifk_status ifk_ingest_doc(ifk_ingest *g, const ifk_ingest_doc_in *d, const char *where, void (*between)(void *),
                          void *ctx) {
    const ifk_config *c = &g->m->cfg;
    ifk_chunking ch;
    if (d->tokens) {
        for (int i = 0; i < d->n_tokens; i++)
            if (d->tokens[i] < 0 || d->tokens[i] >= c->vocab_size)
                return IFK_FAIL(IFK_ERR_FORMAT, "%s: token %d is outside the model's vocabulary (0..%d)", where,
                                d->tokens[i], c->vocab_size - 1);
        IFK_CHECK(ifk_chunk_ids(d->tokens, d->n_tokens, g->p.chunk_tokens, &ch));
    } else {
        if (!g->tok)
            return IFK_FAIL(IFK_ERR_ARG, "%s: document has text but the model has no tokenizer (a random model, or an "
                            "HF folder without tokenizer.json, tokenizer.model or tok*.bin): give \"tokens\" or "
                            "--tokenizer FILE", where);
        IFK_CHECK(ifk_chunk_text(g->tok, d->text, d->text_len, g->p.chunk_tokens, g->p.split, &ch));
    }
    ifk_status st = IFK_OK;
    if (ch.n_chunks == 0) { /* a text of only what the tokenizer drops: nothing to cache or query */
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: the document gives no tokens", where);
        goto done;
    }
    if (!g->w) IFK_CHECK_GOTO(st, open_shard_(g), done);
    IFK_CHECK_GOTO(st, ifk_shard_begin_doc(g->w, d->id, d->text ? d->text : "", d->text ? d->text_len : 0), done);
    for (int i = 0; i < ch.n_chunks; i++) {
        const int *t = ch.tokens + ch.start[i];
        IFK_CHECK_GOTO(st, g->prefill ? g->prefill(t, ch.len[i], g->k, g->v, g->prefill_ctx)
                                      : ifk_prefill_chunk(g->m, &g->s, &g->cache, t, ch.len[i], g->k, g->v), done);
        const size_t nel = (size_t)g->p.n_layers * g->p.n_kv_heads * ch.len[i] * g->p.head_dim;
        if (ifk_weights_nonfinite(g->k, IFK_W_F32, nel) < nel || ifk_weights_nonfinite(g->v, IFK_W_F32, nel) < nel) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: chunk %d's K/V hold NaN or infinity (the model's activations overflow): "
                          "not stored", where, i);
            goto done;
        }
        IFK_CHECK_GOTO(st, ifk_shard_put_chunk(g->w, ch.tokens + ch.start[i], ch.len[i], g->k, g->v), done);
        if (between) between(ctx);
    }
    if (g->n_pending == g->cap_pending) {
        int cap = g->cap_pending ? 2 * g->cap_pending : 64;
        ifk_doc_rec *p = realloc(g->pending, sizeof *p * cap);
        if (!p) {
            st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
            goto done;
        }
        g->pending = p;
        g->cap_pending = cap;
    }
    IFK_CHECK_GOTO(st, ifk_shard_end_doc(g->w, &g->pending[g->n_pending]), done);
    g->n_pending++;
done:
    ifk_chunking_free(&ch);
    return st;
}

int ifk_ingest_commit_due(const ifk_ingest *g, int max_docs, double max_secs, int force) {
    if (!g->w) return 0;
    return force || g->n_pending >= max_docs || ifk_now() - g->opened_at >= max_secs;
}

ifk_status ifk_ingest_commit(ifk_ingest *g, ifk_ingest_record_fn record, void *ctx) {
    if (!g->w) return IFK_OK;
    char name[256];
    snprintf(name, sizeof name, "%s", ifk_shard_name(g->w));
    IFK_CHECK(ifk_shard_commit(&g->w));
    ifk_status st = record(name, g->pending, g->n_pending, ctx);
    for (int i = 0; i < g->n_pending; i++) ifk_doc_rec_free(&g->pending[i]);
    g->n_pending = 0;
    return st;
}

int ifk_ingest_last_tokens(const ifk_ingest *g) { return g->n_pending ? g->pending[g->n_pending - 1].n_tokens : 0; }

void ifk_ingest_free(ifk_ingest *g) {
    if (g->w) ifk_shard_abort(&g->w);
    for (int i = 0; i < g->n_pending; i++) ifk_doc_rec_free(&g->pending[i]);
    free(g->pending);
    free(g->k), free(g->v);
    ifk_kvcache_free(&g->cache);
    ifk_state_free(&g->s);
    memset(g, 0, sizeof *g);
}

ifk_status ifk_ingest_same_doc(ifk_store *store, int rd, const char *id, const char *text, size_t text_len,
                               const int *tokens, int n_tokens, const char *where) {
    const ifk_doc_rec *r = ifk_store_doc(store, rd);
    if (!r) return IFK_ERR_FORMAT; /* the catalog's message is set */
    char why[160] = "";
    char *stext = NULL;
    size_t slen = 0;
    ifk_status st = ifk_store_read_text(store, rd, &stext, &slen);
    if (st != IFK_OK) return st;
    if (text) {
        if (slen != text_len) snprintf(why, sizeof why, "a text of %zu bytes, the store's %zu", text_len, slen);
        else if (memcmp(stext, text, slen)) snprintf(why, sizeof why, "a text of the same length, other bytes");
    } else if (slen) {
        snprintf(why, sizeof why, "\"tokens\" where the store holds a text");
    } else if (r->n_tokens != n_tokens) {
        snprintf(why, sizeof why, "%d tokens, the store's %d", n_tokens, r->n_tokens);
    } else {
        int *t = malloc(sizeof(int) * (size_t)(n_tokens ? n_tokens : 1));
        if (!t) st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        for (int c = 0, off = 0; st == IFK_OK && c < r->n_chunks; off += r->chunk_len[c++])
            st = ifk_store_read_tokens(store, rd, c, t + off);
        if (st == IFK_OK && memcmp(t, tokens, sizeof(int) * (size_t)n_tokens))
            snprintf(why, sizeof why, "the same number of tokens, other ids");
        free(t);
    }
    free(stext);
    if (st != IFK_OK || !why[0]) return st;
    char q[96];
    ifk_quote(q, sizeof q, id);
    return IFK_FAIL(IFK_ERR_ARG, "%s: document %s is already in the store %s with other content (%s): give it a new id, "
                    "or --force rebuilds the store from this corpus (deleting the documents it holds)", where, q,
                    ifk_store_manifest(store)->dir, why);
}
