/* bm25.c — building and searching the BM25 index of bm25.h (index.h5 is bm25_io.c).
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
#include "bm25_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ifk_status ifk_bm25_grow(void **p, size_t *cap, size_t need, size_t elem, const char *what) {
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

int ifk_bm25_cmp_termptr(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* The next term of s[*pos..len): its start and length; 0 when there is none. */
static int next_term_(const char *s, size_t len, size_t *pos, size_t *start, size_t *tlen) {
    size_t i = *pos;
    while (i < len && !ifk_bm25_term_byte((unsigned char)s[i])) i++;
    if (i == len) {
        *pos = len;
        return 0;
    }
    size_t j = i;
    while (j < len && ifk_bm25_term_byte((unsigned char)s[j])) j++;
    *start = i, *tlen = j - i, *pos = j;
    return 1;
}

/* s[0..len) lower-cased into *buf (grown as needed, NUL-terminated). */
static ifk_status fold_into_(char **buf, size_t *cap, const char *s, size_t len) {
    IFK_CHECK(ifk_bm25_grow((void **)buf, cap, len + 1, 1, "a term"));
    for (size_t i = 0; i < len; i++) (*buf)[i] = (char)ifk_bm25_fold((unsigned char)s[i]);
    (*buf)[len] = '\0';
    return IFK_OK;
}

ifk_status ifk_bm25_create(ifk_bm25 **out) {
    IFK_CHECK_ARG(out, "bm25: create needs somewhere to put the index");
    *out = NULL;
    ifk_bm25 *ix = ifk_calloc(1, sizeof *ix, "the BM25 index");
    if (!ix) return IFK_ERR_OOM;
    ix->k1 = IFK_BM25_K1, ix->b = IFK_BM25_B;
    ifk_status st;
    IFK_CHECK_GOTO(st, ifk_strmap_create(&ix->doc_map, 0), fail);
    IFK_CHECK_GOTO(st, ifk_strmap_create(&ix->term_map, 0), fail);
    *out = ix;
    return IFK_OK;
fail:
    ifk_bm25_free(&ix);
    return st;
}

void ifk_bm25_free(ifk_bm25 **pix) {
    if (!pix || !*pix) return;
    ifk_bm25 *ix = *pix;
    for (int i = 0; i < ix->n_docs; i++) free(ix->doc[i]);
    for (int t = 0; t < ix->n_terms; t++) free(ix->term[t]), free(ix->post[t].p);
    free(ix->doc), free(ix->doc_len), free(ix->term), free(ix->post), free(ix->fold);
    ifk_strmap_free(&ix->doc_map);
    ifk_strmap_free(&ix->term_map);
    free(ix);
    *pix = NULL;
}

int ifk_bm25_ndocs(const ifk_bm25 *ix) { return ix ? ix->n_docs : 0; }

const char *ifk_bm25_doc_id(const ifk_bm25 *ix, int i) { return ix && i >= 0 && i < ix->n_docs ? ix->doc[i] : NULL; }

/* Adds the term in ix->fold[0..len) (new to the index); its id in *t. */
static ifk_status new_term_(ifk_bm25 *ix, size_t len, int32_t *t) {
    if (ix->n_terms == INT32_MAX) return IFK_FAIL(IFK_ERR_ARG, "bm25: more than %d distinct terms", INT32_MAX);
    size_t n = (size_t)ix->n_terms, cap_post = ix->cap_term;
    IFK_CHECK(ifk_bm25_grow((void **)&ix->post, &cap_post, n + 1, sizeof *ix->post, "the postings lists"));
    IFK_CHECK(ifk_bm25_grow((void **)&ix->term, &ix->cap_term, n + 1, sizeof *ix->term, "the term list"));
    char *c = ifk_malloc(len + 1, "a term");
    if (!c) return IFK_ERR_OOM;
    memcpy(c, ix->fold, len + 1);
    ifk_status st = ifk_strmap_put(ix->term_map, c, len, (int)n);
    if (st != IFK_OK) {
        free(c);
        return ifk_trace_at(st, __FILE__, __LINE__, __func__);
    }
    ix->term[n] = c;
    ix->post[n] = (ifk_bm25_plist){NULL, 0, 0};
    ix->n_terms++;
    *t = (int32_t)n;
    return IFK_OK;
}

