/* eval_docs.c — the documents `infoflow eval` caches before its runs (eval_docs.h). Moved out of
 * mpi/cmd_eval.c: no MPI, only the ingest path and the engine. */
#include "eval_docs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decode.h"
#include "engine.h"
#include "ingest.h"
#include "sampler.h"
#include "store.h"

const char *const ifk_needle_animal[IFK_NEEDLES] = {"cat", "dog", "bird", "fish", "frog", "bunny", "bear", "duck"};
const char *const ifk_needle_name[IFK_NEEDLES] = {"Tim", "Sam", "Anna", "Bob", "Mia", "Lucy", "Jack", "Sara"};

/* ---- caching ------------------------------------------------------------------------------------- */

typedef struct {
    char *id, *text;
} text_doc_;

static ifk_status record_(const char *shard, ifk_doc_rec *recs, int n, void *ctx) {
    return ifk_ingest_record(ctx, shard, recs, n);
}

/* Caches the documents the store lacks, in one new shard, then rebuilds the BM25 index (the
 * ingest path of `infoflow cache`, pipeline/ingest.h). Rank 0 only; the store is locked meanwhile.
 * A new store gets f16 K/V in chunks of 128 tokens; an existing one keeps its layout. */
static ifk_status cache_texts_(const ifk_model *m, const ifk_tokenizer *tok, const char *dir, const text_doc_ *docs,
                               int n, int *added) {
    *added = 0;
    char fp[17];
    ifk_model_fingerprint(m, fp);
    ifk_store_params want;
    ifk_store_params_from_model(&want, m, fp);
    want.dtype = IFK_DT_F16;
    want.chunk_tokens = 128 < m->cfg.seq_len - 1 ? 128 : m->cfg.seq_len - 1;
    ifk_manifest *man = NULL;
    int fd = -1, removed = 0;
    IFK_CHECK(ifk_ingest_open_store(dir, &want, 0, 0, 0, &man, &fd, &removed));
    ifk_ingest g;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "shard-eval-%ld-%05x", (long)time(NULL), (unsigned)getpid() & 0xfffff);
    ifk_status st = ifk_ingest_init(&g, m, tok, dir, &man->p, prefix, 0);
    for (int i = 0; st == IFK_OK && i < n; i++) {
        if (ifk_manifest_find(man, docs[i].id) >= 0) continue;
        int dup = 0;
        for (int j = 0; j < g.n_pending; j++) dup |= !strcmp(g.pending[j].id, docs[i].id);
        if (dup) continue;
        ifk_ingest_doc_in in = {.id = docs[i].id, .text = docs[i].text, .text_len = strlen(docs[i].text)};
        st = ifk_ingest_doc(&g, &in, dir, NULL, NULL);
        if (st == IFK_OK) (*added)++;
    }
    if (st == IFK_OK) st = ifk_ingest_commit(&g, record_, man);
    if (st == IFK_OK && *added) st = ifk_ingest_index(man); /* the index covers every document of the store */
    ifk_ingest_free(&g);
    ifk_ingest_close_store(&man, &fd);
    return st;
}

/* ---- the documents ------------------------------------------------------------------------------- */

/* Collects generated text. */
typedef struct {
    char *b;
    size_t n, cap;
    const ifk_tokenizer *t;
} acc_;

static void acc_cb_(int prev, int t, void *c) {
    acc_ *x = c;
    size_t pl;
    const char *p = ifk_tokenizer_decode(x->t, prev, t, &pl);
    if (x->b && x->n + pl + 1 < x->cap) memcpy(x->b + x->n, p, pl), x->n += pl;
}

ifk_status ifk_eval_docs(const ifk_jobspec *j, const ifk_qitem *items, int n_items, const ifk_model *m,
                         const ifk_tokenizer *tok, int quiet, int *n_hay) {
    int cap = 0, n = 0;
    for (int i = 0; i < n_items; i++) cap += items[i].n_passages;
    if (j->needle) cap += j->haystack_docs + 8;
    text_doc_ *docs = calloc((size_t)cap + 1, sizeof *docs);
    if (!docs) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    ifk_status st = IFK_OK;
    for (int i = 0; i < n_items; i++)
        for (int p = 0; p < items[i].n_passages; p++)
            docs[n].id = strdup(items[i].docs[p]), docs[n++].text = strdup(items[i].passages[p]);
    *n_hay = 0;
    if (j->needle) {
        if (!quiet)
            fprintf(stderr, "eval: sampling %d haystack stories of %d tokens from the model\n", j->haystack_docs,
                    j->haystack_tokens);
        const char *start = "Once upon a time";
        int *sids = NULL, sn;
        st = ifk_tokenizer_encode(tok, start, strlen(start), 1, 0, &sids, &sn);
        for (int h = 0; st == IFK_OK && h < j->haystack_docs; h++) {
            ifk_sampler smp;
            st = ifk_sampler_init(&smp, m->cfg.vocab_size, 1.0f, 0.9f, (uint64_t)(j->needle_seed * 1000 + h + 1));
            if (st != IFK_OK) break;
            acc_ a = {malloc(8192), 0, 8192, tok};
            ifk_gen_stats gs;
            int steps = j->haystack_tokens + sn < m->cfg.seq_len ? j->haystack_tokens + sn : m->cfg.seq_len;
            if (a.b) st = ifk_generate(m, &smp, sids, sn, steps, acc_cb_, &a, &gs);
            else st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
            ifk_sampler_free(&smp);
            if (!a.b) break;
            a.b[a.n] = '\0';
            char id[32];
            snprintf(id, sizeof id, "hay-%03d", h);
            docs[n].id = strdup(id);
            docs[n++].text = a.b;
        }
        free(sids);
        *n_hay = j->haystack_docs;
        for (int k = 0; st == IFK_OK && k < 8; k++) {
            char id[32], text[128];
            snprintf(id, sizeof id, "needle-%d", k);
            snprintf(text, sizeof text, "Once upon a time, there was a %s named %s.", ifk_needle_animal[k], ifk_needle_name[k]);
            docs[n].id = strdup(id);
            docs[n++].text = strdup(text);
        }
    }
    int added = 0;
    if (st == IFK_OK && n) st = cache_texts_(m, tok, j->store, docs, n, &added);
    if (st == IFK_OK && added && !quiet) fprintf(stderr, "eval: cached %d documents into %s\n", added, j->store);
    for (int i = 0; i < n; i++) free(docs[i].id), free(docs[i].text);
    free(docs);
    return st;
}
