/* bm25_disk.c — searching index files on disk (bm25.h, ifk_bm25_disk): per search, only what the
 * query touches is read.
 *
 * Per file, at ifk_bm25_disk_add: the header (attributes, every dataset's type, layout and length;
 * bm25_io.c) and nothing sized by the file. The file's sum of document lengths is recovered from
 * avg_len and n_docs: the writer stores avg_len = (double)sum / n_docs, and the reader requires
 * exactly that relation for the recovered integer (unique while the sum stays below 2^52 terms).
 *
 * Per search, for each file:
 *   1. each distinct query term is looked up in /terms: a binary search reading single entries
 *      until at most BLOCK_ terms remain, then those in one read; every entry read is checked
 *      (analysed, strictly between the entries that bound it);
 *   2. its /df entry and its two /post_offsets entries (checked against each other and P);
 * then, once the document frequencies are summed over files (idf needs the total), for each file:
 *   3. the postings of the query's terms (/post_docs, /post_tf ranges; documents in range and
 *      ascending, tf >= 1);
 *   4. /doc_len of the documents in those postings (one range read when they are dense, else a
 *      point selection; each at least the tf the query's terms give it);
 *   5. each document's score, the query's terms summed in bytewise order as ifk_bm25_search does
 *      (the same weight function: bit-identical scores);
 *   6. /doc_ids of the documents that can still be among the best k: those scoring at least the
 *      k-th best score of the held hits and this file's (one point selection), each then put
 *      through a top-k heap (heap.h) over all files ordered by score, then id bytewise, as
 *      ifk_bm25_search orders them. Below that score a document has k better ones; the ids read
 *      are the (< k) better hits plus the ties at that score (all of them when every document
 *      ties, which the id order needs).
 *
 * Not checked here, and checked by ifk_bm25_load (verify): entries of a file the query does not
 * read, the sum of tf per document over all terms, duplicate document ids. */
#include <stdlib.h>
#include <string.h>

#include "bm25_impl.h"
#include "h5util.h"
#include "heap.h"

#define BLOCK_ 64 /* terms read in one go at the end of a binary search */

typedef struct {
    ifk_bm25_file f; /* f.path = path */
    char *path;
    int64_t first, total; /* the index of its first document among all files'; sum of its doc_len */
} dfile_;

struct ifk_bm25_disk {
    dfile_ *f;
    int n, cap;
    int64_t N, total;
    double k1, b;
    char **ids; /* the last search's result ids, owned */
    int n_ids;
    long long postings_read;
};

#define FMTFAIL(...)                                     \
    do {                                                 \
        st = IFK_FAIL(IFK_ERR_FORMAT, __VA_ARGS__);       \
        goto fail;                                       \
    } while (0)

ifk_status ifk_bm25_disk_create(ifk_bm25_disk **out) {
    IFK_CHECK_ARG(out, "bm25: disk: create needs somewhere to put the reader");
    *out = ifk_calloc(1, sizeof **out, "the index reader");
    return *out ? IFK_OK : IFK_ERR_OOM;
}

static void free_ids_(ifk_bm25_disk *dx) {
    for (int i = 0; i < dx->n_ids; i++) free(dx->ids[i]);
    free(dx->ids);
    dx->ids = NULL, dx->n_ids = 0;
}

void ifk_bm25_disk_free(ifk_bm25_disk **pdx) {
    if (!pdx || !*pdx) return;
    ifk_bm25_disk *dx = *pdx;
    for (int i = 0; i < dx->n; i++) ifk_bm25_file_close(&dx->f[i].f), free(dx->f[i].path);
    free(dx->f);
    free_ids_(dx);
    free(dx);
    *pdx = NULL;
}

int ifk_bm25_disk_ndocs(const ifk_bm25_disk *dx) { return dx ? (int)dx->N : 0; }
int ifk_bm25_disk_file_ndocs(const ifk_bm25_disk *dx, int i) { return dx && i >= 0 && i < dx->n ? (int)dx->f[i].f.N : 0; }
long long ifk_bm25_disk_postings_read(const ifk_bm25_disk *dx) { return dx ? dx->postings_read : 0; }

