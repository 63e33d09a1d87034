/* cmd_cache.c — `infoflow cache`: the offline phase. Rank 0 coordinates: it checks the corpus,
 * hands documents out longest first within a look-ahead window (corpus.h), one at a time with two in flight per worker, and records
 * each committed shard in the manifest. The ranks form groups of --tp consecutive ranks (grid.h);
 * a group's rank 0 is a worker (rank 0 too, unless --dedicated-coordinator): it chunks its
 * documents, prefills each chunk together with its group (each rank its slice of the heads, the
 * ifk_tp hooks on the group's communicator), gathers the chunk's K/V of every head and writes its
 * own shards; at --tp 1 every rank prefills alone, as a one-rank job does (bitwise identical
 * stores). A rank failure ends the job (MPI_Abort); rerunning the same command resumes. */
#define IFK_STR_(x) #x
#define IFK_STR(x) IFK_STR_(x)
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bm25.h"
#include "cache.h"
#include "chunk.h"
#include "cli.h"
#include "comm.h"
#include "corpus.h"
#include "drivers.h"
#include "engine.h"
#include "fault.h"
#include "ingest.h"
#include "store.h"
#include "shard_writer.h"
#include "store_maint.h"
#include "sys.h"
#include "grid.h"
#include "tp.h"

#define PREFETCH 2 /* documents in flight per worker: one being cached, one waiting */

/* The command line: the model to load, then the run's options (cache.h). */
typedef struct {
    const char *model, *random_model, *tokenizer, *chunk_s, *split_s, *dtype_s, *commit_docs_s, *commit_secs_s,
        *threads_s, *progress_s, *compress_s, *tp_s, *weights_s, *window_s;
    int help;
    long threads, tp;
    ifk_cache_opts run;
} opts_;

/* A group's prefill of one chunk (tp > 1): every rank its slice; the group's rank 0 broadcasts
 * the chunk's tokens first and gathers every rank's KV heads after. */
typedef struct {
    const ifk_grid *grid;
    const ifk_model *slice; /* this rank's slice of the model (the caller's) */
    ifk_state s;
    ifk_kvcache cache;
    ifk_tp_mpi tpm;
    float *kl, *vl;       /* (L, Hkv/tp, chunk, Dh) this rank's heads */
    float *gk, *gv;       /* (tp, L, Hkv/tp, n, Dh) gathered, the group's rank 0 */
    int chunk_tokens;
    /* what this rank handed to MPI (docs/scaling.md): chunks, their tokens, payload bytes of the
     * tokens' broadcast and of the gathers (the all-reduces: tpm.tp.comm_bytes), seconds in all */
    long chunks, tokens;
    double bcast_bytes, gather_bytes, seconds;
} gprefill_;

/* What a rank needs to cache documents: the model and its ingester (pipeline/ingest.h); rank 0
 * also holds the store's manifest and lock. */
typedef struct {
    const ifk_comm *comm;
    const ifk_cache_opts *o;
    const ifk_grid *grid;
    gprefill_ gp;
    const ifk_model *m;
    const ifk_tokenizer *tok;
    ifk_store_params sp;
    char run_id[64];
    ifk_ingest g;
    ifk_manifest *man;    /* rank 0 only */
    int lock_fd;
    char created[1024];   /* rank 0: the outermost folder of --store this run made ("" if it existed) */
} worker_;

/* ---- a store this run created, removed when the run fails before caching anything ---------------- */

/* The outermost folder of dir (dir itself, or a parent) that does not exist yet, into out[n]; "" if dir exists. */
static void first_missing_(const char *dir, char *out, size_t n) {
    out[0] = '\0';
    char p[1024];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return;
    struct stat st;
    for (char *s = p + 1;; s++) {
        const char c = *s;
        if (c != '/' && c != '\0') continue;
        *s = '\0';
        if (stat(p, &st) != 0 && errno == ENOENT) {
            snprintf(out, n, "%s", p);
            return;
        }
        *s = c;
        if (!c) return;
    }
}

/* Rank 0, when the run fails before anything was cached (the corpus check): a store folder this run
 * created is removed with its parents that it created, so a failed first `cache` leaves nothing
 * behind (breaker s3 #10); an existing store keeps what it held. The error message is kept. */
static void remove_new_store_(worker_ *w, ifk_status code) {
    if (!w->created[0]) return;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", ifk_errmsg());
    ifk_ingest_close_store(&w->man, &w->lock_fd);
    char p[1100];
    snprintf(p, sizeof p, "%s/.lock", w->o->store);
    if (ifk_store_wipe(w->o->store) == IFK_OK && (unlink(p) == 0 || errno == ENOENT)) {
        snprintf(p, sizeof p, "%s", w->o->store);
        const size_t keep = strlen(w->created);
        for (;;) { /* the store, then each parent up to the outermost one this run made */
            if (rmdir(p) != 0) break;
            char *slash = strrchr(p, '/');
            if (strlen(p) <= keep || !slash) break;
            *slash = '\0';
            if (strlen(p) < keep) break;
        }
    }
    IFK_FAIL(code, "%s", msg);
}

/* ---- one document, one commit ---------------------------------------------------------------------- */

static ifk_status cache_doc_(worker_ *w, const ifk_doc *d, const char *where, void (*between)(void *), void *ctx) {
    ifk_ingest_doc_in in = {.id = d->id, .text = d->text, .text_len = d->text_len, .tokens = d->tokens,
                            .n_tokens = d->n_tokens};
    return ifk_ingest_doc(&w->g, &in, where, between, ctx);
}

