/* bm25.c — the BM25 index of bm25.h: building, searching, and index.h5 (HDF5) persistence.
 *
 * index.h5, format_version 1 — everything sits in the root group; datasets are one-dimensional
 * and contiguous. N = documents, T = distinct terms, P = postings (sum of df).
 *
 *   attributes of /
 *     format          string (variable-length)   "infoflow-bm25"
 *     format_version  int32                      1
 *     k1              float64                    BM25 k1 (1.2)
 *     b               float64                    BM25 b (0.75)
 *     n_docs          int64                      N
 *     avg_len         float64                    mean of doc_len (0 when N = 0)
 *   datasets
 *     /doc_ids        (N)      variable-length UTF-8 strings, unique, in insertion order; a
 *                              document's index is its position here
 *     /doc_len        (N)      int32, number of terms in each document (= the sum of its tf)
 *     /terms          (T)      variable-length UTF-8 strings, distinct and non-empty, sorted
 *                              bytewise (strcmp order) so a reader can binary-search them
 *     /df             (T)      int32, documents containing each term (>= 1)
 *     /post_offsets   (T + 1)  int64, term t's postings are [post_offsets[t], post_offsets[t+1]);
 *                              post_offsets[0] = 0, post_offsets[T] = P, and
 *                              post_offsets[t+1] - post_offsets[t] = df[t]
 *     /post_docs      (P)      int32, document indices (into /doc_ids), strictly ascending within
 *                              a term
 *     /post_tf        (P)      int32, occurrences of the term in that document (>= 1)
 *
 * The reader also accepts fixed-length strings for "format", any integer type that converts to
 * the stated width without loss (narrower, or as wide and signed), and any float type for the
 * float64 attributes; the string datasets must be variable-length. Everything listed above is
 * checked on load, together with: terms made only of analysed bytes ([a-z0-9] and >= 0x80),
 * k1 >= 0, 0 <= b <= 1, and avg_len equal (to 1e-9 relative) to the mean of doc_len.
 *
 * Decisions not fixed by bm25.h:
 *   - "a maximal run of ASCII letters/digits or of bytes >= 0x80" is read as one run of bytes
 *     from the union of the two classes, so "café" and "abc日本" are single terms. Only ASCII is
 *     lower-cased ("CAFÉ" gives "cafÉ").
 *   - A query term that occurs several times in the query counts once. The distinct query terms
 *     are summed in bytewise term order, so a score does not depend on term ids (which change
 *     between a built and a loaded index) and a round trip gives bit-identical scores.
 *   - k = 0 returns n = 0; k < 0 is IFK_ERR_ARG. The empty string is a valid document id.
 *   - A failed ifk_bm25_add (out of memory) leaves the index as it was before the call.
 *   - The index keeps the k1 and b it was loaded with; a new index uses 1.2 and 0.75. */
#include "bm25.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BM25_FORMAT "infoflow-bm25"
#define BM25_VERSION 1
#define BM25_K1 1.2
#define BM25_B 0.75

/* ---- in-memory index ------------------------------------------------------------------------- */

typedef struct {
    char *s;    /* owned, NUL-terminated */
    size_t len;
    uint64_t h; /* hash of s */
} strkey;

typedef struct {
    int32_t doc, tf;
} posting;

typedef struct {
    posting *p; /* doc ascending */
    size_t n, cap;
} plist;

/* Open addressing, linear probing; slot = index into a strkey array, -1 when empty. The key
 * array itself is the list of entries (keys[0..count) are all in the map). */
typedef struct {
    int32_t *slot;
    size_t cap; /* power of two; load kept <= 1/2 */
} imap;

struct ifk_bm25 {
    double k1, b;
    strkey *doc;      /* (n_docs) ids */
    int32_t *doc_len; /* (n_docs) terms per document */
    size_t cap_doc, cap_doc_len;
    int n_docs;
    int64_t total_len; /* sum of doc_len */
    strkey *term;      /* (n_terms) lower-cased terms */
    plist *post;       /* (n_terms) postings */
    size_t cap_term, cap_post;
    int n_terms;
    imap doc_map, term_map;
};

static inline int term_byte_(unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline unsigned char fold_(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

/* The next term of s[*pos..len): its start and length; 0 when there is none. */
static int next_term_(const char *s, size_t len, size_t *pos, size_t *start, size_t *tlen) {
    size_t i = *pos;
    while (i < len && !term_byte_((unsigned char)s[i])) i++;
    if (i == len) {
        *pos = len;
        return 0;
    }
    size_t j = i;
    while (j < len && term_byte_((unsigned char)s[j])) j++;
    *start = i, *tlen = j - i, *pos = j;
    return 1;
}

/* FNV-1a, over the ASCII-folded bytes when fold is set */
static uint64_t hash_(const char *s, size_t len, int fold) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        h = (h ^ (fold ? fold_(c) : c)) * 1099511628211ull;
    }
    return h;
}

/* stored (already folded) == fold(s) when fold is set, else stored == s */
static int key_eq_(const char *stored, const char *s, size_t len, int fold) {
    if (!fold) return memcmp(stored, s, len) == 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)stored[i] != fold_((unsigned char)s[i])) return 0;
    return 1;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t imap_probe_(const imap *m, const strkey *keys, const char *s, size_t len, uint64_t h, int fold) {
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        int32_t v = m->slot[i];
        if (v < 0) return i;
        const strkey *k = &keys[v];
        if (k->h == h && k->len == len && key_eq_(k->s, s, len, fold)) return i;
    }
}

static void imap_put_(imap *m, const strkey *keys, int32_t idx) {
    size_t mask = m->cap - 1, i = (size_t)keys[idx].h & mask;
    while (m->slot[i] >= 0) i = (i + 1) & mask;
    m->slot[i] = idx;
}

/* Re-inserts keys[0..count); allocates nothing. */
static void imap_rebuild_(imap *m, const strkey *keys, size_t count) {
    memset(m->slot, 0xff, m->cap * sizeof *m->slot);
    for (size_t i = 0; i < count; i++) imap_put_(m, keys, (int32_t)i);
}

