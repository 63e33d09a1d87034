/* manifest.h — a store's manifest.json: what the store was made with (ifk_store_params), its
 * committed shards and the record of every document (docs/storage.md gives the format). A
 * document is in the store iff the manifest lists it. Local: only the coordinator writes it.
 * Also the document records as JSON, the commit message a worker sends its coordinator. */
#ifndef IFK_MANIFEST_H
#define IFK_MANIFEST_H

#include <stddef.h>

#include "chunk.h"
#include "dtype.h"
#include "model.h"
#include "status.h"

#define IFK_STORE_FORMAT_VERSION 1
#define IFK_MANIFEST "manifest.json"
#define IFK_INDEX "index.h5"

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
    int shard;      /* index into the manifest's shard list */
    char group[24]; /* HDF5 group of the document in its shard, "/d000012" */
    int n_tokens;
    int n_chunks;
    int *chunk_len; /* (n_chunks) owned */
} ifk_doc_rec;

void ifk_doc_rec_free(ifk_doc_rec *r);

struct ifk_strmap;

typedef struct {
    char dir[1024];
    ifk_store_params p;
    char **shards; /* (n_shards) file names relative to dir */
    int n_shards, cap_shards;
    ifk_doc_rec *docs; /* (n_docs) */
    int n_docs, cap_docs;
    long long n_tokens, n_chunks;
    struct ifk_strmap *ids; /* private to manifest.c: id -> index into docs */
} ifk_manifest;

void ifk_manifest_init(ifk_manifest *m, const char *dir, const ifk_store_params *p);
/* Reads dir/manifest.json, checking every field; a missing manifest is IFK_ERR_IO. */
ifk_status ifk_manifest_load(ifk_manifest *m, const char *dir);
/* Rewrites dir/manifest.json atomically (atomic_file.h; fault points manifest.fsync/.rename). */
ifk_status ifk_manifest_save(const ifk_manifest *m);
/* Appends a committed shard and its documents; takes ownership of docs[i]'s pointers (the array
 * itself stays the caller's). A document id already present is an error. */
ifk_status ifk_manifest_add(ifk_manifest *m, const char *shard, ifk_doc_rec *docs, int n);
/* The index of document id in m->docs, or -1. */
int ifk_manifest_find(const ifk_manifest *m, const char *id);
void ifk_manifest_free(ifk_manifest *m);

/* Document records as a JSON text (the commit message a worker sends its coordinator). */
char *ifk_doc_recs_to_json(const ifk_doc_rec *docs, int n);
ifk_status ifk_doc_recs_from_json(const char *json, ifk_doc_rec **docs, int *n);

#endif