static int commit_due_(const worker_ *w, int force) {
    return ifk_ingest_commit_due(&w->g, w->o->commit_docs, w->o->commit_secs, force);
}

/* Rank 0 records a commit in the manifest itself. */
static ifk_status record_here_(const char *shard, ifk_doc_rec *recs, int n, void *ctx) {
    return ifk_ingest_record(((worker_ *)ctx)->man, shard, recs, n);
}

/* Other ranks send it to rank 0: the shard's name, a newline, the document records as JSON. */
static ifk_status record_remote_(const char *shard, ifk_doc_rec *recs, int n, void *ctx) {
    const worker_ *w = ctx;
    char *js = ifk_doc_recs_to_json(recs, n);
    size_t nl = strlen(shard), jl = js ? strlen(js) : 0;
    char *msg = malloc(nl + jl + 2);
    if (!js || !msg) {
        free(js), free(msg);
        return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    }
    memcpy(msg, shard, nl);
    msg[nl] = '\n';
    memcpy(msg + nl + 1, js, jl + 1);
    MPI_Send(msg, (int)(nl + jl + 2), MPI_CHAR, 0, IFK_TAG_COMMIT, w->comm->comm);
    free(js), free(msg);
    return IFK_OK;
}

/* Closes and renames the open shard, then records it: in the manifest on rank 0, by a message to
 * rank 0 elsewhere. Either way the manifest lists it only after it is complete on disk. */
static ifk_status commit_(worker_ *w) {
    return ifk_ingest_commit(&w->g, w->man ? record_here_ : record_remote_, w);
}

/* ---- messages ------------------------------------------------------------------------------------ */

/* DOC message: int64 header {ordinal (-1 = no more documents), line} then the JSON line itself,
 * which the worker parses with the same corpus reader. */
typedef struct {
    int64_t ordinal, line; /* a corpus of any length: no wrap past 2^31 lines */
} doc_hdr_;

typedef struct {
    MPI_Request req;
    char *buf;
} pending_send_;

/* ---- the coordinator ----------------------------------------------------------------------------- */
/* Its memory does not grow with the corpus (storage/corpus.h): a checking pass (duplicate ids in a
 * temporary SQLite table) refuses a bad corpus before anything is cached, then a second pass hands
 * documents out longest first within a look-ahead of --queue-window documents. */

typedef struct {
    worker_ *w;
    ifk_corpus_stream corpus; /* checked, then streamed: longest first within its look-ahead */
    long n_docs, n_queue;     /* good documents in the corpus; of them, to cache */
    int exhausted;            /* every document to cache was handed out */
    ifk_store *have;          /* the store as a reader, for the resume check */
    int *in_flight;  /* per worker rank: documents sent and not yet reported */
    char *stopped;   /* per worker rank: the end was sent */
    int done_workers;
    pending_send_ *sends;
    int n_sends, cap_sends;
    /* progress */
    double t0, last_print, bytes_total, bytes_done;
    long docs_done, tokens_done;
    int tty;
} coord_;

static void progress_(coord_ *c, int final) {
    if (c->w->o->quiet) return;
    double now = ifk_now(), el = now - c->t0;
    if (!final && now - c->last_print < (c->tty ? 0.25 : c->w->o->progress_secs)) return;
    c->last_print = now;
    double rate = el > 0 ? c->tokens_done / el : 0, brate = el > 0 ? c->bytes_done / el : 0;
    double eta = brate > 0 ? (c->bytes_total - c->bytes_done) / brate : 0;
    if (!(eta > 0) || final) eta = 0; /* never "ETA -0 s" */
    if (c->tty) {
        int bar = c->n_queue ? (int)(30.0 * (double)c->docs_done / (double)c->n_queue) : 30;
        char b[31];
        for (int i = 0; i < 30; i++) b[i] = i < bar ? '#' : '.';
        b[30] = '\0';
        fprintf(stderr, "\r[%s] %ld/%ld docs  %.0f tok/s  ETA %02d:%02d%s", b, c->docs_done, c->n_queue, rate,
                (int)eta / 60, (int)eta % 60, final ? "\n" : "");
    } else {
        fprintf(stderr, "cache: %ld/%ld docs, %ld token%s, %.0f tok/s, elapsed %.0f s, ETA %.0f s\n", c->docs_done,
                c->n_queue, c->tokens_done, IFK_S(c->tokens_done), rate, el, eta);
    }
    fflush(stderr);
}

/* The next document to hand out into *e: 1, or 0 once all were (the stream reads on). */
static int next_(coord_ *c, ifk_corpus_entry *e) {
    int got = 0;
    if (!c->exhausted && ifk_corpus_stream_next(&c->corpus, e, &got) != IFK_OK) ifk_comm_abort(c->w->comm);
    if (!got) c->exhausted = 1;
    return got;
}