/* Makes room for `need` entries (keys[0..count) are the current ones). */
static ifk_status imap_reserve_(imap *m, const strkey *keys, size_t count, size_t need) {
    if (m->cap && need <= m->cap / 2) return IFK_OK;
    size_t nc = m->cap ? m->cap : 16;
    while (need > nc / 2) {
        if (nc > SIZE_MAX / 2 / sizeof *m->slot) return IFK_FAIL(IFK_ERR_OOM, "bm25: hash table too large");
        nc *= 2;
    }
    int32_t *s = malloc(nc * sizeof *s);
    if (!s) return IFK_FAIL(IFK_ERR_OOM, "bm25: out of memory growing a hash table to %zu slots", nc);
    free(m->slot);
    m->slot = s, m->cap = nc;
    imap_rebuild_(m, keys, count);
    return IFK_OK;
}

/* Grows *p (elements of `elem` bytes, capacity *cap) to hold at least `need`. */
static ifk_status grow_(void **p, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return IFK_OK;
    size_t nc = *cap ? *cap : 4;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return IFK_FAIL(IFK_ERR_OOM, "bm25: %s: too many entries", what);
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return IFK_FAIL(IFK_ERR_OOM, "bm25: out of memory growing %s to %zu entries", what, nc);
    *p = q, *cap = nc;
    return IFK_OK;
}

ifk_status ifk_bm25_create(ifk_bm25 **out) {
    IFK_CHECK_ARG(out, "bm25: create needs somewhere to put the index");
    *out = NULL;
    ifk_bm25 *ix = ifk_calloc(1, sizeof *ix, "the BM25 index");
    if (!ix) return IFK_ERR_OOM;
    ix->k1 = BM25_K1, ix->b = BM25_B;
    ifk_status st;
    IFK_CHECK_GOTO(st, imap_reserve_(&ix->doc_map, NULL, 0, 1), fail);
    IFK_CHECK_GOTO(st, imap_reserve_(&ix->term_map, NULL, 0, 1), fail);
    *out = ix;
    return IFK_OK;
fail:
    ifk_bm25_free(&ix);
    return st;
}

void ifk_bm25_free(ifk_bm25 **pix) {
    if (!pix || !*pix) return;
    ifk_bm25 *ix = *pix;
    for (int i = 0; i < ix->n_docs; i++) free(ix->doc[i].s);
    for (int t = 0; t < ix->n_terms; t++) free(ix->term[t].s), free(ix->post[t].p);
    free(ix->doc), free(ix->doc_len), free(ix->term), free(ix->post);
    free(ix->doc_map.slot), free(ix->term_map.slot);
    free(ix);
    *pix = NULL;
}

int ifk_bm25_ndocs(const ifk_bm25 *ix) { return ix ? ix->n_docs : 0; }

/* Adds a new term (already folded, owned by the caller until this succeeds); its id in *t. */
static ifk_status new_term_(ifk_bm25 *ix, const char *s, size_t len, uint64_t h, int32_t *t) {
    if (ix->n_terms == INT32_MAX) return IFK_FAIL(IFK_ERR_ARG, "bm25: more than %d distinct terms", INT32_MAX);
    size_t n = (size_t)ix->n_terms;
    IFK_CHECK(grow_((void **)&ix->term, &ix->cap_term, n + 1, sizeof *ix->term, "the term list"));
    IFK_CHECK(grow_((void **)&ix->post, &ix->cap_post, n + 1, sizeof *ix->post, "the postings lists"));
    IFK_CHECK(imap_reserve_(&ix->term_map, ix->term, n, n + 1));
    char *c = ifk_malloc(len + 1, "a term");
    if (!c) return IFK_ERR_OOM;
    for (size_t i = 0; i < len; i++) c[i] = (char)fold_((unsigned char)s[i]);
    c[len] = '\0';
    ix->term[n] = (strkey){c, len, h};
    ix->post[n] = (plist){NULL, 0, 0};
    imap_put_(&ix->term_map, ix->term, (int32_t)n);
    ix->n_terms++;
    *t = (int32_t)n;
    return IFK_OK;
}

/* One occurrence of s[0..len) (not yet folded) in document d, the document being added. */
static ifk_status add_occurrence_(ifk_bm25 *ix, const char *s, size_t len, int32_t d) {
    uint64_t h = hash_(s, len, 1);
    int32_t t = ix->term_map.slot[imap_probe_(&ix->term_map, ix->term, s, len, h, 1)];
    if (t < 0) IFK_CHECK(new_term_(ix, s, len, h, &t));
    plist *pl = &ix->post[t];
    if (pl->n > 0 && pl->p[pl->n - 1].doc == d) { /* tf <= doc length, which is checked < INT32_MAX */
        pl->p[pl->n - 1].tf++;
        return IFK_OK;
    }
    IFK_CHECK(grow_((void **)&pl->p, &pl->cap, pl->n + 1, sizeof *pl->p, "a postings list"));
    pl->p[pl->n++] = (posting){d, 1};
    return IFK_OK;
}

/* Undoes a partly added document d: drops its postings and the terms it introduced. */
static void add_rollback_(ifk_bm25 *ix, int n_terms0, int32_t d) {
    for (int t = 0; t < n_terms0; t++) {
        plist *pl = &ix->post[t];
        if (pl->n > 0 && pl->p[pl->n - 1].doc == d) pl->n--;
    }
    for (int t = n_terms0; t < ix->n_terms; t++) free(ix->term[t].s), free(ix->post[t].p);
    ix->n_terms = n_terms0;
    imap_rebuild_(&ix->term_map, ix->term, (size_t)n_terms0);
}

