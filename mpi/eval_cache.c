/* eval_cache.c — the documents `infoflow eval` adds to its store (eval_cache.h): rank 0 lists what
 * the store lacks, the groups sample the needle haystack stories tensor-parallel, then every rank
 * caches them through `infoflow cache`'s run. Moved out of cmd_eval.c. */
#include "eval_cache.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "chunk.h"
#include "cli.h"
#include "corpus.h"
#include "decode.h"
#include "eval_docs.h"
#include "sampler.h"
#include "store.h"
#include "strmap.h"

/* ---- what eval caches: LongBench passages, needle haystacks (every rank) ------------------------- */

/* Collects generated text (rank 0 of a group). */
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

/* The documents eval adds to its store: rank 0 lists them, the groups sample the haystack stories
 * (a story is a task of the grid), then every rank caches them with `infoflow cache`'s run. */
typedef struct {
    const ifk_eval_env *x;
    char **ids, **texts; /* (n) rank 0: the documents the store lacks; a story's text comes from its task */
    int n, cap;
    ifk_strmap *seen;    /* ids listed or already in the store */
    int *story_doc, *story_h, n_stories; /* rank 0: stories to sample: their document and seed index */
    int *start, n_start; /* rank 0: "Once upon a time" as ids, BOS first */
} docs_;

/* Lists id (rank 0) unless the store has it or it is listed; text NULL: a story to sample. */
static ifk_status want_doc_(docs_ *y, const ifk_store *have, const char *id, const char *text) {
    if (ifk_strmap_get(y->seen, id, strlen(id), NULL)) return IFK_OK;
    IFK_CHECK(ifk_strmap_put(y->seen, id, strlen(id), 0));
    if (have && ifk_manifest_find(ifk_store_manifest(have), id) >= 0) return IFK_OK;
    if (y->n == y->cap) {
        y->cap = y->cap ? 2 * y->cap : 64;
        char **a = realloc(y->ids, sizeof *a * (size_t)y->cap), **b = a ? realloc(y->texts, sizeof *b * (size_t)y->cap) : NULL;
        if (a) y->ids = a;
        if (b) y->texts = b;
        if (!a || !b) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    y->ids[y->n] = strdup(id);
    y->texts[y->n] = text ? strdup(text) : NULL;
    if (!y->ids[y->n] || (text && !y->texts[y->n])) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    y->n++;
    return IFK_OK;
}

/* Rank 0: every LongBench item's passages, then for the needle grid j->haystack_docs stories and
 * the eight needles, each unless the store (if there is one yet) has it. */
static ifk_status plan_docs_(docs_ *y, const ifk_qitem *items, int n_items) {
    const ifk_jobspec *j = y->x->j;
    char mp[4200];
    snprintf(mp, sizeof mp, "%s/manifest.json", j->store);
    ifk_store *have = NULL;
    ifk_status st = ifk_strmap_create(&y->seen, 64);
    if (st == IFK_OK && access(mp, F_OK) == 0) st = ifk_store_open(&have, j->store);
    for (int i = 0; st == IFK_OK && i < n_items; i++)
        for (int p = 0; st == IFK_OK && p < items[i].n_passages; p++)
            st = want_doc_(y, have, items[i].docs[p], items[i].passages[p]);
    if (st == IFK_OK && j->needle) {
        y->story_doc = malloc(sizeof(int) * (size_t)(j->haystack_docs + 1));
        y->story_h = malloc(sizeof(int) * (size_t)(j->haystack_docs + 1));
        if (!y->story_doc || !y->story_h) st = IFK_FAIL(IFK_ERR_OOM, "out of memory");
        const char *start = "Once upon a time";
        if (st == IFK_OK) st = ifk_tokenizer_encode(y->x->tok, start, strlen(start), 1, 0, &y->start, &y->n_start);
        for (int h = 0; st == IFK_OK && h < j->haystack_docs; h++) {
            char id[32];
            snprintf(id, sizeof id, "hay-%03d", h);
            const int before = y->n;
            st = want_doc_(y, have, id, NULL);
            if (st == IFK_OK && y->n > before) y->story_doc[y->n_stories] = before, y->story_h[y->n_stories++] = h;
        }
        for (int k = 0; st == IFK_OK && k < IFK_NEEDLES; k++) {
            char id[32], text[128];
            snprintf(id, sizeof id, "needle-%d", k);
            snprintf(text, sizeof text, "Once upon a time, there was a %s named %s.", ifk_needle_animal[k], ifk_needle_name[k]);
            st = want_doc_(y, have, id, text);
        }
    }
    ifk_store_close(&have);
    return st;
}

/* A story task: {h, steps, n, ids[n]}, sampled with seed needle_seed * 1000 + h + 1 (1.0, top-p 0.9). */
static int story_get_(int i, int **ints, void *ctx) {
    const docs_ *y = ctx;
    const int sn = y->n_start, seq = y->x->full->cfg.seq_len, T = y->x->j->haystack_tokens;
    int *t = *ints = malloc(sizeof(int) * (size_t)(3 + sn));
    IFK_ASSERT(t);
    t[0] = y->story_h[i], t[1] = T + sn < seq ? T + sn : seq, t[2] = sn;
    memcpy(t + 3, y->start, sizeof(int) * (size_t)sn);
    return 3 + sn;
}

/* Every rank of the group samples the story together (ifk_generate_tp); rank 0 returns its text. */
static ifk_status story_run_(const int *t, int n, char **res, size_t *len, void *ctx) {
    const ifk_eval_env *x = ((const docs_ *)ctx)->x;
    IFK_CHECK_ARG(n >= 3 && n == 3 + t[2], "eval: a story task of %d ints is malformed", n);
    const int lead = !x->tp || x->tp->rank == 0;
    ifk_sampler smp;
    IFK_CHECK(ifk_sampler_init(&smp, x->full->cfg.vocab_size, 1.0f, 0.9f, (uint64_t)(x->j->needle_seed * 1000 + t[0] + 1)));
    acc_ a = {lead ? malloc(8192) : NULL, 0, 8192, x->tok};
    ifk_gen_stats gs;
    if (lead && a.b && t[2] && t[3] != ifk_tokenizer_bos(x->tok)) acc_cb_(-1, t[3], &a); /* a tokenizer without BOS */
    ifk_status st = lead && !a.b ? IFK_FAIL(IFK_ERR_OOM, "out of memory")
                                 : ifk_generate_tp(x->m, x->tp, &smp, t + 3, t[2], t[1], lead ? acc_cb_ : NULL, &a, &gs);
    ifk_sampler_free(&smp);
    if (st != IFK_OK) free(a.b), a.b = NULL, a.n = 0;
    *res = a.b, *len = a.n;
    return st;
}

static void story_done_(int i, const char *buf, size_t len, void *ctx) {
    docs_ *y = ctx;
    char *text = malloc(len + 1);
    if (!text) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_comm_abort(y->x->cm);
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    y->texts[y->story_doc[i]] = text;
}

/* One corpus line's string: JSON, with any byte that is not UTF-8 (a sampled byte token) written
 * as U+FFFD, since a corpus holds UTF-8 only (corpus.h). */
static ifk_status json_utf8_(FILE *f, const char *s) {
    const size_t n = strlen(s);
    if (ifk_utf8_valid(s, n)) {
        ifk_json_str(f, s, n);
        return IFK_OK;
    }
    char *b = malloc(3 * n + 1);
    if (!b) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int k = 1;
        while (k <= 4 && !(i + (size_t)k <= n && ifk_utf8_valid(s + i, (size_t)k))) k++;
        if (k <= 4) memcpy(b + m, s + i, (size_t)k), m += (size_t)k, i += (size_t)k;
        else memcpy(b + m, "\xEF\xBF\xBD", 3), m += 3, i++;
    }
    ifk_json_str(f, b, m);
    free(b);
    return IFK_OK;
}

