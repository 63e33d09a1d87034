/* ingest.h — the one way documents enter a store: open or create the store for a model, chunk and
 * prefill each document, write its K/V into this process's shard, commit the shard, record it in
 * the manifest, rebuild the retrieval index. `infoflow cache` (every rank an ingester, rank 0 the
 * recorder), eval's caching of LongBench passages and needle haystacks, and `bench ttft` all go
 * through here. Local: no MPI; a driver moves commit records between ranks itself.
 *
 * Durability is the store's (docs/storage.md): a shard is complete on disk before the manifest
 * lists it, so a crash at any point leaves a store that a rerun resumes. */
#ifndef IFK_INGEST_H
#define IFK_INGEST_H

#include "chunk.h"
#include "forward.h"
#include "model.h"
#include "shard_writer.h"
#include "store.h"
#include "store_index.h"
#include "tokenizer.h"

/* Opens the store in dir for writing by this process (the store's only writer: rank 0 of a cache
 * job): creates the folder, locks it (*lock_fd, for ifk_store_unlock; not with no_lock, for file
 * systems without working locks: *lock_fd stays -1), with force wipes it first,
 * opens its catalog for writing and checks it against want (the dtype and chunking too when
 * check_layout) or creates an empty store, then removes what an interrupted run left (*removed files). *man is
 * malloc'd: ifk_ingest_close_store frees it and drops the lock. Errors: IFK_ERR_IO (folder, lock),
 * IFK_ERR_ARG (a store made for another model or layout), IFK_ERR_FORMAT (a damaged manifest or catalog, a version-1 store). */
ifk_status ifk_ingest_open_store(const char *dir, const ifk_store_params *want, int force, int no_lock,
                                 int check_layout, ifk_manifest **man, int *lock_fd, int *removed);
void ifk_ingest_close_store(ifk_manifest **man, int *lock_fd);

/* Records a committed shard and its documents in the catalog, one transaction (takes ownership of
 * the records' pointers, as ifk_manifest_add). Only the store's writer calls it. */
ifk_status ifk_ingest_record(ifk_manifest *man, const char *shard, ifk_doc_rec *recs, int n);

/* Whether the store's document rd holds what a corpus line now gives: the same text (byte for
 * byte), or the same token ids (count, then every id) when the line gives "tokens". IFK_OK when
 * it does; IFK_ERR_ARG otherwise, "WHERE: document "ID" is already in the store DIR with other
 * content (...)" naming the difference and what to do (a new id, or --force to rebuild). Reads
 * the document's text or tokens from its shard: O(its size). Local. */
ifk_status ifk_ingest_same_doc(ifk_store *store, int rd, const char *id, const char *text, size_t text_len,
                               const int *tokens, int n_tokens, const char *where);

/* Brings the BM25 index up to date: listed segments that do not open rebuilt, a new segment over
 * the documents committed since the last one (reading only their texts), then merges at the size
 * threshold (ifk_store_index_update, store_index.h; note may be NULL). *added and *merged: the
 * documents indexed and the merges done. Only the writer calls it, after its last commit. */
ifk_status ifk_ingest_index(ifk_manifest *man, ifk_index_note note, void *ctx, int *added, int *merged);

/* One process's ingestion: its model, a cache for one chunk, the open shard and the documents in
 * it. */
typedef struct {
    const ifk_model *m;
    const ifk_tokenizer *tok; /* NULL: documents must give token ids */
    ifk_store_params p;       /* the store's parameters (dtype, chunking, ...) */
    char dir[1024];
    char prefix[160];         /* shard names: PREFIX-NNNNNN.h5 */
    int rank;                 /* recorded in the shard's attributes */
    ifk_state s;
    ifk_kvcache cache;
    float *k, *v;             /* (L, Hkv, chunk_tokens, Dh) one chunk's K/V */
    ifk_shard_writer *w;      /* the open shard, NULL between commits */
    int shard_seq;
    double opened_at;         /* when the open shard got its first document (ifk_now) */
    ifk_doc_rec *pending;     /* (n_pending) documents in the open shard */
    int n_pending, cap_pending;
    /* Optional (NULL: ifk_prefill_chunk with m): prefills one chunk of n tokens and leaves its K/V
     * for every KV head in k, v, (L, Hkv, n, Dh) as ifk_prefill_chunk does. A tensor-parallel
     * group's writer sets it to prefill together with its group and gather the heads (mpi/). */
    ifk_status (*prefill)(const int *tokens, int n, float *k, float *v, void *ctx);
    void *prefill_ctx;
} ifk_ingest;

/* Prepares g to write shards named PREFIX-NNNNNN.h5 into dir with the store's parameters p.
 * m and tok must outlive g. Errors: IFK_ERR_ARG (chunk size beyond the model's positions),
 * IFK_ERR_OOM. */
ifk_status ifk_ingest_init(ifk_ingest *g, const ifk_model *m, const ifk_tokenizer *tok, const char *dir,
                           const ifk_store_params *p, const char *prefix, int rank);

/* A document to ingest: text (cut by the tokenizer and the store's split) or token ids. */
typedef struct {
    const char *id;
    const char *text; /* NULL when tokens are given */
    size_t text_len;
    const int *tokens;
    int n_tokens;
} ifk_ingest_doc_in;

/* Chunks the document, prefills every chunk alone (chunk.h) and appends it to the open shard
 * (opened on demand). where names the document in messages ("corpus.jsonl:12"); between(ctx), if
 * set, runs after every chunk (a coordinator serving messages). Errors: IFK_ERR_FORMAT (a token
 * outside the vocabulary), IFK_ERR_ARG (text without a tokenizer), and the writer's. */
ifk_status ifk_ingest_doc(ifk_ingest *g, const ifk_ingest_doc_in *d, const char *where, void (*between)(void *),
                          void *ctx);

/* Whether the open shard is due for a commit: it holds max_docs documents or was opened max_secs
 * ago (force: whenever a shard is open). */
int ifk_ingest_commit_due(const ifk_ingest *g, int max_docs, double max_secs, int force);

/* What a commit hands its recorder: the shard's file name (relative to the store) and its
 * documents; record takes ownership of the records' pointers (as ifk_manifest_add does). */
typedef ifk_status (*ifk_ingest_record_fn)(const char *shard, ifk_doc_rec *recs, int n, void *ctx);

/* Closes, fsyncs and renames the open shard, then calls record (no-op without an open shard). */
ifk_status ifk_ingest_commit(ifk_ingest *g, ifk_ingest_record_fn record, void *ctx);

/* Tokens of the last document ingested. */
int ifk_ingest_last_tokens(const ifk_ingest *g);

/* Aborts an open shard (its temporary file is removed) and frees g. */
void ifk_ingest_free(ifk_ingest *g);

#endif
