/* store.h — the KV store: a folder of HDF5 shards, a JSON manifest and a BM25 index
 * (docs/storage.md is the public description of the format). Every HDF5 call of infoflow is in
 * storage/. All functions are Local: each shard is written by exactly one process, and the
 * manifest only by the coordinator.
 *
 * Durability: a shard is written as NAME.tmp, closed, fsynced and renamed; only then does the
 * manifest (rewritten atomically: temp, fsync, rename, fsync of the folder) list it and its
 * documents. A document is in the store iff the manifest lists it; files the manifest does not
 * name are leftovers of a crash and are removed by ifk_store_clean. */
#ifndef IFK_STORE_H
#define IFK_STORE_H

#include <stddef.h>

#include "chunk.h"
#include "model.h"
#include "status.h"

#define IFK_STORE_FORMAT_VERSION 1
#define IFK_MANIFEST "manifest.json"
#define IFK_INDEX "index.h5"

typedef enum { IFK_DT_F16 = 0, IFK_DT_BF16 = 1, IFK_DT_F32 = 2 } ifk_dtype;
const char *ifk_dtype_name(ifk_dtype d);
ifk_status ifk_dtype_parse(const char *s, ifk_dtype *d);
size_t ifk_dtype_size(ifk_dtype d);

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

/* One document of the store. */
typedef struct {
    char *id;       /* owned */
    int shard;      /* index into the manifest's shard list */
    char group[24]; /* HDF5 group of the document in its shard, "/d000012" */
    int n_tokens;
    int n_chunks;
    int *chunk_len; /* (n_chunks) owned */
} ifk_doc_rec;

void ifk_doc_rec_free(ifk_doc_rec *r);

typedef struct {
    char dir[1024];
    ifk_store_params p;
    char **shards; /* (n_shards) file names relative to dir */
    int n_shards, cap_shards;
    ifk_doc_rec *docs; /* (n_docs) */
    int n_docs, cap_docs;
    long long n_tokens, n_chunks;
    int *hash; /* id -> doc index, open addressing */
    size_t hmask;
} ifk_manifest;

void ifk_manifest_init(ifk_manifest *m, const char *dir, const ifk_store_params *p);
/* Reads dir/manifest.json, checking every field; a missing manifest is IFK_ERR_IO. */
ifk_status ifk_manifest_load(ifk_manifest *m, const char *dir);
ifk_status ifk_manifest_save(const ifk_manifest *m);
/* Appends a committed shard and its documents; takes ownership of docs[i]'s pointers (the array
 * itself stays the caller's). A document id already present is an error. */
ifk_status ifk_manifest_add(ifk_manifest *m, const char *shard, ifk_doc_rec *docs, int n);
int ifk_manifest_find(const ifk_manifest *m, const char *id);
void ifk_manifest_free(ifk_manifest *m);

/* Document records as a JSON text (the commit message a worker sends its coordinator). */
char *ifk_doc_recs_to_json(const ifk_doc_rec *docs, int n);
ifk_status ifk_doc_recs_from_json(const char *json, ifk_doc_rec **docs, int *n);

/* ---- shard writer ------------------------------------------------------------------------------- */

typedef struct ifk_shard_writer ifk_shard_writer;

/* Creates dir/name.tmp with the store's attributes. */
ifk_status ifk_shard_create(ifk_shard_writer **w, const char *dir, const char *name, const ifk_store_params *p,
                            int rank);
/* A document: begin, its chunks in order (k, v as (L, Hkv, n, Dh) f32, converted to the store's
 * dtype), end (fills rec, which the caller owns). */
ifk_status ifk_shard_begin_doc(ifk_shard_writer *w, const char *id, const char *text, size_t text_len);
ifk_status ifk_shard_put_chunk(ifk_shard_writer *w, const int *tokens, int n, const float *k, const float *v);
ifk_status ifk_shard_end_doc(ifk_shard_writer *w, ifk_doc_rec *rec);
int ifk_shard_ndocs(const ifk_shard_writer *w);
const char *ifk_shard_name(const ifk_shard_writer *w);
/* Closes, fsyncs and renames name.tmp to name; frees w. */
ifk_status ifk_shard_commit(ifk_shard_writer **w);
/* Closes and removes name.tmp; frees w. */
void ifk_shard_abort(ifk_shard_writer **w);

/* ---- reader ------------------------------------------------------------------------------------ */

typedef struct ifk_store ifk_store;

/* Opens a store for reading: loads the manifest; shards are opened on first use. */
ifk_status ifk_store_open(ifk_store **s, const char *dir);
const ifk_manifest *ifk_store_manifest(const ifk_store *s);
/* K and V of KV heads [h0, h0+nh) of every layer of chunk c of document d, as f32 (L, nh, n, Dh)
 * with n = chunk_len[c]; tokens (n) when not NULL. Shapes, types and attributes are checked
 * against the manifest; a checksum failure or any mismatch is an error naming shard and chunk. */
ifk_status ifk_store_read_chunk(ifk_store *s, int d, int c, int h0, int nh, float *k, float *v, int *tokens);
/* Only the token ids of chunk c of document d (chunk_len[c] of them). */
ifk_status ifk_store_read_tokens(ifk_store *s, int d, int c, int *tokens);
/* The document's text (malloc'd, NUL-terminated). */
ifk_status ifk_store_read_text(ifk_store *s, int d, char **text, size_t *len);
/* Bytes of K and V this reader has read for KV head h (read accounting, for tests). */
double ifk_store_head_bytes(const ifk_store *s, int h);
void ifk_store_close(ifk_store **s);

/* ---- maintenance --------------------------------------------------------------------------------- */

/* Re-reads every dataset of every document (checksums, shapes, attributes against the manifest).
 * Calls report(msg, ctx) once per problem; returns the number of problems in *bad. */
ifk_status ifk_store_verify(const char *dir, void (*report)(const char *msg, void *ctx), void *ctx, int *bad);
/* Removes files a crash left behind: *.tmp and shard files the manifest does not list. */
ifk_status ifk_store_clean(const ifk_manifest *m, int *removed);
/* Removes the manifest, index and every shard (for --force); other files are left alone. */
ifk_status ifk_store_wipe(const char *dir);
/* Takes an exclusive lock on dir/.lock (released by the kernel if the process dies). */
ifk_status ifk_store_lock(const char *dir, int *fd);
void ifk_store_unlock(int fd);

/* Writes data to dir/name atomically: name.tmp, fsync, rename, fsync of dir. */
ifk_status ifk_write_atomic(const char *dir, const char *name, const void *data, size_t len);

#endif