ifk_status ifk_bm25_add(ifk_bm25 *ix, const char *doc_id, const char *text, size_t len) {
    IFK_CHECK_ARG(ix && doc_id, "bm25: add needs an index and a document id");
    IFK_CHECK_ARG(text || len == 0, "bm25: document '%s' has no text pointer", doc_id);
    size_t idlen = strlen(doc_id);
    uint64_t h = hash_(doc_id, idlen, 0);
    if (ix->doc_map.slot[imap_probe_(&ix->doc_map, ix->doc, doc_id, idlen, h, 0)] >= 0)
        return IFK_FAIL(IFK_ERR_ARG, "bm25: duplicate document id '%s'", doc_id);
    if (ix->n_docs == INT32_MAX) return IFK_FAIL(IFK_ERR_ARG, "bm25: more than %d documents", INT32_MAX);

    /* everything the commit needs is allocated first, so only term insertion can fail midway */
    size_t nd = (size_t)ix->n_docs;
    IFK_CHECK(grow_((void **)&ix->doc, &ix->cap_doc, nd + 1, sizeof *ix->doc, "the document list"));
    IFK_CHECK(grow_((void **)&ix->doc_len, &ix->cap_doc_len, nd + 1, sizeof *ix->doc_len, "the document lengths"));
    IFK_CHECK(imap_reserve_(&ix->doc_map, ix->doc, nd, nd + 1));
    char *id = ifk_malloc(idlen + 1, "a document id");
    if (!id) return IFK_ERR_OOM;
    memcpy(id, doc_id, idlen + 1);

    int32_t d = (int32_t)nd;
    int n_terms0 = ix->n_terms;
    int64_t dl = 0;
    size_t pos = 0, start, tlen;
    ifk_status st = IFK_OK;
    while (next_term_(text, len, &pos, &start, &tlen)) {
        if (dl == INT32_MAX - 1) {
            st = IFK_FAIL(IFK_ERR_ARG, "bm25: document '%s' has too many terms (at most %d)", doc_id, INT32_MAX - 1);
            goto fail;
        }
        dl++;
        IFK_CHECK_GOTO(st, add_occurrence_(ix, text + start, tlen, d), fail);
    }
    ix->doc[nd] = (strkey){id, idlen, h};
    ix->doc_len[nd] = (int32_t)dl;
    imap_put_(&ix->doc_map, ix->doc, d);
    ix->n_docs++;
    ix->total_len += dl;
    return IFK_OK;
fail:
    add_rollback_(ix, n_terms0, d);
    free(id);
    return st;
}

/* ---- search ---------------------------------------------------------------------------------- */

static int cmp_keyptr_(const void *a, const void *b) {
    return strcmp((*(const strkey *const *)a)->s, (*(const strkey *const *)b)->s);
}

/* a ranks below b: lower score, or the same score and added later */
static inline int worse_(const double *sc, int32_t a, int32_t b) { return sc[a] < sc[b] || (sc[a] == sc[b] && a > b); }

/* Restores the heap property (every parent worse than its children) below node i. */
static void sift_down_(int32_t *h, size_t n, size_t i, const double *sc) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse_(sc, h[l], h[w])) w = l;
        if (r < n && worse_(sc, h[r], h[w])) w = r;
        if (w == i) return;
        int32_t t = h[i];
        h[i] = h[w], h[w] = t;
        i = w;
    }
}

ifk_status ifk_bm25_search(const ifk_bm25 *ix, const char *query, size_t len, int k, const char **ids,
                           double *scores, int *n) {
    IFK_CHECK_ARG(ix && n, "bm25: search needs an index and a result count");
    *n = 0;
    IFK_CHECK_ARG(k >= 0, "bm25: search: k must be >= 0 (got %d)", k);
    IFK_CHECK_ARG(k == 0 || (ids && scores), "bm25: search: no room for the results");
    IFK_CHECK_ARG(query || len == 0, "bm25: search: no query text");
    if (k == 0 || ix->n_docs == 0) return IFK_OK;

    ifk_status st = IFK_OK;
    const strkey **qt = NULL;
    size_t nq = 0, capq = 0;
    double *sc = NULL;
    int32_t *cand = NULL;

    /* the known query terms, each once, in bytewise order */
    size_t pos = 0, start, tlen;
    while (next_term_(query, len, &pos, &start, &tlen)) {
        const char *s = query + start;
        int32_t t = ix->term_map.slot[imap_probe_(&ix->term_map, ix->term, s, tlen, hash_(s, tlen, 1), 1)];
        if (t < 0) continue;
        IFK_CHECK_GOTO(st, grow_((void **)&qt, &capq, nq + 1, sizeof *qt, "the query terms"), done);
        qt[nq++] = &ix->term[t];
    }
    if (nq == 0) goto done;
    qsort(qt, nq, sizeof *qt, cmp_keyptr_);

    sc = ifk_calloc((size_t)ix->n_docs, sizeof *sc, "the BM25 scores");
    cand = ifk_malloc((size_t)ix->n_docs * sizeof *cand, "the BM25 candidates");
    if (!sc || !cand) {
        st = IFK_ERR_OOM;
        goto done;
    }
    size_t m = 0;
    const double N = ix->n_docs, avg = (double)ix->total_len / ix->n_docs, k1 = ix->k1, b = ix->b;
    for (size_t q = 0; q < nq; q++) {
        if (q > 0 && qt[q] == qt[q - 1]) continue;
        const plist *pl = &ix->post[qt[q] - ix->term];
        const double df = (double)pl->n, idf = log1p((N - df + 0.5) / (df + 0.5));
        for (size_t i = 0; i < pl->n; i++) {
            const int32_t d = pl->p[i].doc;
            const double tf = pl->p[i].tf, dl = ix->doc_len[d];
            /* avg > 0 here: a posting means some document has a term */
            const double w = idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avg));
            if (sc[d] == 0.0 && m < (size_t)ix->n_docs) cand[m++] = d; /* w > 0: each doc once */
            sc[d] += w;
        }
    }

    /* top min(k, m): a heap of the best seen so far with the worst at the root, then heapsort */
    size_t kk = (size_t)k < m ? (size_t)k : m;
    for (size_t i = kk / 2; i-- > 0;) sift_down_(cand, kk, i, sc);
    for (size_t i = kk; i < m; i++)
        if (worse_(sc, cand[0], cand[i])) {
            cand[0] = cand[i];
            sift_down_(cand, kk, 0, sc);
        }
    for (size_t e = kk; e-- > 1;) {
        int32_t t = cand[0];
        cand[0] = cand[e], cand[e] = t;
        sift_down_(cand, e, 0, sc);
    }
    for (size_t i = 0; i < kk; i++) {
        ids[i] = ix->doc[cand[i]].s;
        scores[i] = sc[cand[i]];
    }
    *n = (int)kk;
done:
    free(qt), free(sc), free(cand);
    return st;
}

/* ---- HDF5 helpers ---------------------------------------------------------------------------- */

typedef struct {
    H5E_auto2_t func;
    void *data;
    int saved;
} h5quiet;

/* HDF5 prints its error stack by default; library code prints nothing */
static void h5_quiet_begin_(h5quiet *q) {
    q->saved = H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) >= 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void h5_quiet_end_(const h5quiet *q) {
    if (q->saved) H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

static herr_t h5_walk_(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0 && e->desc) snprintf(data, 200, "%s", e->desc); /* the innermost error */
    return 0;
}

