/* store.h — reads a KV store: a folder of HDF5 shards, a JSON manifest (manifest.h) and a BM25
 * index (bm25.h); docs/storage.md is the public description of the format. Every HDF5 call of
 * infoflow is in storage/. Local.
 *
 * The writing side is shard_writer.h (shards) and manifest.h (the commit); verification, crash
 * clean-up and the store lock are store_maint.h. */
#ifndef IFK_STORE_H
#define IFK_STORE_H

#include <stddef.h>

#include "dtype.h"
#include "manifest.h"
#include "status.h"

typedef struct ifk_store ifk_store;

/* Opens a store for reading: manifest.json (the parameters) and the catalog; document records and
 * shards are read on first use, so opening costs the same at any store size and memory grows only
 * with the documents and shards a caller touches. A format-version-1 store is refused with how to
 * convert it. */
ifk_status ifk_store_open(ifk_store **store, const char *dir);

/* 1 after a failure left HDF5 holding a file it cannot close (a shard whose close failed on a full
 * disk): the process must then exit without terminating HDF5 (MPI_Finalize would, and HDF5 1.10.8
 * crashes closing that file again). Local. */
int ifk_store_hdf5_broken(void);
/* The store's parameters and counts (as of open or the last ifk_store_refresh); it lists no
 * documents: use ifk_store_find and ifk_store_doc. */
const ifk_manifest *ifk_store_manifest(const ifk_store *store);
/* Re-reads the counts (documents committed since open are found by ifk_store_find anyway). */
ifk_status ifk_store_refresh(ifk_store *store);
/* The number of document id, or -1 (also on a catalog error, message set). O(log N). */
int ifk_store_find(ifk_store *store, const char *id);
/* Document d's record, read on first use and kept until ifk_store_forget or close; NULL with the
 * message set when there is no document d or its record is damaged. O(log N). */
const ifk_doc_rec *ifk_store_doc(ifk_store *store, int d);
/* Drops the records ifk_store_doc kept (pointers it returned become invalid): a pass over every
 * document (verify, inspect) calls it now and then to keep memory flat. */
void ifk_store_forget(ifk_store *store);
/* Opens shard i (once) and checks that its attributes describe this store: format version,
 * fingerprint, dtype and shape; an error names the shard file. */
ifk_status ifk_store_check_shard(ifk_store *store, int i);
/* The BLAS threads per rank shard i was written with (its blas_threads attribute), 0 when the
 * shard does not record it (older writers) or cannot be opened (the message is then set). */
int ifk_store_shard_threads(ifk_store *store, int i);
/* K and V of KV heads [h0, h0+nh) of every layer of chunk c of document d, as f32 (L, nh, n, Dh)
 * with n = ifk_store_doc(store, d)->chunk_len[c]; tokens (n) when not NULL. Shapes, types and attributes are checked
 * against the catalog; a checksum failure or any mismatch is an error naming shard and chunk. */
ifk_status ifk_store_read_chunk(ifk_store *store, int d, int c, int h0, int nh, float *k, float *v, int *tokens);
/* The same read in two halves, for a reader that fills a KV cache layer by layer from another
 * thread (pipeline/query.c): ifk_store_locate does every HDF5 call (attributes, tokens when not
 * NULL, the address of each (layer, head) slab in the mapped shard; a layout of another writer is
 * read whole through HDF5 here) and counts the bytes in ifk_store_head_bytes; then
 * ifk_store_load_slab checks one slab's Fletcher32 and converts it to f32 in the same pass, straight
 * into dst (n*Dh floats: one (layer, head) row block of a cache), calling no HDF5: it may run on
 * any thread, concurrently for different slabs. kv: 0 K, 1 V; h counts from h0. A checksum
 * failure is IFK_ERR_H5 naming shard, chunk, K or V, layer and head (the message is the calling
 * thread's). The source stays valid while the store is open and no ifk_store_drop_cache runs. */
typedef struct {
    int n, h0, nh, n_layers, head_dim;
    ifk_dtype dtype;
    int check;                  /* each slab is followed by its Fletcher32 (the mapped path) */
    const unsigned char **slab; /* (2, L, nh) K then V slabs of n*Dh elements */
    void *own;                  /* the slabs when read through HDF5 */
    char *where;                /* "DIR/SHARD: document "ID" chunk C (GROUP)" */
    ifk_store *store;
} ifk_chunk_src;

ifk_status ifk_store_locate(ifk_store *store, int d, int c, int h0, int nh, ifk_chunk_src *src, int *tokens);
ifk_status ifk_store_load_slab(const ifk_chunk_src *src, int kv, int l, int h, float *dst);
void ifk_chunk_src_free(ifk_chunk_src *src);

/* Fault injection, a slow file system: slabs arrive one after another at mb_per_s (1e6 bytes/s;
 * 0: no limit), loaders sleep until theirs has. Also set at open from INFOFLOW_READ_DELAY_MBPS
 * (a bad value fails the open with IFK_ERR_ARG naming it). ifk_store_throttled: seconds of
 * arrival wait handed out so far. */
ifk_status ifk_store_set_read_rate(ifk_store *store, double mb_per_s);
double ifk_store_throttled(const ifk_store *store);
/* Cold reads: closes and unmaps the shards and asks the kernel to drop their pages from the page
 * cache (posix_fadvise DONTNEED: no privileges needed; pages other processes map stay). The next
 * read opens them again. */
ifk_status ifk_store_drop_cache(ifk_store *store);

/* Only the token ids of chunk c of document d (chunk_len[c] of them). */
ifk_status ifk_store_read_tokens(ifk_store *store, int d, int c, int *tokens);
/* The document's text (malloc'd, NUL-terminated). */
ifk_status ifk_store_read_text(ifk_store *store, int d, char **text, size_t *len);
/* Bytes of K and V this reader has read for KV head h (read accounting, for tests). */
double ifk_store_head_bytes(const ifk_store *store, int h);
void ifk_store_close(ifk_store **store);

#endif