static void send_next_(coord_ *c, int dst) {
    const ifk_comm *cm = c->w->comm;
    if (c->stopped[dst]) return;
    doc_hdr_ h = {-1, 0};
    size_t len = 0;
    char *line = NULL;
    ifk_corpus_entry e;
    if (next_(c, &e)) {
        h.ordinal = e.ordinal;
        h.line = e.line;
        len = e.length;
        if (ifk_corpus_read_line(&c->corpus, &e, &line) != IFK_OK) ifk_comm_abort(cm);
        c->in_flight[dst]++;
    } else {
        c->stopped[dst] = 1;
    }
    char *buf = malloc(sizeof h + len);
    if (!buf) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_comm_abort(cm);
    }
    memcpy(buf, &h, sizeof h);
    if (len) memcpy(buf + sizeof h, line, len);
    free(line);
    if (c->n_sends == c->cap_sends) {
        c->cap_sends = c->cap_sends ? 2 * c->cap_sends : 16;
        c->sends = realloc(c->sends, sizeof *c->sends * c->cap_sends);
        if (!c->sends) {
            IFK_FAIL(IFK_ERR_OOM, "out of memory");
            ifk_comm_abort(cm);
        }
    }
    pending_send_ *p = &c->sends[c->n_sends++];
    p->buf = buf;
    MPI_Isend(buf, (int)(sizeof h + len), MPI_CHAR, dst, IFK_TAG_DOC, cm->comm, &p->req);
}

static void reap_sends_(coord_ *c) {
    for (int i = 0; i < c->n_sends;) {
        int done = 0;
        MPI_Test(&c->sends[i].req, &done, MPI_STATUS_IGNORE);
        if (done) {
            free(c->sends[i].buf);
            c->sends[i] = c->sends[--c->n_sends];
        } else {
            i++;
        }
    }
}

/* Handles one message from a worker. */
static void handle_(coord_ *c, MPI_Status *s) {
    const ifk_comm *cm = c->w->comm;
    int n;
    MPI_Get_count(s, MPI_CHAR, &n);
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_comm_abort(cm);
    }
    MPI_Recv(buf, n, MPI_CHAR, s->MPI_SOURCE, s->MPI_TAG, cm->comm, MPI_STATUS_IGNORE);
    buf[n] = '\0';
    if (s->MPI_TAG == IFK_TAG_REQ) {
        int64_t r[3]; /* ordinal, tokens, size (ifk_doc_size) */
        memcpy(r, buf, sizeof r);
        c->in_flight[s->MPI_SOURCE]--;
        c->docs_done++;
        c->tokens_done += (long)r[1];
        c->bytes_done += (double)r[2];
        send_next_(c, s->MPI_SOURCE);
        progress_(c, 0);
    } else if (s->MPI_TAG == IFK_TAG_COMMIT) {
        char *nl = strchr(buf, '\n');
        ifk_doc_rec *docs = NULL;
        int nd = 0;
        if (!nl) {
            IFK_FAIL(IFK_ERR_INTERNAL, "malformed commit message from rank %d", s->MPI_SOURCE);
            ifk_comm_abort(cm);
        }
        *nl = '\0';
        if (ifk_doc_recs_from_json(nl + 1, &docs, &nd) != IFK_OK || ifk_ingest_record(c->w->man, buf, docs, nd) != IFK_OK)
            ifk_comm_abort(cm);
        for (int i = 0; i < nd; i++) ifk_doc_rec_free(&docs[i]);
        free(docs);
    } else if (s->MPI_TAG == IFK_TAG_DONE) {
        c->done_workers++;
    }
    free(buf);
}

static void service_(void *ctx) {
    coord_ *c = ctx;
    const ifk_comm *cm = c->w->comm;
    for (;;) {
        int flag = 0;
        MPI_Status s;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, cm->comm, &flag, &s);
        if (!flag) break;
        handle_(c, &s);
    }
    reap_sends_(c);
}

/* Pass 1 (ifk_corpus_check), per good document: one the store already holds must hold what the
 * corpus gives (else the run is refused before anything is cached); the others are counted. */
static ifk_status check_each_(const ifk_corpus_entry *e, const char *id, void *ctx) {
    coord_ *c = ctx;
    const ifk_cache_opts *o = c->w->o;
    c->n_docs++;
    const int rd = ifk_manifest_find(c->w->man, id);
    if (rd < 0) {
        c->n_queue++;
        c->bytes_total += (double)e->size;
        return IFK_OK;
    }
    ifk_doc d;
    char where[1100];
    snprintf(where, sizeof where, "%s:%ld", o->corpus, e->line);
    if (!c->have) IFK_CHECK(ifk_store_open(&c->have, o->store));
    IFK_CHECK(ifk_corpus_read_entry(&c->corpus, e, &d));
    ifk_status st = ifk_ingest_same_doc(c->have, rd, d.id, d.text, d.text_len, d.tokens, d.n_tokens, where);
    ifk_doc_free(&d);
    ifk_store_forget(c->have);
    return st;
}

/* Pass 2: a document the store lacks is handed out. Documents cached by this run are not seen
 * again (ids are unique), so this finds only what the store held before. O(log N). */
static int keep_(const char *id, void *ctx) { return ifk_manifest_find(((coord_ *)ctx)->w->man, id) < 0; }

/* A checked corpus with no good document: an error, not an empty store and exit 0. */
static ifk_status nothing_to_cache_(const ifk_cache_opts *o, const ifk_corpus_stream *s) {
    if (s->n_bad)
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: no document to cache: %s bad (--skip-bad); the first: %s", o->corpus,
                        s->n_bad == 1 ? "its only line is" : "all its lines are", s->bad[0]);
    return IFK_FAIL(IFK_ERR_FORMAT, "%s: no document to cache: the file holds only blank lines", o->corpus);
}