ifk_status ifk_bm25_disk_add(ifk_bm25_disk *dx, const char *path) {
    IFK_CHECK_ARG(dx && path, "bm25: disk: add needs a reader and a path");
    size_t cap = (size_t)dx->cap;
    IFK_CHECK(ifk_bm25_grow((void **)&dx->f, &cap, (size_t)dx->n + 1, sizeof *dx->f, "the index files"));
    dx->cap = (int)cap;
    dfile_ *d = &dx->f[dx->n];
    memset(d, 0, sizeof *d);
    if (!(d->path = strdup(path))) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
    ifk_status st = ifk_bm25_file_open(&d->f, d->path);
    if (st != IFK_OK) {
        free(d->path);
        return st;
    }
    const ifk_bm25_file *f = &d->f;
    if (f->N > 0) {
        long double t = roundl((long double)f->avg * (long double)f->N);
        if (!(t >= 0 && t <= (long double)f->N * INT32_MAX) || (double)(int64_t)t / (double)f->N != f->avg)
            FMTFAIL("%s: avg_len = %.17g is not the mean of whole document lengths over n_docs = %lld", path, f->avg,
                    (long long)f->N);
        d->total = (int64_t)t;
    }
    if (dx->n > 0 && (f->k1 != dx->k1 || f->b != dx->b))
        FMTFAIL("%s: k1 = %g, b = %g, but the first index file (%s) has k1 = %g, b = %g", path, f->k1, f->b,
                dx->f[0].path, dx->k1, dx->b);
    if (dx->N + f->N > INT32_MAX) FMTFAIL("%s: more than %d documents in all", path, INT32_MAX);
    if (dx->n == 0) dx->k1 = f->k1, dx->b = f->b;
    d->first = dx->N;
    dx->N += f->N, dx->total += d->total;
    dx->n++;
    return IFK_OK;
fail:
    ifk_bm25_file_close(&d->f);
    free(d->path);
    return st;
}

/* ---- step 1-2: a term's postings range in one file ------------------------------------------ */

/* Reads /terms[start, start + n) into s[0..n) (HDF5's strings: free_strs_), each checked. */
static ifk_status read_terms_(const dfile_ *d, hid_t str, int64_t start, int64_t n, char **s) {
    memset(s, 0, sizeof *s * (size_t)n);
    IFK_CHECK(ifk_bm25_file_read(&d->f, IFK_BM25_TERMS, str, start, n, s));
    for (int64_t i = 0; i < n; i++) IFK_CHECK(ifk_bm25_check_term(d->path, start + i, s[i]));
    return IFK_OK;
}

static void free_strs_(char **s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (s[i]) H5free_memory(s[i]), s[i] = NULL;
}

/* The index of term in d's /terms, or -1. Bounds below/above (terms read earlier, or NULL) must
 * enclose every entry read between them, strictly: a file whose terms are out of order fails. */
