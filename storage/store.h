/* store.h — reads a KV store: a folder of HDF5 shards, a JSON manifest (manifest.h) and a BM25
 * index (bm25.h); docs/storage.md is the public description of the format. Every HDF5 call of
 * infoflow is in storage/. Local.
 *
 * The writing side is shard_writer.h (shards) and manifest.h (the commit); verification, crash
 * clean-up and the store lock are store_maint.h. */
#ifndef IFK_STORE_H
#define IFK_STORE_H

#include <stddef.h>

#include "manifest.h"
#include "status.h"

typedef struct ifk_store ifk_store;

/* Opens a store for reading: loads the manifest; shards are opened on first use. */
ifk_status ifk_store_open(ifk_store **store, const char *dir);
const ifk_manifest *ifk_store_manifest(const ifk_store *store);
/* Opens shard i (once) and checks that its attributes describe this store: format version,
 * fingerprint, dtype and shape; an error names the shard file. */
ifk_status ifk_store_check_shard(ifk_store *store, int i);
/* K and V of KV heads [h0, h0+nh) of every layer of chunk c of document d, as f32 (L, nh, n, Dh)
 * with n = chunk_len[c]; tokens (n) when not NULL. Shapes, types and attributes are checked
 * against the manifest; a checksum failure or any mismatch is an error naming shard and chunk. */
ifk_status ifk_store_read_chunk(ifk_store *store, int d, int c, int h0, int nh, float *k, float *v, int *tokens);
/* Only the token ids of chunk c of document d (chunk_len[c] of them). */
ifk_status ifk_store_read_tokens(ifk_store *store, int d, int c, int *tokens);
/* The document's text (malloc'd, NUL-terminated). */
ifk_status ifk_store_read_text(ifk_store *store, int d, char **text, size_t *len);
/* Bytes of K and V this reader has read for KV head h (read accounting, for tests). */
double ifk_store_head_bytes(const ifk_store *store, int h);
void ifk_store_close(ifk_store **store);

#endif