/* --force empties the store before caching: the corpus is checked first (pass 1 with nothing to
 * skip), so that a corpus the run would refuse leaves the store as it was. */
static ifk_status precheck_force_(const ifk_cache_opts *o, const ifk_model *m, ifk_split split) {
    ifk_corpus_stream s;
    ifk_status st = ifk_corpus_check(&s, o->corpus, o->skip_bad, m->cfg.vocab_size, split, NULL, NULL);
    if (st == IFK_OK && s.n == 0) st = nothing_to_cache_(o, &s);
    ifk_corpus_stream_free(&s);
    return st;
}

static void coordinate_(worker_ *w, long *cached) {
    const ifk_comm *cm = w->comm;
    const ifk_cache_opts *o = w->o;
    coord_ c = {.w = w};
    ifk_status cst = ifk_corpus_check(&c.corpus, o->corpus, o->skip_bad, w->m->cfg.vocab_size, w->sp.split, check_each_, &c);
    if (cst == IFK_OK && c.n_docs == 0) cst = nothing_to_cache_(o, &c.corpus);
    if (cst != IFK_OK) {
        ifk_store_close(&c.have);
        remove_new_store_(w, cst);
        ifk_comm_abort(cm);
    }
    ifk_store_close(&c.have);
    const long skipped = c.n_docs - c.n_queue;
    if (ifk_corpus_stream_start(&c.corpus, o->queue_window, keep_, &c) != IFK_OK) ifk_comm_abort(cm);
    c.in_flight = calloc((size_t)cm->size, sizeof(int));
    c.stopped = calloc((size_t)cm->size, 1);
    if (!c.in_flight || !c.stopped) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_comm_abort(cm);
    }
    c.t0 = c.last_print = ifk_now();
    c.tty = isatty(2);
    if (!o->quiet)
        fprintf(stderr, "cache: %ld document%s in %s, %ld already in the store, %ld to cache on %d rank%s%s%s\n",
                c.n_docs, IFK_S(c.n_docs), o->corpus, skipped, c.n_queue, cm->size, cm->size > 1 ? "s" : "",
                o->dedicated && cm->size > 1 ? " (rank 0 only coordinates)" : "", w->grid->tp > 1 ? ", groups of --tp ranks" : "");
    ifk_fault("cache.queued"); /* the corpus checked, the look-ahead filled: jobs/bench_corpus_mem.sh looks here */
    const int tp = w->grid->tp;
    for (int r = tp; r < cm->size; r += tp) /* the other groups' rank 0 */
        for (int k = 0; k < PREFETCH; k++) send_next_(&c, r);
    const int self = !(o->dedicated && cm->size > 1);
    for (;;) {
        service_(&c);
        ifk_corpus_entry e;
        if (self && next_(&c, &e)) {
            ifk_doc d;
            char where[1100];
            snprintf(where, sizeof where, "%s:%ld", c.corpus.path, e.line);
            if (ifk_corpus_read_entry(&c.corpus, &e, &d) != IFK_OK || cache_doc_(w, &d, where, service_, &c) != IFK_OK)
                ifk_comm_abort(cm);
            c.docs_done++;
            c.tokens_done += ifk_ingest_last_tokens(&w->g);
            c.bytes_done += (double)e.size;
            ifk_doc_free(&d);
            if (commit_due_(w, 0) && commit_(w) != IFK_OK) ifk_comm_abort(cm);
            progress_(&c, 0);
            continue;
        }
        if (commit_due_(w, 1) && commit_(w) != IFK_OK) ifk_comm_abort(cm);
        if (c.exhausted && c.done_workers == w->grid->n_groups - 1) break;
        MPI_Status s; /* nothing of our own to do: wait for a worker */
        MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, cm->comm, &s);
        handle_(&c, &s);
    }
    while (c.n_sends > 0) reap_sends_(&c);
    if (c.n_queue) progress_(&c, 1); /* nothing to cache: no "0/0 docs" line (the summary says it) */
    double el = ifk_now() - c.t0;
    if (!o->quiet)
        fprintf(stderr, "cache: cached %ld document%s (%ld token%s) in %.1f s, %.0f tok/s; the store holds %d document%s, "
                "%lld chunk%s, %lld token%s\n", c.docs_done, IFK_S(c.docs_done), c.tokens_done, IFK_S(c.tokens_done), el,
                el > 0 ? c.tokens_done / el : 0.0, w->man->n_docs, IFK_S(w->man->n_docs), w->man->n_chunks,
                IFK_S(w->man->n_chunks), w->man->n_tokens, IFK_S(w->man->n_tokens));
    for (int i = 0; i < c.corpus.n_bad; i++) fprintf(stderr, "cache: skipped bad line: %s\n", c.corpus.bad[i]);
    *cached = c.docs_done;
    free(c.in_flight);
    free(c.stopped);
    free(c.sends);
    ifk_corpus_stream_free(&c.corpus);
}

/* ---- a worker ----------------------------------------------------------------------------------- */