/* One occurrence of s[0..len) (not yet folded) in document d, the document being added. */
static ifk_status add_occurrence_(ifk_bm25 *ix, const char *s, size_t len, int32_t d) {
    IFK_CHECK(fold_into_(&ix->fold, &ix->fold_cap, s, len));
    int t;
    if (!ifk_strmap_get(ix->term_map, ix->fold, len, &t)) {
        int32_t nt = 0;
        IFK_CHECK(new_term_(ix, len, &nt));
        t = nt;
    }
    ifk_bm25_plist *pl = &ix->post[t];
    if (pl->n > 0 && pl->p[pl->n - 1].doc == d) { /* tf <= doc length, which is checked < INT32_MAX */
        pl->p[pl->n - 1].tf++;
        return IFK_OK;
    }
    IFK_CHECK(ifk_bm25_grow((void **)&pl->p, &pl->cap, pl->n + 1, sizeof *pl->p, "a postings list"));
    pl->p[pl->n++] = (ifk_bm25_posting){d, 1};
    return IFK_OK;
}

/* Undoes a partly added document d: drops its postings and the terms it introduced. */
static void add_rollback_(ifk_bm25 *ix, int n_terms0, int32_t d) {
    for (int t = 0; t < n_terms0; t++) {
        ifk_bm25_plist *pl = &ix->post[t];
        if (pl->n > 0 && pl->p[pl->n - 1].doc == d) pl->n--;
    }
    for (int t = n_terms0; t < ix->n_terms; t++) {
        ifk_strmap_del(ix->term_map, ix->term[t], strlen(ix->term[t]));
        free(ix->term[t]), free(ix->post[t].p);
    }
    ix->n_terms = n_terms0;
}

ifk_status ifk_bm25_add(ifk_bm25 *ix, const char *doc_id, const char *text, size_t len) {
    IFK_CHECK_ARG(ix && doc_id, "bm25: add needs an index and a document id");
    IFK_CHECK_ARG(text || len == 0, "bm25: document '%s' has no text pointer", doc_id);
    size_t idlen = strlen(doc_id);
    if (ifk_strmap_get(ix->doc_map, doc_id, idlen, NULL))
        return IFK_FAIL(IFK_ERR_ARG, "bm25: duplicate document id '%s'", doc_id);
    if (ix->n_docs == INT32_MAX) return IFK_FAIL(IFK_ERR_ARG, "bm25: more than %d documents", INT32_MAX);

    /* everything the commit needs is allocated first, so only term insertion can fail midway */
    size_t nd = (size_t)ix->n_docs, cap_len = ix->cap_doc;
    IFK_CHECK(ifk_bm25_grow((void **)&ix->doc_len, &cap_len, nd + 1, sizeof *ix->doc_len, "the document lengths"));
    IFK_CHECK(ifk_bm25_grow((void **)&ix->doc, &ix->cap_doc, nd + 1, sizeof *ix->doc, "the document list"));
    IFK_CHECK(ifk_strmap_reserve(ix->doc_map, nd + 1));
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
    IFK_CHECK_GOTO(st, ifk_strmap_put(ix->doc_map, id, idlen, d), fail);
    ix->doc[nd] = id;
    ix->doc_len[nd] = (int32_t)dl;
    ix->n_docs++;
    ix->total_len += dl;
    return IFK_OK;
fail:
    add_rollback_(ix, n_terms0, d);
    free(id);
    return st;
}

/* ---- search ---------------------------------------------------------------------------------- */

/* a ranks below b: lower score, or the same score and a bytewise greater id (ids are unique, so
 * the order is total and the ranking does not depend on the order documents were added in) */
static inline int worse_(const double *sc, char *const *id, int32_t a, int32_t b) {
    return sc[a] < sc[b] || (sc[a] == sc[b] && strcmp(id[a], id[b]) > 0);
}

/* Restores the heap property (every parent worse than its children) below node i. */
static void sift_down_(int32_t *h, size_t n, size_t i, const double *sc, char *const *id) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse_(sc, id, h[l], h[w])) w = l;
        if (r < n && worse_(sc, id, h[r], h[w])) w = r;
        if (w == i) return;
        int32_t t = h[i];
        h[i] = h[w], h[w] = t;
        i = w;
    }
}