static ifk_status find_term_(const dfile_ *d, hid_t str, const char *term, int64_t *at) {
    ifk_status st = IFK_OK;
    char *below = NULL, *above = NULL, *block[BLOCK_] = {0};
    int64_t lo = 0, hi = d->f.T, nb = 0;
    *at = -1;
    while (hi - lo > BLOCK_) {
        const int64_t mid = lo + (hi - lo) / 2;
        char *s = NULL;
        if ((st = read_terms_(d, str, mid, 1, &s)) != IFK_OK) {
            free_strs_(&s, 1);
            goto fail;
        }
        if ((below && strcmp(below, s) >= 0) || (above && strcmp(s, above) >= 0)) {
            H5free_memory(s);
            FMTFAIL("%s: /terms is not sorted and distinct (at %lld)", d->path, (long long)mid);
        }
        const int c = strcmp(term, s);
        if (c == 0) {
            H5free_memory(s);
            *at = mid;
            goto fail; /* done */
        }
        char **bound = c < 0 ? &above : &below;
        if (*bound) H5free_memory(*bound);
        *bound = s;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    nb = hi - lo;
    IFK_CHECK_GOTO(st, read_terms_(d, str, lo, nb, block), fail);
    for (int64_t i = 0; i < nb; i++) {
        const char *prev = i ? block[i - 1] : below;
        if ((prev && strcmp(prev, block[i]) >= 0) || (i + 1 == nb && above && strcmp(block[i], above) >= 0))
            FMTFAIL("%s: /terms is not sorted and distinct (at %lld)", d->path, (long long)(lo + i));
        if (!strcmp(block[i], term)) *at = lo + i;
    }
fail:
    free_strs_(block, nb);
    if (below) H5free_memory(below);
    if (above) H5free_memory(above);
    return st;
}

typedef struct {
    int64_t off; /* first posting */
    int32_t df;  /* 0: the term is not in this file */
} range_;

/* Term t's postings range in d: /df[t] and /post_offsets[t..t+1], checked. */
static ifk_status term_range_(const dfile_ *d, int64_t t, range_ *r) {
    ifk_status st = IFK_OK;
    int32_t df;
    int64_t off[2];
    IFK_CHECK(ifk_bm25_file_read(&d->f, IFK_BM25_DF, H5T_NATIVE_INT32, t, 1, &df));
    IFK_CHECK(ifk_bm25_file_read(&d->f, IFK_BM25_OFFSETS, H5T_NATIVE_INT64, t, 2, off));
    if (df < 1 || df > d->f.N) FMTFAIL("%s: /df[%lld] = %d is out of range", d->path, (long long)t, df);
    if (off[0] < 0 || off[1] > d->f.P || off[1] - off[0] != df)
        FMTFAIL("%s: /post_offsets gives term %lld postings [%lld, %lld) but /df says %d and /post_docs has %lld",
                d->path, (long long)t, (long long)off[0], (long long)off[1], df, (long long)d->f.P);
    r->off = off[0], r->df = df;
fail:
    return st;
}

/* ---- steps 3-5: one file's documents scored into the heap -------------------------------------- */

typedef struct {
    double s;
    char *id; /* owned */
} hit_;

/* a ranks below b: lower score, or the same score and a bytewise greater id (as ifk_bm25_search) */
static int worse_(const void *pa, const void *pb) {
    const hit_ *a = pa, *b = pb;
    return a->s < b->s || (a->s == b->s && strcmp(a->id, b->id) > 0);
}

/* The best cap hits so far, the worst first out (ifk_heap over hits[cap]). */
typedef struct {
    ifk_heap h;
    int cap;
} heap_;

/* Puts x (its id owned) into the heap, or frees its id when the heap is full of better hits. */
static void heap_push_(heap_ *hp, hit_ x) {
    if (hp->h.n == hp->cap) {
        if (!worse_(hp->h.base, &x)) { /* the root is the worst held */
            free(x.id);
            return;
        }
        hit_ out;
        ifk_heap_pop(&hp->h, &out);
        free(out.id);
    }
    ifk_heap_push(&hp->h, &x);
}

static void heap_clear_(heap_ *hp) {
    hit_ out;
    while (hp->h.n > 0) ifk_heap_pop(&hp->h, &out), free(out.id);
}

/* Reads dataset ds at the entries u[0..m) (ascending) as memtype into buf: one point selection. */
static ifk_status read_points_(const dfile_ *d, int ds, hid_t memtype, const int32_t *u, size_t m, void *buf) {
    ifk_status st = IFK_OK;
    const char *name = ifk_bm25_ds_name[ds];
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hsize_t *pt = ifk_malloc(m * sizeof *pt, "a point selection"), cnt[1] = {(hsize_t)m};
    if (!pt) return IFK_ERR_OOM;
    for (size_t i = 0; i < m; i++) pt[i] = (hsize_t)u[i];
    IFK_H5_CHECK(st, fs = H5Dget_space(d->f.ds[ds]), "%s: cannot get the dataspace of /%s", d->path, name);
    IFK_H5_CHECK(st, H5Sselect_elements(fs, H5S_SELECT_SET, m, pt), "%s: cannot select in /%s", d->path, name);
    IFK_H5_CHECK(st, ms = H5Screate_simple(1, cnt, NULL), "%s: cannot make a dataspace", d->path);
    IFK_H5_CHECK(st, H5Dread(d->f.ds[ds], memtype, ms, fs, d->f.xfer, buf), "%s: cannot read /%s (%zu entries)",
                 d->path, name, m);
fail:
    ifk_h5_close(&ms);
    ifk_h5_close(&fs);
    free(pt);
    return st;
}

/* Reads /doc_len of the documents u[0..m) (ascending) into dl. */
static ifk_status read_doc_len_(const dfile_ *d, const int32_t *u, size_t m, int32_t *dl) {
    const int64_t span = (int64_t)u[m - 1] - u[0] + 1;
    if (span > 4 * (int64_t)m + 64) return read_points_(d, IFK_BM25_DOC_LEN, H5T_NATIVE_INT32, u, m, dl);
    int32_t *all = ifk_malloc((size_t)span * sizeof *all, "the document lengths"); /* dense: one range */
    if (!all) return IFK_ERR_OOM;
    ifk_status st = ifk_bm25_file_read(&d->f, IFK_BM25_DOC_LEN, H5T_NATIVE_INT32, u[0], span, all);
    for (size_t i = 0; st == IFK_OK && i < m; i++) dl[i] = all[u[i] - u[0]];
    free(all);
    return st;
}

static int dbl_before_(const void *a, const void *b) { return *(const double *)a < *(const double *)b; }

/* The least score a hit needs to be among the best hp->cap of the held hits and sc[0..m): the
 * cap-th best of them (a min-heap of the cap best scores: O((held + m) log cap)); -1 (every hit
 * qualifies) when there are no more than cap. */
static ifk_status threshold_(const heap_ *hp, const double *sc, size_t m, double *t) {
    *t = -1.0;
    if ((size_t)hp->h.n + m <= (size_t)hp->cap) return IFK_OK;
    ifk_heap h = {.base = ifk_malloc((size_t)hp->cap * sizeof(double), "the scores"), .size = sizeof(double),
                  .before = dbl_before_};
    if (!h.base) return IFK_ERR_OOM;
    for (size_t i = 0; i < (size_t)hp->h.n + m; i++) {
        const double x = i < (size_t)hp->h.n ? ((const hit_ *)hp->h.base)[i].s : sc[i - (size_t)hp->h.n];
        double out;
        if (h.n == hp->cap) {
            if (!(x > *(const double *)h.base)) continue;
            ifk_heap_pop(&h, &out);
        }
        ifk_heap_push(&h, &x);
    }
    *t = *(const double *)h.base;
    free(h.base);
    return IFK_OK;
}

/* Puts the documents u[0..m) of d with scores sc[0..m) that can be among the best into hp, with
 * their ids (step 6). u and sc are reordered. */
static ifk_status push_hits_(const dfile_ *d, hid_t str, int32_t *u, double *sc, size_t m, heap_ *hp) {
    ifk_status st = IFK_OK;
    double t;
    IFK_CHECK(threshold_(hp, sc, m, &t));
    size_t c = 0;
    for (size_t i = 0; i < m; i++)
        if (sc[i] >= t) u[c] = u[i], sc[c] = sc[i], c++; /* c <= i: in place, u stays ascending */
    if (c == 0) return IFK_OK;
    char **ids = ifk_calloc(c, sizeof *ids, "the document ids");
    if (!ids) return IFK_ERR_OOM;
    IFK_CHECK_GOTO(st, read_points_(d, IFK_BM25_DOC_IDS, str, u, c, ids), fail);
    for (size_t i = 0; i < c; i++) {
        char *id = strdup(ids[i] ? ids[i] : "");
        if (!id) {
            st = IFK_FAIL(IFK_ERR_OOM, "%s: out of memory reading /doc_ids", d->path);
            goto fail;
        }
        heap_push_(hp, (hit_){sc[i], id});
    }
fail:
    for (size_t i = 0; i < c; i++)
        if (ids[i]) H5free_memory(ids[i]);
    free(ids);
    return st;
}

/* The smallest head document over the lists not yet exhausted, or -1. */
static int32_t next_doc_(int32_t *const *docs, const size_t *cur, const range_ *r, size_t nq) {
    int32_t d = -1;
    for (size_t q = 0; q < nq; q++)
        if (cur[q] < (size_t)r[q].df && (d < 0 || docs[q][cur[q]] < d)) d = docs[q][cur[q]];
    return d;
}

/* Scores d's documents for the query terms whose ranges in d are r[0..nq) (df 0: absent) and
 * whose idf are idf[0..nq), into hp. */
static ifk_status score_file_(ifk_bm25_disk *dx, const dfile_ *d, hid_t str, const range_ *r, const double *idf,
                              size_t nq, heap_ *hp) {
    ifk_status st = IFK_OK;
    size_t P = 0, m = 0;
    for (size_t q = 0; q < nq; q++) P += (size_t)r[q].df;
    if (P == 0) return IFK_OK;
    int32_t *docs = ifk_malloc(P * sizeof *docs, "the postings"), *tf = ifk_malloc(P * sizeof *tf, "the postings");
    int32_t **qd = ifk_calloc(nq, sizeof *qd, "the postings"), **qt = ifk_calloc(nq, sizeof *qt, "the postings");
    size_t *cur = ifk_calloc(nq, sizeof *cur, "the postings");
    int32_t *u = ifk_malloc(P * sizeof *u, "the documents"), *dl = ifk_malloc(P * sizeof *dl, "the documents");
    double *sc = ifk_malloc(P * sizeof *sc, "the scores");
    if (!docs || !tf || !qd || !qt || !cur || !u || !dl || !sc) {
        st = IFK_ERR_OOM;
        goto fail;
    }
    /* 3. postings */
    for (size_t q = 0, at = 0; q < nq; at += (size_t)r[q].df, q++) {
        qd[q] = docs + at, qt[q] = tf + at;
        IFK_CHECK_GOTO(st, ifk_bm25_file_read(&d->f, IFK_BM25_POST_DOCS, H5T_NATIVE_INT32, r[q].off, r[q].df, qd[q]), fail);
        IFK_CHECK_GOTO(st, ifk_bm25_file_read(&d->f, IFK_BM25_POST_TF, H5T_NATIVE_INT32, r[q].off, r[q].df, qt[q]), fail);
        for (int32_t i = 0; i < r[q].df; i++) {
            const long long at_ = (long long)(r[q].off + i);
            if (qd[q][i] < 0 || qd[q][i] >= d->f.N)
                FMTFAIL("%s: /post_docs[%lld] = %d is not a document index (n_docs = %lld)", d->path, at_, qd[q][i],
                        (long long)d->f.N);
            if (i > 0 && qd[q][i] <= qd[q][i - 1])
                FMTFAIL("%s: /post_docs is not strictly ascending within a term (at %lld)", d->path, at_);
            if (qt[q][i] < 1) FMTFAIL("%s: /post_tf[%lld] = %d, expected >= 1", d->path, at_, qt[q][i]);
        }
    }
    dx->postings_read += (long long)P;
    /* 4. the documents in them (ascending) and their lengths */
    for (int32_t doc; (doc = next_doc_(qd, cur, r, nq)) >= 0;) {
        u[m++] = doc;
        for (size_t q = 0; q < nq; q++)
            if (cur[q] < (size_t)r[q].df && qd[q][cur[q]] == doc) cur[q]++;
    }
    IFK_CHECK_GOTO(st, read_doc_len_(d, u, m, dl), fail);
    /* 5. scores: each document's terms in bytewise order, as ifk_bm25_search sums them */
    memset(cur, 0, nq * sizeof *cur);
    const double avg = (double)dx->total / (double)dx->N; /* as ifk_bm25_search: total / n_docs */
    for (size_t i = 0; i < m; i++) {
        double s = 0.0;
        int64_t sum_tf = 0;
        for (size_t q = 0; q < nq; q++)
            if (cur[q] < (size_t)r[q].df && qd[q][cur[q]] == u[i]) {
                const int32_t t = qt[q][cur[q]++];
                s += ifk_bm25_weight(idf[q], t, dl[i], avg, dx->k1, dx->b);
                sum_tf += t;
            }
        if (dl[i] < sum_tf)
            FMTFAIL("%s: /doc_len[%d] = %d but the postings of the query's terms alone hold %lld terms", d->path, u[i],
                    dl[i], (long long)sum_tf);
        sc[i] = s;
    }
    IFK_CHECK_GOTO(st, push_hits_(d, str, u, sc, m, hp), fail);
fail:
    free(docs), free(tf), free(qd), free(qt), free(cur), free(u), free(dl), free(sc);
    return st;
}

/* ---- search ---------------------------------------------------------------------------------- */

ifk_status ifk_bm25_disk_search(ifk_bm25_disk *dx, const char *query, size_t len, int k, const char **ids,
                                double *scores, int *n) {
    IFK_CHECK_ARG(dx && n, "bm25: disk search needs a reader and a result count");
    *n = 0;
    IFK_CHECK_ARG(k >= 0, "bm25: search: k must be >= 0 (got %d)", k);
    IFK_CHECK_ARG(k == 0 || (ids && scores), "bm25: search: no room for the results");
    IFK_CHECK_ARG(query || len == 0, "bm25: search: no query text");
    free_ids_(dx);
    dx->postings_read = 0;
    if (k == 0 || dx->N == 0) return IFK_OK;

    ifk_status st = IFK_OK;
    char **terms = NULL;
    size_t nq = 0, nk = 0;
    range_ *r = NULL;
    double *idf = NULL;
    heap_ hp = {0};
    hit_ *best = NULL;
    hid_t str = H5I_INVALID_HID;
    IFK_CHECK(ifk_bm25_query_terms(query, len, &terms, &nq));
    if (nq == 0) goto done;
    r = ifk_calloc((size_t)dx->n * nq, sizeof *r, "the term ranges");
    idf = ifk_calloc(nq, sizeof *idf, "the term weights");
    int64_t *gdf = ifk_calloc(nq, sizeof *gdf, "the term counts");
    if (!r || !idf || !gdf) {
        free(gdf);
        st = IFK_ERR_OOM;
        goto done;
    }
    if ((str = ifk_h5_vlen_str()) < 0) {
        free(gdf);
        st = IFK_H5_FAIL("cannot make a string type");
        goto done;
    }
    /* 1-2. every file's range of every term, and the document frequencies over all files */
    for (int f = 0; st == IFK_OK && f < dx->n; f++)
        for (size_t q = 0; st == IFK_OK && q < nq; q++) {
            int64_t t;
            st = find_term_(&dx->f[f], str, terms[q], &t);
            if (st == IFK_OK && t >= 0) st = term_range_(&dx->f[f], t, &r[(size_t)f * nq + q]);
            if (st == IFK_OK) gdf[q] += r[(size_t)f * nq + q].df;
        }
    /* terms no file holds are dropped (each file's ranges keep the same columns) */
    for (size_t q = 0; st == IFK_OK && q < nq; q++)
        if (gdf[q] > 0) {
            idf[nk] = ifk_bm25_idf((double)dx->N, (double)gdf[q]);
            for (int f = 0; f < dx->n; f++) r[(size_t)f * nq + nk] = r[(size_t)f * nq + q];
            nk++;
        }
    free(gdf);
    if (st != IFK_OK || nk == 0) goto done;
    /* 3-5. */
    hp.cap = k < dx->N ? k : (int)dx->N;
    hp.h = (ifk_heap){.base = ifk_malloc((size_t)hp.cap * sizeof(hit_), "the top documents"), .size = sizeof(hit_),
                      .before = worse_};
    if (!(best = ifk_malloc((size_t)hp.cap * sizeof *best, "the top documents")) || !hp.h.base) {
        st = IFK_ERR_OOM;
        goto done;
    }
    for (int f = 0; st == IFK_OK && f < dx->n; f++)
        st = score_file_(dx, &dx->f[f], str, &r[(size_t)f * nq], idf, nk, &hp);
    if (st != IFK_OK) goto done;
    const int nh = hp.h.n;
    if (!(dx->ids = ifk_calloc(nh ? (size_t)nh : 1, sizeof *dx->ids, "the result ids"))) {
        st = IFK_ERR_OOM;
        goto done;
    }
    for (int i = nh; i-- > 0;) ifk_heap_pop(&hp.h, &best[i]); /* the worst out first: best first in best[] */
    for (int i = 0; i < nh; i++) dx->ids[i] = best[i].id, ids[i] = best[i].id, scores[i] = best[i].s;
    dx->n_ids = nh;
    *n = nh;
done:
    if (hp.h.base) heap_clear_(&hp);
    if (st != IFK_OK) free_ids_(dx);
    ifk_h5_close(&str);
    ifk_bm25_free_terms(terms, nq);
    free(r), free(idf), free(hp.h.base), free(best);
    return st;
}