static void work_(worker_ *w) {
    const ifk_comm *cm = w->comm;
    for (;;) {
        MPI_Status s;
        MPI_Probe(0, IFK_TAG_DOC, cm->comm, &s);
        int n;
        MPI_Get_count(&s, MPI_CHAR, &n);
        char *buf = malloc((size_t)n + 1);
        if (!buf) {
            IFK_FAIL(IFK_ERR_OOM, "out of memory");
            ifk_comm_abort(cm);
        }
        MPI_Recv(buf, n, MPI_CHAR, 0, IFK_TAG_DOC, cm->comm, MPI_STATUS_IGNORE);
        doc_hdr_ h;
        memcpy(&h, buf, sizeof h);
        if (h.ordinal < 0) {
            free(buf);
            break;
        }
        buf[n] = '\0';
        ifk_doc d;
        char where[1100];
        snprintf(where, sizeof where, "%s:%lld", w->o->corpus, (long long)h.line);
        if (ifk_doc_parse(buf + sizeof h, (size_t)n - sizeof h, where, &d) != IFK_OK ||
            cache_doc_(w, &d, where, NULL, NULL) != IFK_OK)
            ifk_comm_abort(cm);
        const int64_t size = (int64_t)ifk_doc_size(&d);
        ifk_doc_free(&d);
        free(buf);
        ifk_fault("worker.doc"); /* a worker dying or leaving after N documents */
        int64_t r[3] = {h.ordinal, ifk_ingest_last_tokens(&w->g), size};
        if (commit_due_(w, 0) && commit_(w) != IFK_OK) ifk_comm_abort(cm);
        MPI_Send(r, (int)sizeof r, MPI_CHAR, 0, IFK_TAG_REQ, cm->comm);
    }
    if (commit_due_(w, 1) && commit_(w) != IFK_OK) ifk_comm_abort(cm);
    MPI_Send(NULL, 0, MPI_CHAR, 0, IFK_TAG_DONE, cm->comm);
}

/* ---- a group's prefill (--tp > 1) ------------------------------------------------------------------ */

/* Every rank of the group: the chunk's tokens from the group's rank 0 (n < 0: the end), its slice
 * prefilled, its heads gathered to rank 0. Returns n. */
static int gprefill_step_(gprefill_ *g, int n, const int *tokens, int *tbuf) {
    const ifk_comm *gc = &g->grid->group;
    double t0 = MPI_Wtime();
    MPI_Bcast(&n, 1, MPI_INT, 0, gc->comm);
    if (n < 0) return n;
    if (gc->rank == 0) memcpy(tbuf, tokens, sizeof(int) * (size_t)n);
    MPI_Bcast(tbuf, n, MPI_INT, 0, gc->comm);
    g->seconds += MPI_Wtime() - t0;
    ifk_status st = ifk_fault("group.chunk") /* a rank of a group failing (tests) */
                        ? IFK_FAIL(IFK_ERR_INTERNAL, "injected failure in a group's chunk prefill")
                        : ifk_prefill_chunk(g->slice, &g->s, &g->cache, tbuf, n, g->kl, g->vl);
    if (st != IFK_OK) ifk_comm_abort(gc);
    const ifk_config *c = &g->slice->cfg;
    const int cnt = c->n_layers * c->n_kv_heads * n * c->head_dim;
    t0 = MPI_Wtime();
    MPI_Gather(g->kl, cnt, MPI_FLOAT, g->gk, cnt, MPI_FLOAT, 0, gc->comm);
    MPI_Gather(g->vl, cnt, MPI_FLOAT, g->gv, cnt, MPI_FLOAT, 0, gc->comm);
    g->seconds += MPI_Wtime() - t0;
    g->chunks++, g->tokens += n;
    g->bcast_bytes += 4.0 * (1 + n);
    g->gather_bytes += 2.0 * 4 * cnt;
    return n;
}

/* The group's rank 0, as the ingester's prefill: rank r's heads [r kvl, (r+1) kvl) into place. */
static ifk_status gprefill_lead_(const int *tokens, int n, float *k, float *v, void *ctx) {
    gprefill_ *g = ctx;
    int tbuf_[1];
    int *tbuf = n <= 1 ? tbuf_ : malloc(sizeof(int) * (size_t)n);
    if (!tbuf) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    gprefill_step_(g, n, tokens, tbuf);
    if (tbuf != tbuf_) free(tbuf);
    const ifk_config *c = &g->slice->cfg;
    const int tp = g->grid->tp, kvl = c->n_kv_heads, L = c->n_layers;
    const size_t blk = (size_t)n * c->head_dim;
    for (int r = 0; r < tp; r++)
        for (int l = 0; l < L; l++)
            for (int h = 0; h < kvl; h++) {
                const size_t from = (((size_t)r * L + l) * kvl + h) * blk, to = ((size_t)l * kvl * tp + r * kvl + h) * blk;
                memcpy(k + to, g->gk + from, sizeof(float) * blk);
                memcpy(v + to, g->gv + from, sizeof(float) * blk);
            }
    return IFK_OK;
}

/* Every other rank of a group: prefill what the group's rank 0 sends until the end. */
static void gprefill_serve_(gprefill_ *g) {
    int *tbuf = malloc(sizeof(int) * (size_t)g->chunk_tokens);
    if (!tbuf) {
        IFK_FAIL(IFK_ERR_OOM, "out of memory");
        ifk_comm_abort(&g->grid->group);
    }
    while (gprefill_step_(g, 0, NULL, tbuf) >= 0) {}
    free(tbuf);
}

static void gprefill_end_(gprefill_ *g) {
    if (g->grid) gprefill_step_(g, -1, NULL, NULL); /* set up only at --tp > 1 */
}