/* The best min(k, m) of cand[0..m) by score (ties: id ascending), best first, in cand[0..kk);
 * returns kk. */
static size_t top_k_(int32_t *cand, size_t m, size_t k, const double *sc, char *const *id) {
    /* a heap of the best seen so far with the worst at the root, then heapsort */
    size_t kk = k < m ? k : m;
    for (size_t i = kk / 2; i-- > 0;) sift_down_(cand, kk, i, sc, id);
    for (size_t i = kk; i < m; i++)
        if (worse_(sc, id, cand[0], cand[i])) {
            cand[0] = cand[i];
            sift_down_(cand, kk, 0, sc, id);
        }
    for (size_t e = kk; e-- > 1;) {
        int32_t t = cand[0];
        cand[0] = cand[e], cand[e] = t;
        sift_down_(cand, e, 0, sc, id);
    }
    return kk;
}

/* The ids of the known query terms, each once, in bytewise term order, into *qt (malloc'd). */
static ifk_status query_terms_(const ifk_bm25 *ix, const char *query, size_t len, int32_t **qt, size_t *nq) {
    ifk_status st = IFK_OK;
    char *buf = NULL;
    char *const **at = NULL; /* &ix->term[t] of each known query term */
    size_t cap = 0, capa = 0, na = 0, pos = 0, start, tlen;
    *qt = NULL, *nq = 0;
    while (next_term_(query, len, &pos, &start, &tlen)) {
        int t;
        IFK_CHECK_GOTO(st, fold_into_(&buf, &cap, query + start, tlen), done);
        if (!ifk_strmap_get(ix->term_map, buf, tlen, &t)) continue;
        IFK_CHECK_GOTO(st, ifk_bm25_grow((void **)&at, &capa, na + 1, sizeof *at, "the query terms"), done);
        at[na++] = &ix->term[t];
    }
    if (na == 0) goto done;
    qsort(at, na, sizeof *at, ifk_bm25_cmp_termptr);
    if (!(*qt = ifk_malloc(na * sizeof **qt, "the query terms"))) {
        st = IFK_ERR_OOM;
        goto done;
    }
    for (size_t q = 0; q < na; q++)
        if (q == 0 || at[q] != at[q - 1]) (*qt)[(*nq)++] = (int32_t)(at[q] - ix->term);
done:
    free(buf), free(at);
    return st;
}

