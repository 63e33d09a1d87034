/* manifest.h — a store's catalog: manifest.json (what the store was made with, ifk_store_params)
 * and catalog.sqlite (its committed shards, the record of every document, the index segments);
 * docs/storage.md gives the format. A document is in the store iff the catalog lists it. Local:
 * only the coordinator writes it. Also the document records as JSON, the commit message a worker
 * sends its coordinator. */
#ifndef IFK_MANIFEST_H
#define IFK_MANIFEST_H

#include <stddef.h>

#include "chunk.h"
#include "dtype.h"
#include "model.h"
#include "status.h"

#define IFK_STORE_FORMAT_VERSION 2 /* manifest.json + catalog.sqlite */
#define IFK_SHARD_FORMAT_VERSION 1 /* the shard layout, unchanged since version 1 stores */
#define IFK_MANIFEST "manifest.json"
#define IFK_INDEX "index.h5" /* format version 1 only: version 2 has segments (index-*.h5) */

/* What a store was made with; checked when a store is reopened. */
typedef struct {
    char fingerprint[17];
    char model_source[512];
    ifk_wdtype weights;      /* precision of the weights the K/V were computed with (manifest model.weights) */
    int n_layers, n_kv_heads, head_dim, vocab_size, bos_id;
    double rope_theta;
    ifk_rope_style rope_style;
    ifk_rope_scaling rope_scaling;
    ifk_dtype dtype;
    int chunk_tokens;
    ifk_split split;
    int compress;   /* deflate level, 0 = none */
    int prefix_len; /* IFK_CHUNK_PREFIX */
} ifk_store_params;

void ifk_store_params_from_model(ifk_store_params *p, const ifk_model *m, const char fingerprint[17]);
/* Fails with a message naming dir if `have` was made with another model (weight precision,
 * fingerprint, shape, RoPE) or, when layout is set, another dtype or chunking. */
ifk_status ifk_store_params_check(const ifk_store_params *have, const ifk_store_params *want, const char *dir,
                                  int layout);
/* "interleaved"/"half" and "tokens"/"paragraphs", as the manifest and the shards spell them. */
const char *ifk_rope_style_name(ifk_rope_style s);
const char *ifk_split_name(ifk_split s);

/* One document of the store. */
typedef struct {
    char *id;       /* owned */
    int shard;      /* index into the catalog's shard list */
    char group[24]; /* HDF5 group of the document in its shard, "/d000012" */
    int n_tokens;
    int n_chunks;
    int *chunk_len; /* (n_chunks) owned */
} ifk_doc_rec;

void ifk_doc_rec_free(ifk_doc_rec *r);

/* A store's catalog: manifest.json (format version 2: the parameters only, written once when the
 * store is created) and catalog.sqlite (SQLite, WAL mode): the committed shards, one row per
 * commit with a Fletcher32 of its document records, the document records, the index segments.
 * A commit is one SQLite transaction: its cost is O(documents committed * log N), not O(store).
 * Documents and shards are numbered 0, 1, ... in commit order and never renumbered. Nothing here
 * holds the records in memory. Local: one writer (the coordinator), any number of readers
 * (SQLite snapshot reads: a reader never sees part of a commit). */
typedef struct {
    char dir[1024];
    ifk_store_params p;
    struct sqlite3 *db;
    int writable;
    /* counts as of open or the writer's last commit; ifk_manifest_refresh re-reads them */
    int n_shards, n_docs;
    long long n_tokens, n_chunks;
    int commits_since_checkpoint;
    struct sqlite3_stmt *q_find, *q_get, *q_shard; /* prepared lookups */
} ifk_manifest;

#define IFK_CATALOG "catalog.sqlite"

/* Creates dir/manifest.json and an empty dir/catalog.sqlite for a new store with parameters p
 * (a store already there is an error) and opens it for writing. */
