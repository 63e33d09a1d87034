/* strmap.h — the one string hash map of infoflow: byte-string keys (explicit length, any bytes,
 * NUL included) to an int or a pointer. Open addressing with linear probing, FNV-1a 64-bit
 * hashes, load kept <= 1/2, deletion by backward shift (no tombstones). The map owns a copy of
 * every key. Used for document ids (manifest, corpus, BM25) and BM25 terms; built to serve
 * token-string -> id lookups too. Local, not thread-safe for concurrent writers.
 *
 * Not for fingerprints: a hash that is written into files (the model fingerprint) keeps its own
 * function so that changing this one never changes a stored value. */
#ifndef IFK_STRMAP_H
#define IFK_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct ifk_strmap ifk_strmap;

/* FNV-1a 64 (offset basis 14695981039346656037, prime 1099511628211) of p[0..n). */
uint64_t ifk_fnv1a(const void *p, size_t n);

/* An empty map with room for `expect` keys before it grows; IFK_ERR_OOM on failure. */
ifk_status ifk_strmap_create(ifk_strmap **m, size_t expect);
void ifk_strmap_free(ifk_strmap **m);
size_t ifk_strmap_count(const ifk_strmap *m);
/* Makes room for `n` keys in all, so that the next n - count insertions cannot fail on growth
 * (they still copy their key). */
ifk_status ifk_strmap_reserve(ifk_strmap *m, size_t n);

/* Inserts key[0..len) -> value, or replaces the value of a key already present. */
ifk_status ifk_strmap_put(ifk_strmap *m, const char *key, size_t len, int value);
ifk_status ifk_strmap_put_ptr(ifk_strmap *m, const char *key, size_t len, void *value);
/* 1 and *value set when key is present (value may be NULL), else 0. */
int ifk_strmap_get(const ifk_strmap *m, const char *key, size_t len, int *value);
int ifk_strmap_get_ptr(const ifk_strmap *m, const char *key, size_t len, void **value);
/* Removes key; 1 if it was present. Never allocates. */
int ifk_strmap_del(ifk_strmap *m, const char *key, size_t len);

#endif