/* slice: this rank's (ifk_grid_load_model), kept by the caller; g is zero. */
static ifk_status gprefill_init_(gprefill_ *g, const ifk_grid *grid, const ifk_model *full, const ifk_model *slice,
                                 int chunk_tokens) {
    g->grid = grid;
    g->slice = slice;
    g->chunk_tokens = chunk_tokens;
    const ifk_config *c = &slice->cfg;
    IFK_CHECK(ifk_kvcache_init(&g->cache, c, chunk_tokens + IFK_CHUNK_PREFIX));
    ifk_tp_mpi_init(&g->tpm, &grid->group, full->cfg.n_heads);
    g->s.tp = &g->tpm.tp;
    const size_t nel = (size_t)c->n_layers * c->n_kv_heads * chunk_tokens * c->head_dim;
    g->kl = ifk_malloc(nel * sizeof(float), "chunk K slice");
    g->vl = ifk_malloc(nel * sizeof(float), "chunk V slice");
    if (grid->group.rank == 0) {
        g->gk = ifk_malloc(nel * grid->tp * sizeof(float), "gathered chunk K");
        g->gv = ifk_malloc(nel * grid->tp * sizeof(float), "gathered chunk V");
        if (!g->gk || !g->gv) return IFK_ERR_OOM;
    }
    return g->kl && g->vl ? IFK_OK : IFK_ERR_OOM;
}

static void gprefill_free_(gprefill_ *g) {
    free(g->kl), free(g->vl), free(g->gk), free(g->gv);
    ifk_kvcache_free(&g->cache);
    g->s.tp = NULL;
    ifk_state_free(&g->s);
    memset(g, 0, sizeof *g);
}

/* ---- the run ----------------------------------------------------------------------------------- */

/* ifk_store_index_update's lines: a rebuilt segment always, progress unless --quiet. */
static void index_note_(int repair, const char *msg, void *ctx) {
    const ifk_cache_opts *o = ctx;
    if (repair || !o->quiet) fprintf(stderr, "cache: %s\n", msg);
}

/* Rank 0, after the last commit: the BM25 index brought up to date, with a line before (the texts
 * of the new documents are read: about a minute at 120k documents) and one after. */
static ifk_status index_(worker_ *w) {
    const ifk_cache_opts *o = w->o;
    int added = 0, merged = 0;
    const double t0 = ifk_now();
    IFK_CHECK(ifk_ingest_index(w->man, index_note_, (void *)o, &added, &merged));
    char merges[48] = "";
    if (merged) snprintf(merges, sizeof merges, ", %d segment merge%s", merged, merged == 1 ? "" : "s");
    if ((added || merged) && !o->quiet)
        fprintf(stderr, "cache: indexed %d document%s for retrieval in %.1f s%s; the index covers the store's %d "
                "document%s\n", added, IFK_S(added), ifk_now() - t0, merges, w->man->n_docs, IFK_S(w->man->n_docs));
    return IFK_OK;
}

ifk_status ifk_cache_run(const ifk_grid *grid, const ifk_cache_opts *o, const ifk_model *m, const ifk_model *slice,
                         const ifk_tokenizer *tok, long *cached) {
    const ifk_comm *cm = grid->world;
    worker_ w = {.comm = cm, .o = o, .grid = grid, .m = m, .tok = tok, .lock_fd = -1};
    ifk_status st = IFK_OK;
    *cached = 0;
    /* rank 0 opens (or creates) the store and locks it; every rank learns its layout */
    if (cm->rank == 0) {
        char fp[17];
        ifk_model_fingerprint(m, fp);
        ifk_store_params_from_model(&w.sp, m, fp);
        w.sp.dtype = o->dtype;
        w.sp.chunk_tokens = o->chunk_tokens;
        w.sp.split = o->split;
        w.sp.compress = o->compress;
        int removed = 0;
        first_missing_(o->store, w.created, sizeof w.created);
        if (o->force) st = precheck_force_(o, m, o->split);
        if (st == IFK_OK) st = ifk_ingest_open_store(o->store, &w.sp, o->force, o->no_lock, !o->keep_layout, &w.man, &w.lock_fd, &removed);
        if (st == IFK_OK && o->keep_layout) w.sp = w.man->p; /* an existing store's dtype and chunking */
        if (st == IFK_OK && removed && !o->quiet)
            fprintf(stderr, "cache: removed %d incomplete file%s left by an interrupted run\n", removed,
                    removed > 1 ? "s" : "");
        time_t now = time(NULL);
        char t[32];
        strftime(t, sizeof t, "%Y%m%dT%H%M%S", gmtime(&now));
        snprintf(w.run_id, sizeof w.run_id, "%s-%05x", t, (unsigned)getpid() & 0xfffff);
    }
    if ((st = ifk_comm_agree(cm, st)) != IFK_OK) goto out;
    MPI_Bcast(&w.sp, (int)sizeof w.sp, MPI_BYTE, 0, cm->comm);
    MPI_Bcast(w.run_id, (int)sizeof w.run_id, MPI_CHAR, 0, cm->comm);
    if ((st = ifk_comm_agree(cm, grid->tp > 1 ? gprefill_init_(&w.gp, grid, m, slice, w.sp.chunk_tokens) : IFK_OK)) !=
        IFK_OK)
        goto out;
    char prefix[160];
    snprintf(prefix, sizeof prefix, "shard-%s-r%04d", w.run_id, cm->rank);
    /* a group's rank 0 ingests; at --tp > 1 its prefill is the group's */
    st = grid->group.rank == 0 ? ifk_ingest_init(&w.g, m, tok, o->store, &w.sp, prefix, cm->rank) : IFK_OK;
    if (grid->tp > 1) w.g.prefill = gprefill_lead_, w.g.prefill_ctx = &w.gp;
    if ((st = ifk_comm_agree(cm, st)) != IFK_OK) goto out;

    if (cm->rank == 0) coordinate_(&w, cached);
    else if (grid->group.rank == 0) work_(&w);
    else gprefill_serve_(&w.gp);
    if (grid->group.rank == 0) gprefill_end_(&w.gp);
    if (cm->rank == 0 && grid->tp > 1 && !o->quiet) /* jobs/scaling_model.py checks these against its model */
        fprintf(stderr, "cache: rank 0's group communication: %ld chunks, %ld tokens; all-reduce %.0f bytes, gather "
                "%.0f bytes, tokens %.0f bytes; %.3f s\n", w.gp.chunks, w.gp.tokens, w.gp.tpm.tp.comm_bytes,
                w.gp.gather_bytes, w.gp.bcast_bytes, w.gp.seconds + w.gp.tpm.tp.comm_seconds);
    if (cm->rank == 0 && index_(&w) != IFK_OK) ifk_comm_abort(cm);
    st = ifk_comm_agree(cm, IFK_OK); /* every rank returns after the index is written */
out:
    ifk_ingest_free(&w.g);
    gprefill_free_(&w.gp);
    ifk_ingest_close_store(&w.man, &w.lock_fd);
    return st;
}