ifk_status ifk_manifest_create(ifk_manifest *m, const char *dir, const ifk_store_params *p);
/* Opens dir's catalog: reads manifest.json (checking every field) and opens catalog.sqlite, read
 * only unless writable. A missing manifest is IFK_ERR_IO; a format-version-1 store (one JSON
 * manifest listing every document) is IFK_ERR_FORMAT with how to convert it. */
ifk_status ifk_manifest_load(ifk_manifest *m, const char *dir);
ifk_status ifk_manifest_open(ifk_manifest *m, const char *dir, int writable);
/* Re-reads the counts (a reader following a running cache job). */
ifk_status ifk_manifest_refresh(ifk_manifest *m);
/* Records a committed shard and its documents in one transaction (durable on return: fault
 * points catalog.commit with the transaction written but not committed, catalog.checkpoint after the periodic checkpoint of the
 * WAL into the database file); takes ownership of docs[i]'s pointers (the array stays the
 * caller's). A document id already present is an error and records nothing. */
ifk_status ifk_manifest_add(ifk_manifest *m, const char *shard, ifk_doc_rec *docs, int n);
/* The number of document id, or -1 (also on a catalog error, with the message set). O(log N). */
int ifk_manifest_find(const ifk_manifest *m, const char *id);
/* Document d's record into *r (caller frees with ifk_doc_rec_free). O(log N). Errors:
 * IFK_ERR_ARG (no document d), IFK_ERR_FORMAT (a malformed record). */
ifk_status ifk_manifest_get(const ifk_manifest *m, int d, ifk_doc_rec *r);
/* The file name of shard i into name[cap]. */
ifk_status ifk_manifest_shard(const ifk_manifest *m, int i, char *name, size_t cap);
/* 1 when the catalog lists a shard of this file name. O(log N). */
int ifk_manifest_has_shard(const ifk_manifest *m, const char *name);
/* Calls fn(name, ctx) for every committed shard, in commit order. */
ifk_status ifk_manifest_each_shard(const ifk_manifest *m, void (*fn)(const char *name, void *ctx), void *ctx);
/* Checks the catalog: SQLite's integrity check, then every commit record against its checksum
 * and the document numbering; report(msg, ctx) once per problem naming the commit and shard;
 * *bad counts them. */
ifk_status ifk_manifest_verify(const ifk_manifest *m, void (*report)(const char *msg, void *ctx), void *ctx, int *bad);
/* Moves the WAL into the database file and truncates it (the catalog's compaction; the writer
 * does it every 64 commits and when it closes). */
ifk_status ifk_manifest_checkpoint(ifk_manifest *m);
void ifk_manifest_free(ifk_manifest *m);

/* The BM25 index segments the catalog lists (file names relative to dir, covering documents
 * [first, first + n) each, in document order). */
typedef struct {
    char file[128];
    int first, n;
} ifk_index_seg;
/* *segs malloc'd (caller frees), *n of them. */
ifk_status ifk_manifest_segments(const ifk_manifest *m, ifk_index_seg **segs, int *n);
/* In one transaction: removes the segments listed in drop[0..n_drop) and adds add (when not
 * NULL). */
ifk_status ifk_manifest_set_segments(ifk_manifest *m, const ifk_index_seg *drop, int n_drop, const ifk_index_seg *add);

/* Converts a format-version-1 store (manifest.json listing every document) in dir to version 2 in
 * place. Every record (ids as corpus.h's ifk_id_check, no duplicates, chunk lengths) and every
 * shard (attributes; each record's group, id, token and chunk counts against the shard) is checked
 * before anything is written: an error names the shard or document and leaves the store as it was.
 * Then the catalog is written, and manifest.json is replaced last (atomically), so a crash leaves
 * a version-1 store that the next migrate converts again. */
ifk_status ifk_manifest_migrate(const char *dir, int *n_docs);

/* Document records as a JSON text (the commit message a worker sends its coordinator). */
char *ifk_doc_recs_to_json(const ifk_doc_rec *docs, int n);
ifk_status ifk_doc_recs_from_json(const char *json, ifk_doc_rec **docs, int *n);

#endif