/* "PATH: <what> (HDF5: <innermost error>)" as IFK_ERR_H5 */
static ifk_status h5_fail_at_(const char *file, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ifk_status h5_fail_at_(const char *file, int line, const char *path, const char *fmt, ...) {
    char what[512], detail[200] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_, detail);
    detail[strcspn(detail, "\r\n")] = '\0';
    const int nolock = strstr(detail, "unable to lock file") != NULL; /* a file system without working locks */
    return ifk_fail_at(IFK_ERR_H5, file, line, "%s: %s%s%s%s%s", path, what, detail[0] ? " (HDF5: " : "", detail,
                       detail[0] ? ")" : "",
                       nolock ? ": the file system does not support file locks; set HDF5_USE_FILE_LOCKING=FALSE to "
                                "read without them (safe while no job writes the index)" : "");
}
#define H5FAIL(...) h5_fail_at_(__FILE__, __LINE__, path, __VA_ARGS__)

/* Runs an HDF5 call (negative = failure) inside a function with `st`, `path` and a fail: label. */
#define H5TRY(expr, ...)                   \
    do {                                   \
        if ((expr) < 0) {                  \
            st = H5FAIL(__VA_ARGS__);      \
            goto fail;                     \
        }                                  \
    } while (0)

#define H5CLOSE(fn, id)                \
    do {                               \
        if ((id) >= 0) (void)fn(id);   \
        (id) = H5I_INVALID_HID;        \
    } while (0)

/* variable-length UTF-8 string type; caller closes */
static hid_t vlen_str_type_(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* ---- save ------------------------------------------------------------------------------------ */

static ifk_status put_attr_(hid_t loc, const char *path, const char *name, hid_t ftype, hid_t mtype, const void *val) {
    ifk_status st = IFK_OK;
    hid_t sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    H5TRY(sp = H5Screate(H5S_SCALAR), "cannot create the dataspace of attribute '%s'", name);
    H5TRY(a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT), "cannot create attribute '%s'", name);
    H5TRY(H5Awrite(a, mtype, val), "cannot write attribute '%s'", name);
    H5TRY(H5Aclose(a), "cannot close attribute '%s'", name);
    a = H5I_INVALID_HID;
fail:
    H5CLOSE(H5Aclose, a);
    H5CLOSE(H5Sclose, sp);
    return st;
}

static ifk_status put_ds_(hid_t loc, const char *path, const char *name, hid_t ftype, hid_t mtype, size_t n,
                          const void *buf) {
    ifk_status st = IFK_OK;
    hid_t sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)n};
    H5TRY(sp = H5Screate_simple(1, dims, NULL), "cannot create the dataspace of /%s", name);
    H5TRY(d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "cannot create dataset /%s",
          name);
    if (n > 0) H5TRY(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "cannot write dataset /%s", name);
    H5TRY(H5Dclose(d), "cannot close dataset /%s", name);
    d = H5I_INVALID_HID;
fail:
    H5CLOSE(H5Dclose, d);
    H5CLOSE(H5Sclose, sp);
    return st;
}

/* open + fsync + close; directories too */
static ifk_status fsync_path_(const char *p, int dir, const char *path) {
    int fd = open(p, O_RDONLY | (dir ? O_DIRECTORY : 0));
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open %s to sync it: %s", path, p, strerror(errno));
    /* some file systems cannot sync a directory (EINVAL); the rename has still happened */
    if (fsync(fd) != 0 && !(dir && (errno == EINVAL || errno == ENOTSUP))) {
        int e = errno;
        close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot sync %s: %s", path, p, strerror(e));
    }
    close(fd);
    return IFK_OK;
}

static ifk_status save_(const ifk_bm25 *ix, const char *path) {
    ifk_status st = IFK_OK;
    hid_t file = H5I_INVALID_HID, root = H5I_INVALID_HID, str = H5I_INVALID_HID;
    int created = 0;
    const size_t plen = strlen(path), N = (size_t)ix->n_docs, T = (size_t)ix->n_terms;
    char *tmp = NULL, *dir = NULL;
    const char **strs = NULL;
    const strkey **order = NULL;
    int32_t *i32 = NULL, *pdocs = NULL, *ptf = NULL;
    int64_t *off = NULL;

    size_t P = 0;
    for (size_t t = 0; t < T; t++) P += ix->post[t].n;
    tmp = ifk_malloc(plen + 5, "a file name");
    dir = ifk_malloc(plen + 2, "a directory name");
    strs = ifk_malloc((N > T ? N : T) * sizeof *strs, "the strings to save");
    order = ifk_malloc(T * sizeof *order, "the term order");
    i32 = ifk_malloc((N > T ? N : T) * sizeof *i32, "the counts to save");
    off = ifk_malloc((T + 1) * sizeof *off, "the postings offsets");
    pdocs = ifk_malloc(P * sizeof *pdocs, "the postings");
    ptf = ifk_malloc(P * sizeof *ptf, "the postings");
    if (!tmp || !dir || !strs || !order || !i32 || !off || !pdocs || !ptf) {
        st = ifk_trace_at(IFK_ERR_OOM, __FILE__, __LINE__, __func__);
        goto fail;
    }
    snprintf(tmp, plen + 5, "%s.tmp", path);

    H5TRY(file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "cannot create %s", tmp);
    created = 1;
    H5TRY(root = H5Gopen2(file, "/", H5P_DEFAULT), "cannot open the root group of %s", tmp);
    H5TRY(str = vlen_str_type_(), "cannot make a string type");

    const char *fmt = BM25_FORMAT;
    const int32_t version = BM25_VERSION;
    const int64_t n_docs = ix->n_docs;
    const double avg = ix->n_docs ? (double)ix->total_len / ix->n_docs : 0.0;
    IFK_CHECK_GOTO(st, put_attr_(root, path, "format", str, str, &fmt), fail);
    IFK_CHECK_GOTO(st, put_attr_(root, path, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &version), fail);
    IFK_CHECK_GOTO(st, put_attr_(root, path, "k1", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &ix->k1), fail);
    IFK_CHECK_GOTO(st, put_attr_(root, path, "b", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &ix->b), fail);
    IFK_CHECK_GOTO(st, put_attr_(root, path, "n_docs", H5T_STD_I64LE, H5T_NATIVE_INT64, &n_docs), fail);
    IFK_CHECK_GOTO(st, put_attr_(root, path, "avg_len", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &avg), fail);

    for (size_t d = 0; d < N; d++) strs[d] = ix->doc[d].s;
    IFK_CHECK_GOTO(st, put_ds_(root, path, "doc_ids", str, str, N, strs), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "doc_len", H5T_STD_I32LE, H5T_NATIVE_INT32, N, ix->doc_len), fail);

    for (size_t t = 0; t < T; t++) order[t] = &ix->term[t];
    qsort(order, T, sizeof *order, cmp_keyptr_);
    off[0] = 0;
    for (size_t i = 0; i < T; i++) {
        const plist *pl = &ix->post[order[i] - ix->term];
        strs[i] = order[i]->s;
        i32[i] = (int32_t)pl->n;
        for (size_t j = 0; j < pl->n; j++) {
            pdocs[off[i] + (int64_t)j] = pl->p[j].doc;
            ptf[off[i] + (int64_t)j] = pl->p[j].tf;
        }
        off[i + 1] = off[i] + (int64_t)pl->n;
    }
    IFK_CHECK_GOTO(st, put_ds_(root, path, "terms", str, str, T, strs), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "df", H5T_STD_I32LE, H5T_NATIVE_INT32, T, i32), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "post_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, T + 1, off), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "post_docs", H5T_STD_I32LE, H5T_NATIVE_INT32, P, pdocs), fail);
    IFK_CHECK_GOTO(st, put_ds_(root, path, "post_tf", H5T_STD_I32LE, H5T_NATIVE_INT32, P, ptf), fail);

    H5TRY(H5Tclose(str), "cannot close a string type");
    str = H5I_INVALID_HID;
    H5TRY(H5Gclose(root), "cannot close the root group of %s", tmp);
    root = H5I_INVALID_HID;
    H5TRY(H5Fclose(file), "cannot close %s", tmp);
    file = H5I_INVALID_HID;

    IFK_CHECK_GOTO(st, fsync_path_(tmp, 0, path), fail);
    if (rename(tmp, path) != 0) {
        st = IFK_FAIL(IFK_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        goto fail;
    }
    created = 0;
    memcpy(dir, path, plen + 1);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    IFK_CHECK_GOTO(st, fsync_path_(dir, 1, path), fail);

fail:
    H5CLOSE(H5Tclose, str);
    H5CLOSE(H5Gclose, root);
    H5CLOSE(H5Fclose, file);
    if (created) unlink(tmp);
    free(tmp), free(dir), free(strs), free(order), free(i32), free(off), free(pdocs), free(ptf);
    return st;
}