/* ---- the command ------------------------------------------------------------------------------- */

static ifk_status parse_opts_(int argc, char **argv, opts_ *o) {
    memset(o, 0, sizeof *o);
    ifk_cache_opts *r = &o->run;
    long chunk_tokens = 128, commit_docs = 64, compress = 0;
    r->commit_secs = 60;
    r->progress_secs = 10;
    o->split_s = "tokens";
    o->dtype_s = "f16";
    o->tp = 1;
    const ifk_opt opts[] = {
        {"model", "PATH", "checkpoint file or folder (as for generate)", &o->model, NULL},
        {"random-model", "SHAPE", "random weights of a shape instead (benchmarks; the corpus must give \"tokens\")",
         &o->random_model, NULL},
        {"tokenizer", "FILE", "tokenizer.bin (default: beside the checkpoint)", &o->tokenizer, NULL},
        {"corpus", "FILE", "JSONL, one {\"id\": ..., \"text\": ... | \"tokens\": [...]} per line (required)", &r->corpus,
         NULL},
        {"store", "DIR", "store folder, created if needed (required)", &r->store, NULL},
        {"chunk-tokens", "N", "tokens per chunk at most (default 128)", &o->chunk_s, NULL},
        {"split", "HOW", "tokens: cut every N tokens (default); paragraphs: whole paragraphs packed into chunks",
         &o->split_s, NULL},
        {"dtype", "T", "f16 (default), bf16 or f32", &o->dtype_s, NULL},
        {"compress", "LEVEL", "deflate level 1-9 with shuffle (default 0: none)", &o->compress_s, NULL},
        {"skip-bad", NULL, "skip bad corpus lines and list them at the end, instead of failing", NULL, &r->skip_bad},
        {"force", NULL, "delete what the store holds and cache the corpus into it anew (another model, format or "
         "layout, or documents whose content changed under the same id)", NULL,
         &r->force},
        {"no-lock", NULL, "for file systems without working locks (NFS without lockd, some parallel file systems): "
         "take no store lock and open HDF5 files without locking. RISK: two cache jobs on one store at once then "
         "corrupt it, and a query during a cache job may read a shard being written; run one job at a time", NULL,
         &r->no_lock},
        {"dedicated-coordinator", NULL, "rank 0 only hands out work (default: it caches too)", NULL, &r->dedicated},
        {"commit-docs", "N", "commit a rank's shard after N documents (default 64)", &o->commit_docs_s, NULL},
        {"commit-seconds", "S", "... or after S seconds (default 60)", &o->commit_secs_s, NULL},
        {"threads", "N", "BLAS threads per rank (default: the node's cores shared by its ranks)", &o->threads_s, NULL},
        {"weights", "T", "weight precision kept in memory: f32, bf16, f16 or auto (as stored, default)", &o->weights_s, NULL},
        {"progress-seconds", "S", "interval of the plain progress lines when stderr is not a terminal (default 10)",
         &o->progress_s, NULL},
        {"queue-window", "N", "documents rank 0 looks ahead in the corpus to hand out the longest first (default "
         IFK_STR(IFK_CORPUS_WINDOW) "; its memory: 48 bytes each)", &o->window_s, NULL},
        {"tp", "N", "ranks per tensor-parallel group (default 1): a group prefills each chunk together, each rank "
                    "its slice of the heads", &o->tp_s, NULL},
        {"quiet", NULL, "no progress or summary", NULL, &r->quiet},
        {NULL, NULL, NULL, NULL, NULL}};
    const char *usage =
        "usage: [mpirun -n P] infoflow cache --model M --corpus FILE --store DIR [options]\n"
        "Prefills every document of a corpus, chunk by chunk, into a KV store; rerun the same command to resume.";
    IFK_CHECK(ifk_cli_parse(argc, argv, opts, usage, &o->help));
    if (o->help) return IFK_OK;
    if (r->no_lock) setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1); /* HDF5 reads it at every file open */
    IFK_CHECK_ARG(!o->model != !o->random_model, "cache: give exactly one of --model PATH or --random-model SHAPE");
    IFK_CHECK_ARG(r->corpus, "cache: --corpus FILE is required");
    IFK_CHECK_ARG(r->store, "cache: --store DIR is required");
    IFK_CHECK(ifk_cli_int("chunk-tokens", o->chunk_s, 1, 1 << 20, &chunk_tokens));
    IFK_CHECK(ifk_cli_int("commit-docs", o->commit_docs_s, 1, 1 << 30, &commit_docs));
    IFK_CHECK(ifk_cli_double("commit-seconds", o->commit_secs_s, 0, 1e9, &r->commit_secs));
    IFK_CHECK(ifk_cli_double("progress-seconds", o->progress_s, 0, 1e9, &r->progress_secs));
    IFK_CHECK(ifk_cli_int("threads", o->threads_s, 1, 1024, &o->threads));
    IFK_CHECK(ifk_cli_weights(o->weights_s));
    IFK_CHECK(ifk_cli_int("compress", o->compress_s, 0, 9, &compress));
    long window = IFK_CORPUS_WINDOW;
    IFK_CHECK(ifk_cli_int("queue-window", o->window_s, 1, 1 << 30, &window));
    r->queue_window = (int)window;
    r->chunk_tokens = (int)chunk_tokens, r->commit_docs = (int)commit_docs, r->compress = (int)compress;
    if (!strcmp(o->split_s, "tokens")) r->split = IFK_SPLIT_TOKENS;
    else if (!strcmp(o->split_s, "paragraphs")) r->split = IFK_SPLIT_PARAGRAPHS;
    else return IFK_FAIL(IFK_ERR_ARG, "--split '%s' is not tokens or paragraphs", o->split_s);
    IFK_CHECK(ifk_dtype_parse(o->dtype_s, &r->dtype));
    IFK_CHECK(ifk_cli_int("tp", o->tp_s, 1, 1 << 20, &o->tp));
    IFK_CHECK_ARG(!(r->dedicated && o->tp > 1), "cache: --dedicated-coordinator goes with --tp 1 (rank 0 leads a "
                  "group)");
    return IFK_OK;
}

