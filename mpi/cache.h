/* cache.h — the offline phase as a function of a job already set up: `infoflow cache` (cmd_cache.c)
 * and `infoflow eval`, for the documents its store lacks, both run it, so a store comes out the
 * same whichever command wrote it. Collective on the grid's world. */
#ifndef IFK_CACHE_H
#define IFK_CACHE_H

#include "chunk.h"
#include "dtype.h"
#include "grid.h"

typedef struct {
    const char *corpus;   /* JSONL corpus (corpus.h); read by the coordinator (world rank 0) only */
    const char *store;    /* store folder, created if needed */
    int chunk_tokens;     /* a new store's chunking, dtype, split and deflate level */
    ifk_split split;
    ifk_dtype dtype;
    int compress;
    int keep_layout;      /* an existing store keeps its own dtype and chunking (eval); 0: refuse a
                           * store of another layout (cache) */
    int force, no_lock, skip_bad, dedicated, quiet;
    int commit_docs;      /* commit a rank's shard after this many documents ... */
    double commit_secs;   /* ... or seconds */
    double progress_secs; /* plain progress lines' interval */
    int queue_window;     /* documents the coordinator orders longest first at a time (<= 0: IFK_CORPUS_WINDOW) */
} ifk_cache_opts;

/* Caches every document of o->corpus the store lacks: the coordinator hands documents out longest
 * first (within a look-ahead window, corpus.h) to the grid's groups; a group's rank 0 chunks each and prefills the chunks (with its group
 * at tp > 1: the ifk_tp hooks on the group's communicator), writes its own shards and has them
 * recorded; rank 0 then brings the BM25 index up to date. m: the whole model's config and
 * fingerprint (its weights are used at tp 1), slice: this rank's slice at tp > 1 (NULL at tp 1);
 * tok on every group's rank 0 (NULL for a random model: the corpus must give tokens). The caller
 * has set the BLAS threads. *cached (rank 0): documents cached by this run. Returns on every rank
 * after rank 0 indexed; set-up errors (store, lock, layout) are agreed on every rank, a failure
 * while caching ends the job (ifk_comm_abort); a rerun resumes. */
ifk_status ifk_cache_run(const ifk_grid *grid, const ifk_cache_opts *o, const ifk_model *m, const ifk_model *slice,
                         const ifk_tokenizer *tok, long *cached);

#endif
