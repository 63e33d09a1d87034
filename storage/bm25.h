/* bm25.h — a BM25 index over document texts: built by the cache job over the documents in a
 * store, saved in the store as index.h5, and searched by `infoflow query --retrieve K`. Local.
 *
 * Analysis: a term is a maximal run of ASCII letters/digits (lower-cased) or of bytes >= 0x80
 * (non-ASCII UTF-8 kept as is); everything else separates terms. No stemming, no stop words
 * (IDF weighs common words down). Scoring: Okapi BM25 with k1 = 1.2, b = 0.75 and
 * idf = ln(1 + (N - df + 0.5) / (df + 0.5)). */
#ifndef IFK_BM25_H
#define IFK_BM25_H

#include <stddef.h>

#include "status.h"

typedef struct ifk_bm25 ifk_bm25;

ifk_status ifk_bm25_create(ifk_bm25 **ix);
/* Adds a document; ids must be unique (a repeat is IFK_ERR_ARG). */
ifk_status ifk_bm25_add(ifk_bm25 *ix, const char *doc_id, const char *text, size_t len);
int ifk_bm25_ndocs(const ifk_bm25 *ix);
/* The id of document i (insertion order), NULL outside [0, ndocs); owned by ix. */
const char *ifk_bm25_doc_id(const ifk_bm25 *ix, int i);
/* Appends src's documents after dst's, as if they had been added to dst in src's order: the
 * result searches exactly (same ids, bit-identical scores, same order) as one index built over
 * both document lists. An id already in dst is IFK_ERR_ARG; on an error dst may hold part of src
 * (free it). O(postings of src). */
ifk_status ifk_bm25_append(ifk_bm25 *dst, const ifk_bm25 *src);

/* Writes the index to path as HDF5, atomically (path.tmp, fsync, rename); layout in
 * docs/storage.md. Loading checks the format attributes and every dataset's shape and values
 * (offsets monotonic, doc indices in range) and fails with "PATH: ..." on any inconsistency. */
ifk_status ifk_bm25_save(const ifk_bm25 *ix, const char *path);
ifk_status ifk_bm25_load(ifk_bm25 **ix, const char *path);
/* ifk_bm25_save with the fault-injection points "<fault>.fsync" and "<fault>.rename" (fault.h). */
ifk_status ifk_bm25_save_fault(const ifk_bm25 *ix, const char *path, const char *fault);

/* The top k documents for query[0..len): their ids (borrowed from ix) and scores, best first;
 * equal scores are ordered by id, bytewise ascending (strcmp), so the result depends on the
 * documents and not on the order they were added in; documents scoring 0 (no query term) are not
 * returned.
 * *n receives how many were written (<= k). */
ifk_status ifk_bm25_search(const ifk_bm25 *ix, const char *query, size_t len, int k, const char **ids,
                           double *scores, int *n);

void ifk_bm25_free(ifk_bm25 **ix);

/* ---- index files searched on disk (bm25_disk.c) ----
 * A list of index files (as ifk_bm25_save writes them) searched as the index that appending them
 * in list order would give (ifk_bm25_append): same ids, same order, bit-identical scores. A search
 * reads only what the query touches: per file, O(log T) entries of /terms per query term, the
 * term's /df and /post_offsets entries and postings, /doc_len of the documents in those postings,
 * and /doc_ids of the documents that can be among the k results (those scoring at least the k-th
 * best score so far: fewer than k better ones plus every tie at that score, since ties are ordered
 * by id); memory is O(postings of the query's terms in one file + k).
 * Each file is opened once, at ifk_bm25_disk_add, and kept open until ifk_bm25_disk_free. What a
 * search reads is checked (failing with "PATH: /DATASET ..."); the rest of a file is not, nor are
 * ids unique across files: ifk_bm25_load checks a whole file. Local. */
typedef struct ifk_bm25_disk ifk_bm25_disk;

ifk_status ifk_bm25_disk_create(ifk_bm25_disk **dx);
/* Opens path and appends it to the list: its attributes and every dataset's type, layout and
 * length are checked, nothing sized by the file is read. k1 and b must equal the first file's. */
ifk_status ifk_bm25_disk_add(ifk_bm25_disk *dx, const char *path);
int ifk_bm25_disk_ndocs(const ifk_bm25_disk *dx);
/* Documents in the i-th file added. */
int ifk_bm25_disk_file_ndocs(const ifk_bm25_disk *dx, int i);
/* As ifk_bm25_search; the ids are owned by dx and valid until its next search or free. */
ifk_status ifk_bm25_disk_search(ifk_bm25_disk *dx, const char *query, size_t len, int k, const char **ids,
                                double *scores, int *n);
/* Postings the last search read (over all files). */
long long ifk_bm25_disk_postings_read(const ifk_bm25_disk *dx);
void ifk_bm25_disk_free(ifk_bm25_disk **dx);

#endif