ifk_status ifk_bm25_save(const ifk_bm25 *ix, const char *path) {
    IFK_CHECK_ARG(ix && path && *path, "bm25: save needs an index and a path");
    h5quiet q;
    h5_quiet_begin_(&q);
    ifk_status st = save_(ix, path);
    h5_quiet_end_(&q);
    return st;
}

/* ---- load ------------------------------------------------------------------------------------ */

#define FMTFAIL(...)                                                                \
    do {                                                                            \
        st = IFK_FAIL(IFK_ERR_FORMAT, __VA_ARGS__);                                  \
        goto fail;                                                                  \
    } while (0)

/* An integer type that converts to `memsize` signed bytes without loss. */
static int int_type_ok_(hid_t t, size_t memsize) {
    if (H5Tget_class(t) != H5T_INTEGER) return 0;
    size_t sz = H5Tget_size(t);
    H5T_sign_t sg = H5Tget_sign(t);
    return sz > 0 && (sz < memsize || (sz == memsize && sg == H5T_SGN_2));
}

enum { A_STR, A_INT, A_F64 };

/* Reads the scalar root attribute `name`: a string into str[0..cap) (A_STR), an integer that fits
 * int32 (memsize 4) or int64 (memsize 8) into *iv (A_INT), a float into *fv (A_F64). */
static ifk_status get_attr_(hid_t root, const char *path, const char *name, int kind, char *str, size_t cap,
                            size_t memsize, int64_t *iv, double *fv) {
    ifk_status st = IFK_OK;
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, sp = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    char *vs = NULL;
    htri_t ex;
    H5TRY(ex = H5Aexists(root, name), "cannot look for attribute '%s'", name);
    if (!ex) FMTFAIL("%s: not a BM25 index: attribute '%s' is missing", path, name);
    H5TRY(a = H5Aopen(root, name, H5P_DEFAULT), "cannot open attribute '%s'", name);
    H5TRY(ft = H5Aget_type(a), "cannot get the type of attribute '%s'", name);
    H5TRY(sp = H5Aget_space(a), "cannot get the dataspace of attribute '%s'", name);
    hssize_t np;
    H5TRY(np = H5Sget_simple_extent_npoints(sp), "cannot get the size of attribute '%s'", name);
    if (np != 1) FMTFAIL("%s: attribute '%s' has %lld values, expected 1", path, name, (long long)np);
    if (kind == A_STR) {
        if (H5Tget_class(ft) != H5T_STRING) FMTFAIL("%s: attribute '%s' is not a string", path, name);
        htri_t var;
        H5TRY(var = H5Tis_variable_str(ft), "cannot inspect the type of attribute '%s'", name);
        H5TRY(mt = H5Tcopy(H5T_C_S1), "cannot make a string type");
        if (var) {
            H5TRY(H5Tset_size(mt, H5T_VARIABLE), "cannot make a string type");
            H5TRY(H5Tset_cset(mt, H5Tget_cset(ft)), "cannot make a string type");
            H5TRY(H5Aread(a, mt, &vs), "cannot read attribute '%s'", name);
            snprintf(str, cap, "%s", vs ? vs : "");
        } else {
            size_t sz = H5Tget_size(ft);
            if (sz == 0 || sz >= cap) FMTFAIL("%s: attribute '%s' is a string of unexpected size %zu", path, name, sz);
            H5TRY(H5Tset_size(mt, sz + 1), "cannot make a string type");
            H5TRY(H5Tset_strpad(mt, H5T_STR_NULLTERM), "cannot make a string type");
            H5TRY(H5Tset_cset(mt, H5Tget_cset(ft)), "cannot make a string type");
            memset(str, 0, cap);
            H5TRY(H5Aread(a, mt, str), "cannot read attribute '%s'", name);
        }
    } else if (kind == A_INT) {
        if (!int_type_ok_(ft, memsize))
            FMTFAIL("%s: attribute '%s' is not an integer of at most %zu bytes", path, name, memsize);
        H5TRY(H5Aread(a, H5T_NATIVE_INT64, iv), "cannot read attribute '%s'", name);
    } else {
        if (H5Tget_class(ft) != H5T_FLOAT || H5Tget_size(ft) > 8)
            FMTFAIL("%s: attribute '%s' is not a float64", path, name);
        H5TRY(H5Aread(a, H5T_NATIVE_DOUBLE, fv), "cannot read attribute '%s'", name);
    }
fail:
    if (vs) H5free_memory(vs);
    H5CLOSE(H5Tclose, mt);
    H5CLOSE(H5Sclose, sp);
    H5CLOSE(H5Tclose, ft);
    H5CLOSE(H5Aclose, a);
    return st;
}