int ifk_cmd_cache(int argc, char **argv) {
    ifk_comm cm;
    if (ifk_comm_start(&cm, &argc, &argv) != IFK_OK) return 1;
    opts_ o;
    ifk_grid grid = {0};
    grid.group.comm = MPI_COMM_NULL;
    ifk_model m = {0}, slice = {0};
    ifk_tokenizer *tok = NULL;
    int rc = 1;
    /* every rank parses the same argv, so every rank reaches the same verdict */
    ifk_status ps = parse_opts_(argc, argv, &o);
    if (ps == IFK_OK && !o.help && o.run.dedicated && cm.size == 1)
        ps = IFK_FAIL(IFK_ERR_ARG, "cache: --dedicated-coordinator needs more than one rank (one rank has nothing to "
                      "dedicate: it both hands out and caches)");
    if (ps != IFK_OK) {
        if (cm.rank == 0) ifk_err_print();
        goto out;
    }
    if (o.help) {
        rc = 0;
        goto out;
    }
    const int dedicated = o.run.dedicated && cm.size > 1;
    int compute_here = cm.local_size - (dedicated && cm.rank / cm.local_size == 0 ? 1 : 0);
    int threads = o.threads ? (int)o.threads : ifk_comm_blas_threads(&cm, compute_here);
    ifk_blas_set_threads(threads);

    /* every rank loads the model (at --tp > 1 its slice, the rest of the whole model's pages handed
     * back; an HF folder: only the slice is read) */
    const int tp = (int)o.tp;
    ifk_status st = ifk_grid_load_model(o.model, o.tokenizer, o.random_model, cm.rank % tp, tp, cm.rank % tp == 0,
                                        ifk_grid_check_cfg, (int[2]){cm.size, tp}, &m, &slice, &tok);
    if (st == IFK_OK) st = ifk_model_check_prefix(&m);
    if (st == IFK_OK && o.run.chunk_tokens + IFK_CHUNK_PREFIX > m.cfg.seq_len)
        st = IFK_FAIL(IFK_ERR_ARG, "--chunk-tokens %d plus the BOS prefix exceeds the model's %d positions",
                      o.run.chunk_tokens, m.cfg.seq_len);
    if (st == IFK_OK && tp > 1) ifk_model_release_unsliced(&m, &slice, cm.rank % tp, tp); /* no-op for an HF slice */
    if (ifk_comm_agree(&cm, st) != IFK_OK) goto out;
    ifk_grid_init(&grid, &cm, tp);
    long cached;
    if (ifk_cache_run(&grid, &o.run, &m, tp > 1 ? &slice : NULL, tok, &cached) == IFK_OK) rc = 0;
out:
    ifk_grid_free(&grid);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&slice);
    ifk_model_free(&m);
    ifk_comm_finalize(&cm);
    return rc;
}
