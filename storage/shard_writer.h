/* shard_writer.h — writes one HDF5 shard of a KV store (layout in docs/storage.md). Local: each
 * shard is written by exactly one process.
 *
 * Durability: the shard is written as NAME.tmp and made NAME by ifk_shard_commit (atomic_file.h);
 * only then may the coordinator list it and its documents in the manifest (manifest.h). */
#ifndef IFK_SHARD_WRITER_H
#define IFK_SHARD_WRITER_H

#include <stddef.h>

#include "manifest.h"
#include "status.h"

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
/* Closes the file and commits name.tmp as name (fsync, rename, folder fsync; fault points
 * shard.fsync and shard.rename); frees w. */
ifk_status ifk_shard_commit(ifk_shard_writer **w);
/* Closes and removes name.tmp; frees w. */
void ifk_shard_abort(ifk_shard_writer **w);

#endif
