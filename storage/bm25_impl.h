/* bm25_impl.h — the in-memory BM25 index, shared by bm25.c (build, search) and bm25_io.c
 * (index.h5). Private to those two files. */
#ifndef IFK_BM25_IMPL_H
#define IFK_BM25_IMPL_H

#include <hdf5.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bm25.h"
#include "strmap.h"

#define IFK_BM25_K1 1.2
#define IFK_BM25_B 0.75

typedef struct {
    int32_t doc, tf;
} ifk_bm25_posting;

typedef struct {
    ifk_bm25_posting *p; /* doc ascending */
    size_t n, cap;
} ifk_bm25_plist;

struct ifk_bm25 {
    double k1, b;
    char **doc;       /* (n_docs) ids, owned, in insertion order */
    int32_t *doc_len; /* (n_docs) terms per document */
    size_t cap_doc;   /* of doc and doc_len */
    int n_docs;
    int64_t total_len; /* sum of doc_len */
    char **term;       /* (n_terms) lower-cased terms, owned */
    ifk_bm25_plist *post; /* (n_terms) postings */
    size_t cap_term;      /* of term and post */
    int n_terms;
    ifk_strmap *doc_map, *term_map; /* id -> document, term -> term index */
    char *fold;                     /* grow-only scratch for folding a term */
    size_t fold_cap;
};

/* 1 for a byte that belongs to a term: ASCII letters and digits, and every byte >= 0x80. */
static inline int ifk_bm25_term_byte(unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
/* ASCII lower-casing; other bytes are kept. */
static inline unsigned char ifk_bm25_fold(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

/* One posting's BM25 weight: idf(N, df) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avg)), with
 * idf = ln(1 + (N - df + 0.5) / (df + 0.5)). The one expression both searches (in memory, bm25.c, and
 * on disk, bm25_disk.c) use, so their scores agree bit for bit. */
static inline double ifk_bm25_idf(double N, double df) { return log1p((N - df + 0.5) / (df + 0.5)); }
static inline double ifk_bm25_weight(double idf, double tf, double dl, double avg, double k1, double b) {
    return idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avg));
}

/* Grows *p (elements of `elem` bytes, capacity *cap) to hold at least `need`. */
ifk_status ifk_bm25_grow(void **p, size_t *cap, size_t need, size_t elem, const char *what);
/* qsort order of pointers to terms (char *const *): bytewise (strcmp) order of the terms. */
int ifk_bm25_cmp_termptr(const void *a, const void *b);

/* The distinct terms of query[0..len), analysed as documents are, in bytewise order: *terms[0..*n)
 * (one malloc'd block of pointers, each term malloc'd; ifk_bm25_free_terms). */
ifk_status ifk_bm25_query_terms(const char *query, size_t len, char ***terms, size_t *n);
void ifk_bm25_free_terms(char **terms, size_t n);

/* ---- an index file opened with its header checked (bm25_io.c) ---- */

enum { IFK_BM25_DOC_IDS, IFK_BM25_DOC_LEN, IFK_BM25_TERMS, IFK_BM25_DF, IFK_BM25_OFFSETS, IFK_BM25_POST_DOCS,
       IFK_BM25_POST_TF, IFK_BM25_N_DS };
extern const char *const ifk_bm25_ds_name[IFK_BM25_N_DS];

typedef struct {
    const char *path;          /* borrowed */
    hid_t file, ds[IFK_BM25_N_DS]; /* every dataset open */
    int64_t len[IFK_BM25_N_DS];    /* their lengths */
    int64_t N, T, P;               /* documents, terms, postings */
    double k1, b, avg;             /* the attributes */
    hid_t xfer; /* reads of a few strings: a small type-conversion buffer (HDF5 clears its 1 MB
                   default buffer at every read that converts, strings included) */
} ifk_bm25_file;

/* Opens path (a regular HDF5 file) read-only, checks the format attributes (values in range) and
 * every dataset's type, layout and length against the others; nothing sized by the file is read.
 * Errors are IFK_ERR_IO (cannot open), IFK_ERR_H5, IFK_ERR_FORMAT, all "PATH: ...". On failure
 * nothing stays open. */
ifk_status ifk_bm25_file_open(ifk_bm25_file *f, const char *path);
void ifk_bm25_file_close(ifk_bm25_file *f);
/* IFK_ERR_FORMAT "PATH: /terms[t] ..." unless term is non-empty and made of analysed bytes. */
ifk_status ifk_bm25_check_term(const char *path, int64_t t, const char *term);
/* Reads n entries of dataset ds from `start` (contiguous) as memtype into buf; a variable-length
 * string type reads char * entries (H5free_memory each). */
ifk_status ifk_bm25_file_read(const ifk_bm25_file *f, int ds, hid_t memtype, int64_t start, int64_t n, void *buf);

#endif