enum { D_STR, D_I32, D_I64 };

/* Opens the one-dimensional dataset /name, checks its element type, and returns it with its length. */
static ifk_status open_ds_(hid_t file, const char *path, const char *name, int kind, hid_t *out, int64_t *n) {
    ifk_status st = IFK_OK;
    hid_t d = H5I_INVALID_HID, ft = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    htri_t ex;
    H5TRY(ex = H5Lexists(file, name, H5P_DEFAULT), "cannot look for dataset /%s", name);
    if (!ex) FMTFAIL("%s: not a BM25 index: dataset /%s is missing", path, name);
    H5TRY(d = H5Oopen(file, name, H5P_DEFAULT), "cannot open /%s", name);
    if (H5Iget_type(d) != H5I_DATASET) FMTFAIL("%s: /%s is not a dataset", path, name);
    H5TRY(ft = H5Dget_type(d), "cannot get the type of dataset /%s", name);
    if (kind == D_STR) {
        if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0)
            FMTFAIL("%s: dataset /%s does not hold variable-length strings", path, name);
    } else if (!int_type_ok_(ft, kind == D_I32 ? 4 : 8)) {
        FMTFAIL("%s: dataset /%s is not of %s", path, name, kind == D_I32 ? "int32" : "int64");
    }
    H5TRY(sp = H5Dget_space(d), "cannot get the dataspace of dataset /%s", name);
    int rank;
    H5TRY(rank = H5Sget_simple_extent_ndims(sp), "cannot get the rank of dataset /%s", name);
    if (rank != 1 || H5Sget_simple_extent_type(sp) != H5S_SIMPLE)
        FMTFAIL("%s: dataset /%s is not one-dimensional", path, name);
    hsize_t dims[1];
    H5TRY(H5Sget_simple_extent_dims(sp, dims, NULL), "cannot get the size of dataset /%s", name);
    if (dims[0] > (hsize_t)INT64_MAX / 16) FMTFAIL("%s: dataset /%s is impossibly long", path, name);
    *n = (int64_t)dims[0];
    *out = d;
    d = H5I_INVALID_HID;
fail:
    H5CLOSE(H5Sclose, sp);
    H5CLOSE(H5Tclose, ft);
    H5CLOSE(H5Oclose, d);
    return st;
}

/* calloc for n file-given entries, failing with the path and the dataset */
static ifk_status lalloc_(void **p, const char *path, const char *name, int64_t n, size_t elem) {
    if ((uint64_t)n > SIZE_MAX / elem || !(*p = calloc(n ? (size_t)n : 1, elem)))
        return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory reading /%s (%lld entries)", path, name, (long long)n);
    return IFK_OK;
}

/* Reads all of dataset d (n entries) into buf as memtype. */
static ifk_status read_ds_(hid_t d, const char *path, const char *name, hid_t memtype, int64_t n, void *buf) {
    ifk_status st = IFK_OK;
    if (n > 0) H5TRY(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "cannot read dataset /%s", name);
fail:
    return st;
}

/* Reads the variable-length strings of d into keys[0..n) (copies owned by keys; NULL reads as ""). */
static ifk_status read_strs_(hid_t d, const char *path, const char *name, int64_t n, strkey *keys) {
    ifk_status st = IFK_OK;
    hid_t ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    char **raw = NULL;
    IFK_CHECK_GOTO(st, lalloc_((void **)&raw, path, name, n, sizeof *raw), fail);
    H5TRY(ft = H5Dget_type(d), "cannot get the type of dataset /%s", name);
    H5TRY(mt = vlen_str_type_(), "cannot make a string type");
    H5TRY(H5Tset_cset(mt, H5Tget_cset(ft)), "cannot make a string type");
    IFK_CHECK_GOTO(st, read_ds_(d, path, name, mt, n, raw), fail);
    for (int64_t i = 0; i < n; i++) {
        const char *s = raw[i] ? raw[i] : "";
        size_t len = strlen(s);
        if (!(keys[i].s = malloc(len + 1))) {
            st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory reading /%s", path, name);
            goto fail;
        }
        memcpy(keys[i].s, s, len + 1);
        keys[i].len = len;
    }
fail:
    if (raw)
        for (int64_t i = 0; i < n; i++)
            if (raw[i]) H5free_memory(raw[i]);
    free(raw);
    H5CLOSE(H5Tclose, mt);
    H5CLOSE(H5Tclose, ft);
    return st;
}

enum { DS_DOC_IDS, DS_DOC_LEN, DS_TERMS, DS_DF, DS_OFFSETS, DS_POST_DOCS, DS_POST_TF, N_DS };
static const struct {
    const char *name;
    int kind;
} ds_spec_[N_DS] = {{"doc_ids", D_STR}, {"doc_len", D_I32},      {"terms", D_STR},   {"df", D_I32},
                    {"post_offsets", D_I64}, {"post_docs", D_I32}, {"post_tf", D_I32}};

