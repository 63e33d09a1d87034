/* store_index.h — a store's BM25 index (bm25.h) as segments: files index-FIRST-END.h5, each in the
 * index.h5 layout of docs/storage.md over the documents [FIRST, END) of the catalog, listed in the
 * catalog's segments table. A cache run indexes only the documents committed since the last
 * segment (O(K) for K new documents) and merges the newest segments when they reach a size
 * threshold; loading appends the segments in document order, which searches exactly as one index
 * built from scratch over the same documents (ifk_bm25_append). Local. */
#ifndef IFK_STORE_INDEX_H
#define IFK_STORE_INDEX_H

#include "bm25.h"
#include "manifest.h"
#include "status.h"

/* Merge policy: the two newest segments are merged while the newer holds at least a quarter of
 * the documents of the older (sizes stay geometric: each document is merged O(log N) times), or
 * while there are more than this many segments. */
#define IFK_INDEX_MAX_SEGMENTS 8

/* Opens every segment of the store in dir for searching on disk (*dx, ifk_bm25_disk_free): what a
 * query reads per search is bm25.h's ifk_bm25_disk; here each segment is opened once and its header
 * checked, and its document count against the catalog. Results equal those of
 * ifk_store_index_load's index (bit-identical scores). No segment: IFK_ERR_IO ("no index"); a
 * segment that disappears while opening makes it read the list again. Errors name the segment. */
ifk_status ifk_store_index_open(const char *dir, ifk_bm25_disk **dx);

/* The naive reference of ifk_store_index_open (and what merges and verify use): loads every
 * segment of the store in dir into one index (*ix, ifk_bm25_free). A store with no
 * segment is IFK_ERR_IO ("no index"). A segment that disappears while loading (a running cache
 * job merged it) makes it read the list again. Errors name the segment file. */
ifk_status ifk_store_index_load(const char *dir, ifk_bm25 **ix);

/* Indexes documents [first, end) of the store in dir from their texts, in document order, into
 * *ix (ifk_bm25_free); end < 0: to the last document. A from-scratch index, the unit of the
 * writer's segments and repairs. Errors: the store's open and text reads (named). */
ifk_status ifk_store_index_docs(const char *dir, int first, int end, ifk_bm25 **ix);

/* What ifk_store_index_update says as it goes, one line each (no "cache: " prefix): repair = 1 for
 * a damaged segment it rebuilt, 0 for progress ("building the BM25 index over N documents...",
 * before the texts are read). */
typedef void (*ifk_index_note)(int repair, const char *msg, void *ctx);

/* The writer's step after its last commit: first every listed segment that does not open (missing,
 * truncated, a header that does not check, another document count than listed: one header check
 * per segment) is rebuilt from the store's texts under its listed name (fault points
 * index.repair.fsync/.rename) and noted; then it indexes the documents after the last segment into
 * a new segment (index.segment.fsync/.rename), then merges (index.merge.fsync/.rename,
 * index.merge.unlink: the merged segment listed, the old files not yet removed). *added and
 * *merged count the documents indexed and the merges done. note may be NULL. */
ifk_status ifk_store_index_update(ifk_manifest *man, int *added, int *merged, ifk_index_note note, void *ctx);

/* Checks the segment list (contiguous from document 0, within the catalog, both read afresh from
 * man->dir) and loads every segment (a damaged one is reported by file name); report as
 * ifk_store_verify. A list that a running job changes meanwhile is read again. */
ifk_status ifk_store_index_verify(const ifk_manifest *man, void (*report)(const char *msg, void *ctx), void *ctx,
                                  int *bad, int *indexed);

/* 1 for the file name of an index segment or its temporary file. */
int ifk_store_index_file(const char *name);

#endif
