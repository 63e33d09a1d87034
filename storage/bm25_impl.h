/* bm25_impl.h — the in-memory BM25 index, shared by bm25.c (build, search) and bm25_io.c
 * (index.h5). Private to those two files. */
#ifndef IFK_BM25_IMPL_H
#define IFK_BM25_IMPL_H

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

/* Grows *p (elements of `elem` bytes, capacity *cap) to hold at least `need`. */
ifk_status ifk_bm25_grow(void **p, size_t *cap, size_t need, size_t elem, const char *what);
/* qsort order of pointers to terms (char *const *): bytewise (strcmp) order of the terms. */
int ifk_bm25_cmp_termptr(const void *a, const void *b);

#endif