static ifk_status load_(ifk_bm25 **out, const char *path) {
    ifk_status st = IFK_OK;
    hid_t file = H5I_INVALID_HID, root = H5I_INVALID_HID, ds[N_DS];
    for (int i = 0; i < N_DS; i++) ds[i] = H5I_INVALID_HID;
    ifk_bm25 *ix = NULL;
    int32_t *doc_len = NULL, *df = NULL, *pdocs = NULL, *ptf = NULL;
    int64_t *off = NULL, *sums = NULL;
    strkey *docs = NULL, *terms = NULL;
    int64_t len[N_DS], N = 0, T = 0, P = 0;

    int fd = open(path, O_RDONLY);
    if (fd < 0) return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    int isreg = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    close(fd);
    if (!isreg) return IFK_FAIL(IFK_ERR_IO, "%s: not a regular file", path);
    htri_t is5;
    H5TRY(is5 = H5Fis_hdf5(path), "cannot read the file");
    if (!is5) FMTFAIL("%s: not an HDF5 file", path);
    H5TRY(file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), "cannot open the HDF5 file");
    H5TRY(root = H5Gopen2(file, "/", H5P_DEFAULT), "cannot open the root group");

    /* attributes */
    char format[64];
    int64_t version = 0, n_docs = 0;
    double k1 = 0, b = 0, avg = 0;
    IFK_CHECK_GOTO(st, get_attr_(root, path, "format", A_STR, format, sizeof format, 0, NULL, NULL), fail);
    if (strcmp(format, BM25_FORMAT) != 0)
        FMTFAIL("%s: not a BM25 index: format is '%s', expected '%s'", path, format, BM25_FORMAT);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "format_version", A_INT, NULL, 0, 4, &version, NULL), fail);
    if (version != BM25_VERSION)
        FMTFAIL("%s: format_version %lld is not supported (this build reads %d)", path, (long long)version, BM25_VERSION);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "k1", A_F64, NULL, 0, 0, NULL, &k1), fail);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "b", A_F64, NULL, 0, 0, NULL, &b), fail);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "n_docs", A_INT, NULL, 0, 8, &n_docs, NULL), fail);
    IFK_CHECK_GOTO(st, get_attr_(root, path, "avg_len", A_F64, NULL, 0, 0, NULL, &avg), fail);
    if (!isfinite(k1) || k1 < 0) FMTFAIL("%s: k1 = %g, expected a finite value >= 0", path, k1);
    if (!isfinite(b) || b < 0 || b > 1) FMTFAIL("%s: b = %g, expected 0 <= b <= 1", path, b);
    if (n_docs < 0 || n_docs > INT32_MAX) FMTFAIL("%s: n_docs = %lld is out of range", path, (long long)n_docs);
    if (!isfinite(avg) || avg < 0) FMTFAIL("%s: avg_len = %g is not a length", path, avg);

    /* shapes, before anything sized by the file is allocated */
    for (int i = 0; i < N_DS; i++)
        IFK_CHECK_GOTO(st, open_ds_(file, path, ds_spec_[i].name, ds_spec_[i].kind, &ds[i], &len[i]), fail);
    N = n_docs, T = len[DS_TERMS], P = len[DS_POST_DOCS];
    if (len[DS_DOC_IDS] != N || len[DS_DOC_LEN] != N)
        FMTFAIL("%s: n_docs = %lld but /doc_ids has %lld entries and /doc_len %lld", path, (long long)N,
                (long long)len[DS_DOC_IDS], (long long)len[DS_DOC_LEN]);
    if (T > INT32_MAX) FMTFAIL("%s: /terms has %lld entries, more than %d", path, (long long)T, INT32_MAX);
    if (len[DS_DF] != T) FMTFAIL("%s: /df has %lld entries, /terms %lld", path, (long long)len[DS_DF], (long long)T);
    if (len[DS_OFFSETS] != T + 1)
        FMTFAIL("%s: /post_offsets has %lld entries, expected n_terms + 1 = %lld", path, (long long)len[DS_OFFSETS],
                (long long)T + 1);
    if (len[DS_POST_TF] != P)
        FMTFAIL("%s: /post_tf has %lld entries, /post_docs %lld", path, (long long)len[DS_POST_TF], (long long)P);

    /* the small arrays first: offsets are checked before the postings are read */
    IFK_CHECK_GOTO(st, lalloc_((void **)&doc_len, path, "doc_len", N, sizeof *doc_len), fail);
    IFK_CHECK_GOTO(st, lalloc_((void **)&df, path, "df", T, sizeof *df), fail);
    IFK_CHECK_GOTO(st, lalloc_((void **)&off, path, "post_offsets", T + 1, sizeof *off), fail);
    IFK_CHECK_GOTO(st, read_ds_(ds[DS_DOC_LEN], path, "doc_len", H5T_NATIVE_INT32, N, doc_len), fail);
    IFK_CHECK_GOTO(st, read_ds_(ds[DS_DF], path, "df", H5T_NATIVE_INT32, T, df), fail);
    IFK_CHECK_GOTO(st, read_ds_(ds[DS_OFFSETS], path, "post_offsets", H5T_NATIVE_INT64, T + 1, off), fail);
    int64_t total = 0;
    for (int64_t d = 0; d < N; d++) {
        if (doc_len[d] < 0) FMTFAIL("%s: /doc_len[%lld] = %d is negative", path, (long long)d, doc_len[d]);
        total += doc_len[d];
    }
    if (off[0] != 0) FMTFAIL("%s: /post_offsets[0] = %lld, expected 0", path, (long long)off[0]);
    for (int64_t t = 0; t < T; t++) {
        if (off[t + 1] < off[t])
            FMTFAIL("%s: /post_offsets is not monotonic at %lld (%lld then %lld)", path, (long long)t,
                    (long long)off[t], (long long)off[t + 1]);
        if (df[t] < 1 || df[t] > N) FMTFAIL("%s: /df[%lld] = %d is out of range", path, (long long)t, df[t]);
        if (off[t + 1] - off[t] != df[t])
            FMTFAIL("%s: /post_offsets gives term %lld %lld postings but /df says %d", path, (long long)t,
                    (long long)(off[t + 1] - off[t]), df[t]);
    }
    if (off[T] != P)
        FMTFAIL("%s: /post_offsets ends at %lld but /post_docs has %lld entries", path, (long long)off[T], (long long)P);

    IFK_CHECK_GOTO(st, lalloc_((void **)&pdocs, path, "post_docs", P, sizeof *pdocs), fail);
    IFK_CHECK_GOTO(st, lalloc_((void **)&ptf, path, "post_tf", P, sizeof *ptf), fail);
    IFK_CHECK_GOTO(st, lalloc_((void **)&sums, path, "doc_len", N, sizeof *sums), fail);
    IFK_CHECK_GOTO(st, read_ds_(ds[DS_POST_DOCS], path, "post_docs", H5T_NATIVE_INT32, P, pdocs), fail);
    IFK_CHECK_GOTO(st, read_ds_(ds[DS_POST_TF], path, "post_tf", H5T_NATIVE_INT32, P, ptf), fail);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = off[t]; i < off[t + 1]; i++) {
            if (pdocs[i] < 0 || pdocs[i] >= N)
                FMTFAIL("%s: /post_docs[%lld] = %d is not a document index (n_docs = %lld)", path, (long long)i,
                        pdocs[i], (long long)N);
            if (i > off[t] && pdocs[i] <= pdocs[i - 1])
                FMTFAIL("%s: /post_docs is not strictly ascending within term %lld (at %lld)", path, (long long)t,
                        (long long)i);
            if (ptf[i] < 1) FMTFAIL("%s: /post_tf[%lld] = %d, expected >= 1", path, (long long)i, ptf[i]);
            sums[pdocs[i]] += ptf[i];
        }
    for (int64_t d = 0; d < N; d++)
        if (sums[d] != doc_len[d])
            FMTFAIL("%s: /doc_len[%lld] = %d but its postings hold %lld terms", path, (long long)d, doc_len[d],
                    (long long)sums[d]);
    const double want_avg = N ? (double)total / (double)N : 0.0;
    if (fabs(avg - want_avg) > 1e-9 * (want_avg > 1 ? want_avg : 1))
        FMTFAIL("%s: avg_len = %.17g but the mean of /doc_len is %.17g", path, avg, want_avg);

    /* strings */
    IFK_CHECK_GOTO(st, lalloc_((void **)&docs, path, "doc_ids", N, sizeof *docs), fail);
    IFK_CHECK_GOTO(st, lalloc_((void **)&terms, path, "terms", T, sizeof *terms), fail);
    IFK_CHECK_GOTO(st, read_strs_(ds[DS_DOC_IDS], path, "doc_ids", N, docs), fail);
    IFK_CHECK_GOTO(st, read_strs_(ds[DS_TERMS], path, "terms", T, terms), fail);
    for (int64_t t = 0; t < T; t++) {
        if (terms[t].len == 0) FMTFAIL("%s: /terms[%lld] is empty", path, (long long)t);
        for (size_t i = 0; i < terms[t].len; i++) {
            unsigned char c = (unsigned char)terms[t].s[i];
            if (!term_byte_(c) || fold_(c) != c)
                FMTFAIL("%s: /terms[%lld] = '%s' is not an analysed term", path, (long long)t, terms[t].s);
        }
        if (t > 0 && strcmp(terms[t - 1].s, terms[t].s) >= 0)
            FMTFAIL("%s: /terms is not sorted and distinct at %lld ('%s' then '%s')", path, (long long)t,
                    terms[t - 1].s, terms[t].s);
        terms[t].h = hash_(terms[t].s, terms[t].len, 0);
    }

    for (int i = 0; i < N_DS; i++) H5CLOSE(H5Dclose, ds[i]);
    H5CLOSE(H5Gclose, root);
    H5TRY(H5Fclose(file), "cannot close the file");
    file = H5I_INVALID_HID;

    /* the index: doc ids (uniqueness checked by the map), terms, postings */
    IFK_CHECK_GOTO(st, ifk_bm25_create(&ix), fail);
    ix->k1 = k1, ix->b = b;
    IFK_CHECK_GOTO(st, imap_reserve_(&ix->doc_map, NULL, 0, (size_t)N), fail);
    IFK_CHECK_GOTO(st, imap_reserve_(&ix->term_map, NULL, 0, (size_t)T), fail);
    IFK_CHECK_GOTO(st, lalloc_((void **)&ix->post, path, "post_docs", T, sizeof *ix->post), fail);
    ix->doc = docs, ix->cap_doc = (size_t)N, docs = NULL;
    ix->doc_len = doc_len, ix->cap_doc_len = (size_t)N, doc_len = NULL;
    ix->term = terms, ix->cap_term = ix->cap_post = (size_t)T, terms = NULL;
    ix->n_terms = (int)T; /* the strings now belong to ix, the postings lists are empty */
    ix->total_len = total;
    for (int64_t d = 0; d < N; d++) {
        strkey *k = &ix->doc[d];
        k->h = hash_(k->s, k->len, 0);
        size_t at = imap_probe_(&ix->doc_map, ix->doc, k->s, k->len, k->h, 0);
        if (ix->doc_map.slot[at] >= 0) {
            ix->n_docs = (int)N; /* every id is owned by ix */
            FMTFAIL("%s: /doc_ids[%lld] = '%s' repeats /doc_ids[%d]", path, (long long)d, k->s, ix->doc_map.slot[at]);
        }
        ix->doc_map.slot[at] = (int32_t)d;
    }
    ix->n_docs = (int)N;
    for (int64_t t = 0; t < T; t++) {
        imap_put_(&ix->term_map, ix->term, (int32_t)t);
        plist *pl = &ix->post[t];
        pl->n = pl->cap = (size_t)(off[t + 1] - off[t]);
        if (!(pl->p = malloc(pl->n * sizeof *pl->p))) {
            st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory building the postings", path);
            goto fail;
        }
        for (size_t i = 0; i < pl->n; i++) pl->p[i] = (posting){pdocs[off[t] + (int64_t)i], ptf[off[t] + (int64_t)i]};
    }
    *out = ix;
    ix = NULL;

fail:
    for (int i = 0; i < N_DS; i++) H5CLOSE(H5Dclose, ds[i]);
    H5CLOSE(H5Gclose, root);
    H5CLOSE(H5Fclose, file);
    if (docs)
        for (int64_t i = 0; i < N; i++) free(docs[i].s);
    if (terms)
        for (int64_t i = 0; i < T; i++) free(terms[i].s);
    free(docs), free(terms), free(doc_len), free(df), free(pdocs), free(ptf), free(off), free(sums);
    ifk_bm25_free(&ix);
    return st;
}

ifk_status ifk_bm25_load(ifk_bm25 **ix, const char *path) {
    IFK_CHECK_ARG(ix && path, "bm25: load needs somewhere to put the index and a path");
    *ix = NULL;
    h5quiet q;
    h5_quiet_begin_(&q);
    ifk_status st = load_(ix, path);
    h5_quiet_end_(&q);
    return st;
}