/* Rank 0: the documents as a corpus file for the cache run. */
static ifk_status write_corpus_(const docs_ *y, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    ifk_status st = IFK_OK;
    for (int i = 0; st == IFK_OK && i < y->n; i++) {
        fputs("{\"id\": ", f);
        st = json_utf8_(f, y->ids[i]);
        fputs(", \"text\": ", f);
        if (st == IFK_OK) st = json_utf8_(f, y->texts[i] ? y->texts[i] : "");
        fputs("}\n", f);
    }
    if (fclose(f) != 0 && st == IFK_OK) st = IFK_FAIL(IFK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return st;
}

/* The documents the job needs in its store: every LongBench item's passages, and for the needle
 * grid haystack stories sampled from the model itself (one seed each) and the eight needles.
 * Collective: the groups sample the stories the store lacks (tensor-parallel within a group), then
 * cache what it lacks as `infoflow cache` would (a temporary corpus in the output folder, read by
 * rank 0 and removed after); a new store gets f16 K/V in chunks of 128 tokens, an existing one
 * keeps its layout. Returns the agreed status. */
ifk_status ifk_eval_cache_docs(const ifk_eval_env *x, const ifk_grid *grid, const ifk_qitem *items, int n_items) {
    const ifk_jobspec *j = x->j;
    const ifk_comm *cm = grid->world;
    docs_ y = {.x = x};
    ifk_status st = cm->rank == 0 ? plan_docs_(&y, items, n_items) : IFK_OK;
    if ((st = ifk_comm_agree(cm, st)) != IFK_OK) goto out;
    int counts[2] = {y.n_stories, y.n};
    MPI_Bcast(counts, 2, MPI_INT, 0, cm->comm);
    if (counts[0] > 0) {
        if (!x->quiet && cm->rank == 0)
            fprintf(stderr, "eval: sampling %d haystack stories of %d tokens from the model\n", counts[0],
                    j->haystack_tokens);
        const ifk_farm farm = {story_get_, story_run_, story_done_, &y};
        ifk_grid_farm(grid, counts[0], &farm);
    }
    if (counts[1] == 0) goto out;
    char corpus[4400];
    snprintf(corpus, sizeof corpus, "%s/.eval-cache-corpus.jsonl", j->out);
    if (cm->rank == 0) st = write_corpus_(&y, corpus);
    if ((st = ifk_comm_agree(cm, st)) != IFK_OK) goto out;
    ifk_cache_opts co = {.corpus = corpus, .store = j->store, .dtype = IFK_DT_F16, .split = IFK_SPLIT_TOKENS,
                         .chunk_tokens = 128 < x->full->cfg.seq_len - 1 ? 128 : x->full->cfg.seq_len - 1,
                         .keep_layout = 1, .quiet = x->quiet, .commit_docs = 64, .commit_secs = 60, .progress_secs = 10};
    long cached = 0;
    st = ifk_cache_run(grid, &co, x->full, x->tp ? x->m : NULL, x->tok, &cached);
    if (cm->rank == 0) {
        unlink(corpus);
        if (st == IFK_OK && cached && !x->quiet) fprintf(stderr, "eval: cached %ld document%s into %s\n", cached, IFK_S(cached), j->store);
    }
out:
    for (int i = 0; i < y.n; i++) free(y.ids[i]), free(y.texts[i]);
    free(y.ids), free(y.texts), free(y.story_doc), free(y.story_h), free(y.start);
    ifk_strmap_free(&y.seen);
    return st;
}