static int cmp_str_(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void ifk_bm25_free_terms(char **terms, size_t n) {
    for (size_t i = 0; terms && i < n; i++) free(terms[i]);
    free(terms);
}

ifk_status ifk_bm25_query_terms(const char *query, size_t len, char ***terms, size_t *n) {
    ifk_status st = IFK_OK;
    char **t = NULL;
    size_t cap = 0, nt = 0, pos = 0, start, tlen;
    *terms = NULL, *n = 0;
    while (next_term_(query, len, &pos, &start, &tlen)) {
        IFK_CHECK_GOTO(st, ifk_bm25_grow((void **)&t, &cap, nt + 1, sizeof *t, "the query terms"), fail);
        t[nt] = NULL;
        size_t c = 0;
        IFK_CHECK_GOTO(st, fold_into_(&t[nt], &c, query + start, tlen), fail);
        nt++;
    }
    if (nt) qsort(t, nt, sizeof *t, cmp_str_);
    size_t m = 0;
    for (size_t i = 0; i < nt; i++)
        if (m > 0 && !strcmp(t[i], t[m - 1])) free(t[i]);
        else t[m++] = t[i];
    *terms = t, *n = m;
    return IFK_OK;
fail:
    ifk_bm25_free_terms(t, nt);
    return st;
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
    int32_t *qt = NULL, *cand = NULL;
    size_t nq = 0;
    double *sc = NULL;
    IFK_CHECK_GOTO(st, query_terms_(ix, query, len, &qt, &nq), done);
    if (nq == 0) goto done;

    sc = ifk_calloc((size_t)ix->n_docs, sizeof *sc, "the BM25 scores");
    cand = ifk_malloc((size_t)ix->n_docs * sizeof *cand, "the BM25 candidates");
    if (!sc || !cand) {
        st = IFK_ERR_OOM;
        goto done;
    }
    size_t m = 0;
    const double N = ix->n_docs, avg = (double)ix->total_len / ix->n_docs, k1 = ix->k1, b = ix->b;
    for (size_t q = 0; q < nq; q++) {
        const ifk_bm25_plist *pl = &ix->post[qt[q]];
        const double idf = ifk_bm25_idf(N, (double)pl->n);
        for (size_t i = 0; i < pl->n; i++) {
            const int32_t d = pl->p[i].doc;
            /* avg > 0 here: a posting means some document has a term */
            const double w = ifk_bm25_weight(idf, pl->p[i].tf, ix->doc_len[d], avg, k1, b);
            if (sc[d] == 0.0 && m < (size_t)ix->n_docs) cand[m++] = d; /* w > 0: each doc once */
            sc[d] += w;
        }
    }
    size_t kk = top_k_(cand, m, (size_t)k, sc, ix->doc);
    for (size_t i = 0; i < kk; i++) {
        ids[i] = ix->doc[cand[i]];
        scores[i] = sc[cand[i]];
    }
    *n = (int)kk;
done:
    free(qt), free(sc), free(cand);
    return st;
}

ifk_status ifk_bm25_append(ifk_bm25 *dst, const ifk_bm25 *src) {
    IFK_CHECK_ARG(dst && src, "bm25: append needs two indexes");
    IFK_CHECK_ARG((int64_t)dst->n_docs + src->n_docs <= INT32_MAX, "bm25: more than %d documents", INT32_MAX);
    const int32_t off = dst->n_docs;
    size_t need = (size_t)dst->n_docs + (size_t)src->n_docs, cap_len = dst->cap_doc;
    IFK_CHECK(ifk_bm25_grow((void **)&dst->doc_len, &cap_len, need, sizeof *dst->doc_len, "the document lengths"));
    IFK_CHECK(ifk_bm25_grow((void **)&dst->doc, &dst->cap_doc, need, sizeof *dst->doc, "the document list"));
    IFK_CHECK(ifk_strmap_reserve(dst->doc_map, need));
    for (int d = 0; d < src->n_docs; d++)
        if (ifk_strmap_get(dst->doc_map, src->doc[d], strlen(src->doc[d]), NULL))
            return IFK_FAIL(IFK_ERR_ARG, "bm25: duplicate document id '%s'", src->doc[d]);
    /* the documents first (they cannot fail after the reservation above but for a key copy) */
    for (int d = 0; d < src->n_docs; d++) {
        size_t l = strlen(src->doc[d]);
        char *id = ifk_malloc(l + 1, "a document id");
        if (!id) return IFK_ERR_OOM;
        memcpy(id, src->doc[d], l + 1);
        ifk_status st = ifk_strmap_put(dst->doc_map, id, l, off + d);
        if (st != IFK_OK) return free(id), st;
        dst->doc[off + d] = id;
        dst->doc_len[off + d] = src->doc_len[d];
        dst->n_docs++;
        dst->total_len += src->doc_len[d];
    }
    /* then each term's postings, shifted by off: they stay ascending as src's documents follow */
    for (int t = 0; t < src->n_terms; t++) {
        size_t len = strlen(src->term[t]);
        int dt;
        if (!ifk_strmap_get(dst->term_map, src->term[t], len, &dt)) {
            IFK_CHECK(fold_into_(&dst->fold, &dst->fold_cap, src->term[t], len));
            int32_t nt;
            IFK_CHECK(new_term_(dst, len, &nt));
            dt = nt;
        }
        const ifk_bm25_plist *sp = &src->post[t];
        ifk_bm25_plist *pl = &dst->post[dt];
        IFK_CHECK(ifk_bm25_grow((void **)&pl->p, &pl->cap, pl->n + sp->n, sizeof *pl->p, "a postings list"));
        for (size_t i = 0; i < sp->n; i++) pl->p[pl->n++] = (ifk_bm25_posting){sp->p[i].doc + off, sp->p[i].tf};
    }
    return IFK_OK;
}
